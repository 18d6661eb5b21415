# telegram-gateway's delivery scheduler: pick cost and anonymous memory
# with 1,000 and 100,000 messages queued (see outbox_bench.c).
if(TARGET gateway_core)
  add_executable(outbox_bench ${CMAKE_CURRENT_LIST_DIR}/outbox_bench.c)
  target_link_libraries(outbox_bench PRIVATE gateway_core)
  set_target_properties(outbox_bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_outbox
    COMMAND outbox_bench --dir ${PROJECT_BINARY_DIR}/bench-tmp)
  set_tests_properties(bench_outbox PROPERTIES LABELS bench TIMEOUT 300)
endif()
