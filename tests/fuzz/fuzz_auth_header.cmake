# The authentication header of rpc requests and bus frames (common/auth):
# parse, verify, split and a seal-then-verify round trip.
opsdesk_fuzz(fuzz_auth_header ${CMAKE_CURRENT_LIST_DIR}/fuzz_auth_header.c
  LIBS opsdesk_common
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_auth_header)
