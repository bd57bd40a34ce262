# Kafka consumer source (src/ingest/kafka_source.*): library tally_kafka, on librdkafka.
# kafka_tests runs it against librdkafka's built-in mock cluster, so no broker is needed.
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)

add_library(tally_kafka STATIC src/ingest/kafka_source.cpp)
target_link_libraries(tally_kafka PUBLIC tally_core PRIVATE PkgConfig::RDKAFKA)

file(GLOB TALLY_KAFKA_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/kafka/*_test.cpp)
add_executable(kafka_tests ${TALLY_KAFKA_TESTS})
# The tests drive the mock cluster and a producer through librdkafka directly.
target_link_libraries(kafka_tests PRIVATE tally_kafka PkgConfig::RDKAFKA GTest::gtest GTest::gtest_main)
include(GoogleTest)
gtest_discover_tests(kafka_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
