# Every build option in one place (as nng does).
option(OPSDESK_SANITIZE "Build everything with ASan and UBSan" OFF)
option(OPSDESK_FUZZ "Build the fuzz targets with libFuzzer (needs clang)" OFF)
option(OPSDESK_BENCH "Build the benchmarks in tests/bench" ON)

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
