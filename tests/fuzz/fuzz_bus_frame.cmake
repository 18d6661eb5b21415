# bus frames as subscribers and opsctl tail see them: bus_frame_split,
# Envelope unpack, pbjson rendering. Needs common/bus (landing in
# parallel): skipped until its source is in the tree.
if(EXISTS ${PROJECT_SOURCE_DIR}/common/bus/bus.c)
  opsdesk_fuzz(fuzz_bus_frame ${CMAKE_CURRENT_LIST_DIR}/fuzz_bus_frame.c
    LIBS opsdesk_common
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_bus_frame)
endif()
