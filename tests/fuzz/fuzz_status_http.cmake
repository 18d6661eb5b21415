# status-publisher's outside input: request paths and conditional headers
# against a rendered site, the status_page config section, hostile titles
# through the renderers.
if(TARGET status_core)
  opsdesk_fuzz(fuzz_status_http ${CMAKE_CURRENT_LIST_DIR}/fuzz_status_http.c
    LIBS status_core
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_status_http)
endif()
