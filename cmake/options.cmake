# Every build option in one place (as nng does).
option(OPSDESK_SANITIZE "Build everything with ASan and UBSan" OFF)
option(OPSDESK_FUZZ "Build the fuzz targets with libFuzzer (needs clang)" OFF)
option(OPSDESK_BENCH "Build the benchmarks in tests/bench" ON)
option(OPSDESK_TSAN "Build everything with ThreadSanitizer" OFF)

if(OPSDESK_SANITIZE AND OPSDESK_TSAN)
  message(FATAL_ERROR "OPSDESK_SANITIZE (ASan) and OPSDESK_TSAN exclude each other")
endif()

if(OPSDESK_TSAN)
  # The system libraries (libnng, liblmdb, libcurl) are not instrumented:
  # their own races are not seen, and the few reports that end inside
  # them are listed, with the reason, in tests/tsan.supp (used by
  # scripts/test.sh through TSAN_OPTIONS).
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

if(OPSDESK_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(OPSDESK_FUZZ)
  # Coverage for libFuzzer in every object, not only the fuzz target's
  # own file: without it the decoders in opsdesk_common are invisible to
  # the fuzzer and it mutates blind.
  # Linking with it too brings the coverage callbacks into the other
  # executables (services, units) of such a build.
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=fuzzer-no-link)
endif()
