# Helpers for the build, in the spirit of nng's nng_test():
#   opsdesk_service(NAME SOURCES src... LIBS lib...)  an executable of the
#       suite: built into <build>/bin (where the system tests look) and
#       installed into <prefix>/bin
#   opsdesk_unit_test(NAME src... LIBS lib...)  a cmocka unit under ctest
#   opsdesk_fuzz(NAME src... LIBS lib...)      a fuzz target; without
#       OPSDESK_FUZZ it links a replay driver and runs its corpus in ctest
include(GNUInstallDirs)

function(opsdesk_service name)
  cmake_parse_arguments(S "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT S_SOURCES)
    message(FATAL_ERROR "opsdesk_service(${name}): no SOURCES")
  endif()
  add_executable(${name} ${S_SOURCES})
  target_link_libraries(${name} PRIVATE ${S_LIBS})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

function(opsdesk_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "LIBS" ${ARGN})
  if(NOT BUILD_TESTING)
    return()
  endif()
  add_executable(${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS unit)
endfunction()

function(opsdesk_fuzz name)
  cmake_parse_arguments(F "" "CORPUS" "LIBS" ${ARGN})
  if(NOT BUILD_TESTING)
    return()
  endif()
  add_executable(${name} ${F_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  if(OPSDESK_FUZZ)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    target_sources(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
    add_test(NAME ${name} COMMAND ${name} ${F_CORPUS})
    set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS fuzz)
  endif()
endfunction()
