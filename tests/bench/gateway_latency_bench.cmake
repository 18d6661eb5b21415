# telegram-gateway: a user's reply and an admin alert behind 20,000 queued
# broadcasts and a flooding user, with Telegram's default limits, against
# the same gateway idle (see gateway_latency_bench.py); needs outbox_bench
# (--fill) from outbox_bench.cmake.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET gateway_core)
  add_test(NAME bench_gateway_latency
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/gateway_latency_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_gateway_latency PROPERTIES LABELS bench TIMEOUT 300)
endif()
