# The whole telegram-gateway's RSS with 100,000 messages queued against
# the same gateway idle (see gateway_rss_bench.py); needs outbox_bench
# (--fill) from outbox_bench.cmake, which is built whenever gateway_core
# is (this file is included before it: TARGET outbox_bench is not known
# yet here, and the test was never registered).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET gateway_core)
  add_test(NAME bench_gateway_rss
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/gateway_rss_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_gateway_rss PROPERTIES LABELS bench TIMEOUT 300)
endif()
