# telegram-gateway's outside input: Bot API updates, callback data and
# user text (parsing, the inbox round trip, escaping, the 4096 split).
if(TARGET gateway_core)
  opsdesk_fuzz(fuzz_gateway_update ${CMAKE_CURRENT_LIST_DIR}/fuzz_gateway_update.c
    LIBS gateway_core
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_gateway_update)
endif()
