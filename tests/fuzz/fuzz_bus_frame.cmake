# bus frames as subscribers and opsctl tail see them: bus_frame_split,
# Envelope unpack, pbjson rendering.
opsdesk_fuzz(fuzz_bus_frame ${CMAKE_CURRENT_LIST_DIR}/fuzz_bus_frame.c
  LIBS opsdesk_common
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_bus_frame)
