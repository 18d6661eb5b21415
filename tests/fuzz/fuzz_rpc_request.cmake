# Any bytes as a request through the rpc server's decode and dispatch path
# (no sockets), for the test service of common/rpc/rpc_test.proto.
if(TARGET opsdesk_rpc_testproto)
  opsdesk_fuzz(fuzz_rpc_request ${CMAKE_CURRENT_LIST_DIR}/fuzz_rpc_request.c
    LIBS opsdesk_common opsdesk_rpc_testproto
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_rpc_request)
endif()
