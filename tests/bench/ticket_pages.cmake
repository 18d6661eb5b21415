# Bytes (LMDB pages) one group commit of ticket creates writes: the
# layout's cost per create (see ticket_pages.c). A tool, not a ctest.
if(TARGET ticket_core)
  add_executable(ticket_pages ${CMAKE_CURRENT_LIST_DIR}/ticket_pages.c
    ${CMAKE_CURRENT_LIST_DIR}/ticket_bench_util.c)
  target_link_libraries(ticket_pages PRIVATE ticket_core)
  set_target_properties(ticket_pages PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endif()
