# ClickHouse 18.16 run as a local child process (src/store/clickhouse/local_server.*): library
# tally_clickhouse, talking to the server over HTTP with tally_http's client. clickhouse_tests
# start real servers, so they need the Debian package clickhouse-server (scripts/setup installs it).
add_library(tally_clickhouse STATIC src/store/clickhouse/local_server.cpp
            src/store/clickhouse/connection.cpp src/store/clickhouse/cluster.cpp
            src/store/clickhouse/clickhouse_event_store.cpp)
target_link_libraries(tally_clickhouse PUBLIC tally_core PRIVATE tally_http PkgConfig::XXHASH)

enable_testing()
include(GoogleTest)
file(GLOB TALLY_CLICKHOUSE_TESTS CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/tests/clickhouse/*_test.cpp)
add_executable(clickhouse_tests ${TALLY_CLICKHOUSE_TESTS})
target_link_libraries(clickhouse_tests PRIVATE tally_clickhouse tally_ingest tally_http GTest::gtest
                                               GTest::gtest_main)
gtest_discover_tests(clickhouse_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
