# bus-relay: lossless forwarding rate against a direct pub->sub link and
# NNG's own nng_device forwarder, measured in the same run.
if(TARGET bus_relay_core)
  add_executable(relay_bench ${CMAKE_CURRENT_LIST_DIR}/relay_bench.c)
  target_link_libraries(relay_bench PRIVATE bus_relay_core)
  set_target_properties(relay_bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_relay COMMAND relay_bench 100000 200)
  set_tests_properties(bench_relay PROPERTIES LABELS bench TIMEOUT 300)
  # publisher checks (sealed frames), over tcp and tls+tcp, against it
  add_test(NAME bench_relay_tls COMMAND relay_bench --tls 100000 200)
  set_tests_properties(bench_relay_tls PROPERTIES LABELS bench TIMEOUT 300)
endif()
