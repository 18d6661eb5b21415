# Group commit against one synced commit per put (see store_bench.c).
add_executable(store_bench ${CMAKE_CURRENT_LIST_DIR}/store_bench.c)
target_link_libraries(store_bench PRIVATE opsdesk_common)
set_target_properties(store_bench PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
# In the build dir: the same (real, fsyncing) filesystem for both runs.
add_test(NAME bench_store
  COMMAND store_bench --dir ${PROJECT_BINARY_DIR}/bench-tmp --seconds 3)
set_tests_properties(bench_store PROPERTIES LABELS bench TIMEOUT 120)
