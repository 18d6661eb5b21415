# Durable ticket creates through the real rpc server against raw LMDB and
# raw NNG + fsync (see ticket_bench.c); ticket_load drives a running
# ticket-service (the crash test in tests/system/ticket_test.py uses it).
if(TARGET ticket_core)
  add_executable(ticket_bench ${CMAKE_CURRENT_LIST_DIR}/ticket_bench.c
    ${CMAKE_CURRENT_LIST_DIR}/ticket_bench_util.c)
  target_link_libraries(ticket_bench PRIVATE ticket_core)
  add_executable(ticket_load ${CMAKE_CURRENT_LIST_DIR}/ticket_load.c)
  target_link_libraries(ticket_load PRIVATE opsdesk_common)
  set_target_properties(ticket_bench ticket_load PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_ticket
    COMMAND ticket_bench --dir ${PROJECT_BINARY_DIR}/bench-tmp --seconds 3)
  set_tests_properties(bench_ticket PROPERTIES LABELS bench TIMEOUT 120)
  # 64 clients' durable creates over tls+tcp (auth on) against plain tcp
  add_test(NAME bench_ticket_tls
    COMMAND ticket_bench --tls --dir ${PROJECT_BINARY_DIR}/bench-tmp
            --seconds 3)
  set_tests_properties(bench_ticket_tls PROPERTIES LABELS bench TIMEOUT 120)
endif()
