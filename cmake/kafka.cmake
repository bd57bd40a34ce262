# Kafka consumer source (src/ingest/kafka_source.*): library tally_kafka.
add_library(tally_kafka INTERFACE)
