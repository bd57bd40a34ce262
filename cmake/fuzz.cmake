# libFuzzer harnesses for the body decoders, gzip and the GraphQL front end (fuzz/*.cpp): targets
# decode_fuzzer, gunzip_fuzzer and graphql_fuzzer. Included by the main CMakeLists only with
# -DTALLY_FUZZ=ON, in a build directory of its own configured with clang (scripts/fuzz makes
# build-fuzz/). See docs/fuzzing.md.
#
# scripts/fuzz builds only the fuzzers, so the libraries they link are all that build-fuzz/
# compiles (instrumented, as part of `make test`): each fuzzer links the least it can.
# graphql_fuzzer takes tally_graphql (the GraphQL engine and tally's schema without its
# resolvers, which needs only the metric catalogue) rather than tally_api, which would bring the
# routes, the metrics engine, insights, models, the ledger and auth into this build.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TALLY_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()

# Everything in this directory is compiled with coverage instrumentation for libFuzzer and with
# AddressSanitizer and UndefinedBehaviorSanitizer, so the tally libraries the fuzzers link are
# instrumented too. CMake uses the value CMAKE_CXX_FLAGS has at the end of the directory for every
# target in it, so this reaches the libraries defined before this fragment. The flags also reach
# every link line: `fuzzer-no-link` adds no main() and no libFuzzer runtime, so the other
# executables (tally, tally_tests, ...) still link, with the sanitizer runtimes. UB aborts instead
# of printing and going on, so libFuzzer saves the input.
string(APPEND CMAKE_CXX_FLAGS
  " -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer")
# pointer-overflow is recoverable so that fuzz/ubsan.supp can silence it in Debian's rapidjson;
# scripts/fuzz runs with halt_on_error=1, so anywhere else it still stops the fuzzer.
string(APPEND CMAKE_CXX_FLAGS " -fsanitize-recover=pointer-overflow")

foreach(fuzzer decode_fuzzer gunzip_fuzzer graphql_fuzzer)
  add_executable(${fuzzer} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${fuzzer}.cpp)
  # Only the fuzzers link libFuzzer itself, which brings their main().
  target_link_options(${fuzzer} PRIVATE -fsanitize=fuzzer)
endforeach()
target_link_libraries(decode_fuzzer PRIVATE tally_ingest tally_core)
target_link_libraries(gunzip_fuzzer PRIVATE tally_gzip tally_core)
target_link_libraries(graphql_fuzzer PRIVATE tally_graphql tally_core)
