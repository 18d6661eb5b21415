# pbjson's decoder on arbitrary JSON text (opsctl call input, logs);
# with libFuzzer add -dict=tests/fuzz/fuzz_pbjson.dict.
opsdesk_fuzz(fuzz_pbjson ${CMAKE_CURRENT_LIST_DIR}/fuzz_pbjson.c
  LIBS opsdesk_common
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_pbjson)
