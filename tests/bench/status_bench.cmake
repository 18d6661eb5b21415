# status-publisher: render cost against history length (C), and serving
# /api/v2/summary.json against nginx serving the same bytes (wrk, Python).
if(TARGET status_core)
  add_executable(status_render_bench
    ${CMAKE_CURRENT_LIST_DIR}/status_render_bench.c)
  target_link_libraries(status_render_bench PRIVATE status_core)
  set_target_properties(status_render_bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_test(NAME bench_status_render COMMAND status_render_bench)
  set_tests_properties(bench_status_render PROPERTIES LABELS bench
    TIMEOUT 300)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME bench_status_http
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/status_bench.py
              --bin ${PROJECT_BINARY_DIR}/bin
              --proto ${PROJECT_SOURCE_DIR}/proto)
    set_tests_properties(bench_status_http PROPERTIES LABELS bench
      TIMEOUT 300)
  endif()
endif()
