# ClickHouse 18.16 run as a local child process (src/store/clickhouse/local_server.*): library
# tally_clickhouse, talking to the server over HTTP with tally_http's client. clickhouse_tests
# start real servers, so they need the Debian package clickhouse-server (scripts/setup installs it).
add_library(tally_clickhouse STATIC src/store/clickhouse/local_server.cpp
            src/store/clickhouse/connection.cpp src/store/clickhouse/cluster.cpp
            src/store/clickhouse/clickhouse_event_store.cpp)
target_link_libraries(tally_clickhouse PUBLIC tally_core PRIVATE tally_http PkgConfig::XXHASH)

enable_testing()
include(GoogleTest)
add_executable(clickhouse_tests tests/clickhouse/local_server_test.cpp
                                tests/clickhouse/event_store_test.cpp)
target_link_libraries(clickhouse_tests PRIVATE tally_clickhouse tally_ingest tally_http GTest::gtest
                                               GTest::gtest_main)
gtest_discover_tests(clickhouse_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)

# The tally binary (load, query, reconcile, serve) on a cluster chosen by config. One process for
# the suite, so the cluster starts and the world loads once (not once per discovered test).
add_executable(clickhouse_cli_tests tests/clickhouse/cli_backend_test.cpp)
target_link_libraries(clickhouse_cli_tests PRIVATE tally_clickhouse tally_ingest tally_http
                                                   GTest::gtest GTest::gtest_main)
target_include_directories(clickhouse_cli_tests PRIVATE tests/unit)
target_compile_definitions(clickhouse_cli_tests PRIVATE TALLY_BINARY="$<TARGET_FILE:tally>")
add_dependencies(clickhouse_cli_tests tally)
add_test(NAME clickhouse_cli COMMAND clickhouse_cli_tests)
# COST: the two ClickHouse suites are the longest parallel tests (1.5-2 minutes); a fresh clone has
# no ctest timing history, so without a cost they would start last and run alone at the end.
set_tests_properties(clickhouse_cli PROPERTIES TIMEOUT 900 COST 1000)

# The metrics catalogue and the insights on a 2-shard cluster against the embedded store, on one
# generated world: one process (one cluster, one load) for the whole suite.
add_executable(clickhouse_conformance_tests tests/clickhouse/metrics_conformance_test.cpp
                                            tests/clickhouse/insights_conformance_test.cpp)
target_include_directories(clickhouse_conformance_tests PRIVATE tests/unit)
target_compile_definitions(clickhouse_conformance_tests PRIVATE TALLY_BINARY="$<TARGET_FILE:tally>"
                                                               TALLY_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
target_link_libraries(clickhouse_conformance_tests PRIVATE tally_models tally_insights tally_metrics
                                                           tally_clickhouse
                                                           tally_ingest
                                                           tally_core GTest::gtest GTest::gtest_main)
add_test(NAME clickhouse_conformance COMMAND clickhouse_conformance_tests)
set_tests_properties(clickhouse_conformance PROPERTIES TIMEOUT 900 COST 2000)

# bench/scale_bench.cpp: load and query on DuckDB and on 1- and 2-shard clusters (make bench writes
# bench/results/scale.json; make test runs --short into the build tree).
add_executable(scale_bench bench/scale_bench.cpp)
target_link_libraries(scale_bench PRIVATE tally_metrics tally_clickhouse tally_ingest tally_core
                                          CLI11::CLI11)
if(NOT TALLY_SANITIZE)
  add_test(NAME bench_short.scale COMMAND scale_bench --short
           --out ${CMAKE_BINARY_DIR}/bench_short/scale.json)
  set_tests_properties(bench_short.scale PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endif()
