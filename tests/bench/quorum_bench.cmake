# health-prober from three locations against one: CPU per decided round
# and the decided-state latency (quorum_bench.py; installs nginx with apt
# if missing).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME bench_quorum
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/quorum_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_quorum PROPERTIES LABELS bench TIMEOUT 600)
endif()
