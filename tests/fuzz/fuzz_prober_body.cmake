# health-prober's outside input: probe response bodies (JSON conditions,
# JSON paths, Prometheus text) and the aggregate row decoder.
if(TARGET prober_core)
  opsdesk_fuzz(fuzz_prober_body ${CMAKE_CURRENT_LIST_DIR}/fuzz_prober_body.c
    LIBS prober_core
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_prober_body)
endif()
