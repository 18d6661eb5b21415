# rpc_client_call to an rpc_server against raw NNG req/rep, same run, same
# transport and request size (see rpc_bench.c).
if(TARGET opsdesk_rpc_testproto)
  add_executable(rpc_bench ${CMAKE_CURRENT_LIST_DIR}/rpc_bench.c)
  target_link_libraries(rpc_bench PRIVATE opsdesk_common opsdesk_rpc_testproto)
  set_target_properties(rpc_bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_rpc
    COMMAND rpc_bench --rounds 5000 --size 256 --dir ${PROJECT_BINARY_DIR})
  set_tests_properties(bench_rpc PROPERTIES LABELS bench TIMEOUT 300)
  # rpc over tls+tcp with the HMAC header against plain rpc (auth off)
  add_test(NAME bench_rpc_tls
    COMMAND rpc_bench --tls --rounds 5000 --size 256
            --dir ${PROJECT_BINARY_DIR})
  set_tests_properties(bench_rpc_tls PROPERTIES LABELS bench TIMEOUT 300)
endif()
