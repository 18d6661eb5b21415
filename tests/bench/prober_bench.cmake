# health-prober: CPU per probe against prometheus-blackbox-exporter on the
# same 2,000 nginx targets in the same run, and RSS with 10,000 targets
# (prober_bench.py; installs nginx and the exporter with apt if missing).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME bench_prober
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/prober_bench.py
            --bin ${PROJECT_BINARY_DIR}/bin
            --proto ${PROJECT_SOURCE_DIR}/proto)
  set_tests_properties(bench_prober PROPERTIES LABELS bench TIMEOUT 600)
endif()
