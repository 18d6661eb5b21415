# telegram-gateway: updates/s end to end (fake Bot API -> gateway ->
# ticket-service -> reply sent) with throttling off, against the fake
# API's own request rate in the same run; latency the gateway adds.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET gateway_core)
  add_test(NAME bench_gateway
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/gateway_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_gateway PROPERTIES LABELS bench TIMEOUT 300)
endif()
