# health-prober's objectives: CPU per evaluation round of 10,000 targets'
# objectives with 1 day and with 90 days of history behind them (see
# slo_bench.c).
if(TARGET prober_core)
  add_executable(slo_bench ${CMAKE_CURRENT_LIST_DIR}/slo_bench.c)
  target_link_libraries(slo_bench PRIVATE prober_core)
  set_target_properties(slo_bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_slo
    COMMAND slo_bench --dir ${PROJECT_BINARY_DIR}/bench-tmp)
  set_tests_properties(bench_slo PROPERTIES LABELS bench TIMEOUT 300)
endif()
