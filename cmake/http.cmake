# HTTP server, client and gzip decoding (src/api/http_*, src/ingest/gzip.*): library tally_http.
# Boost.Beast is header-only; it is included only by the library's .cpp files, never its headers.
find_package(Boost 1.81 REQUIRED)
find_package(ZLIB REQUIRED)

# gzip is a library of its own so that the gunzip fuzzer (cmake/fuzz.cmake) compiles it without
# Boost.Beast.
add_library(tally_gzip STATIC src/ingest/gzip.cpp)
target_link_libraries(tally_gzip PUBLIC tally_core PRIVATE ZLIB::ZLIB)

add_library(tally_http STATIC
  src/api/http_server.cpp
  src/api/http_client.cpp
)
target_link_libraries(tally_http
  PUBLIC tally_gzip tally_core
  PRIVATE Boost::headers ZLIB::ZLIB Threads::Threads)
# Asio is used without its deprecated interfaces, and without Boost.System's library.
target_compile_definitions(tally_http PRIVATE BOOST_ASIO_NO_DEPRECATED)

# The main CMakeLists includes this fragment before it calls enable_testing() and
# include(GoogleTest), so both are done here too (each is harmless to repeat).
enable_testing()
include(GoogleTest)
file(GLOB TALLY_HTTP_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/http/*_test.cpp)
add_executable(http_tests ${TALLY_HTTP_TESTS})
target_link_libraries(http_tests PRIVATE tally_http GTest::gtest GTest::gtest_main)
gtest_discover_tests(http_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
