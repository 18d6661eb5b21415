# The chat path end to end (fake Bot API -> telegram-gateway -> services ->
# reply sent) against a grammY bot and python-telegram-bot 13 doing the
# same work durably, in the same run; peers not installed are skipped
# (OPSDESK_BENCH_PEERS=1 scripts/bootstrap.sh installs them).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET gateway_core)
  add_test(NAME bench_e2e
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/e2e_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_e2e PROPERTIES LABELS bench TIMEOUT 900)
endif()
