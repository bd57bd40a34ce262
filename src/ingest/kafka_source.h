#pragma once
// The Kafka ingest source: consumes topics in a consumer group and hands batches to an IngestSink,
// committing a batch's offsets only once the sink reports its rows durable.
//
// Delivery is at least once. Every row reaches the sink one or more times, and the sink's dedup
// by event id turns redelivery into "duplicate" counts rather than double rows. The offsets in the
// group are a promise that everything before them is durable, so they never move past a message
// that has not been acknowledged by an ok IngestAck. The reason for committing after the sink and
// never before: a crash between the two costs a redelivery, the other order would cost data.
//
// How messages become requests:
//  * Each message value holds one or more NDJSON lines of its topic's event family (a trailing
//    newline is allowed; an empty value carries no rows but its offset is still committed).
//  * Messages are buffered until `max_batch_messages` are held or `max_batch_wait` has passed
//    since the first of them. The batch then becomes one IngestRequest per family: the values of
//    that family's messages joined with '\n', labelled with the partitions and offsets they came
//    from, e.g. "kafka:tally.usage/0@1200-1399,tally.usage/2@800-950".
//  * The requests of a batch are delivered one after the other, on the consumer thread.
//
// What happens to offsets:
//  * enable.auto.commit and enable.auto.offset.store are off. When every request of the batch got
//    an ok ack, the batch's offsets (the next offset of each partition in it) are committed
//    synchronously. Rows that the sink rejected inside an ok ack are in quarantine, so their
//    offsets are committed too. A failed commit is logged and retried with the next batch (or after
//    `retry_backoff` when idle); the rows are durable, so at worst they are redelivered.
//  * When an Ingest fails (non-ok status), nothing of the batch is committed: the consumed
//    partitions are rewound to the batch's first offsets, the source waits `retry_backoff`, and the
//    same messages are delivered again. Requests of the batch that had already succeeded are
//    redelivered too; the sink dedups them.
//  * On a rebalance (eager or cooperative), revoked partitions lose their buffered messages, which
//    the partitions' next owner reads again from the committed offsets. Offsets of batches already
//    acknowledged but not yet committed are committed before the partitions are given up.
//  * Without a committed offset, a partition is read from its beginning (auto.offset.reset =
//    earliest), because an ingest source would rather re-read than skip.
//
// Errors: Kafka and consumer errors (broker down, failed commit, ...) never stop the source. They
// are counted and the last one is kept in Stats; the consumer keeps going. librdkafka's own log
// lines go to stderr, as librdkafka does by default.
//
// Thread safety: Start() starts one consumer thread that owns the Kafka handle and calls the sink.
// stats() and Stop() may be called from any thread. Stop() waits for an Ingest in progress to
// return, so a sink that never returns keeps Stop() waiting.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ingest/ingest_request.h"
#include "model/enums.h"

namespace tally {

//! How to reach Kafka, what to read, and how big the batches handed to the sink may grow.
struct KafkaSourceOptions {
  std::string brokers;                                      // bootstrap servers, "host:port,..."
  std::string group_id = "tally";                           // consumer group
  std::vector<std::pair<std::string, EventFamily>> topics;  // topic -> family of its messages
  int max_batch_messages = 10000;  // hand over a batch when this many messages are buffered...
  std::chrono::milliseconds max_batch_wait{200};  // ...or this long after the first one
  std::chrono::milliseconds retry_backoff{500};   // wait after a failed Ingest before redelivery
  //! librdkafka properties (rd_kafka_conf_set), applied after tally's defaults so they can tune
  //! anything except turning on enable.auto.commit or enable.auto.offset.store.
  std::vector<std::pair<std::string, std::string>> extra_config;
};

//! Reads Kafka topics in a consumer group and hands them to an IngestSink in batches, committing
//! each batch's offsets only after the sink has made it durable.
class KafkaSource {
 public:
  //! Counters since Start(). Safe to read while the source runs.
  struct Stats {
    int64_t messages = 0;           // messages consumed, redeliveries included
    int64_t batches = 0;            // batches handed to the sink
    int64_t committed_batches = 0;  // batches whose offsets were committed
    int64_t failed_batches = 0;     // batches in which an Ingest failed (to be redelivered)
    IngestCounts counts;            // sum of the counts of all ok acks
    int64_t errors = 0;             // Kafka, consumer and commit errors, and failed Ingests
    std::string last_error;         // the most recent of those, "" if none
  };

  //! Checks the options, creates the consumer, subscribes to the topics and starts the consumer
  //! thread. `sink` must outlive the source. Errors name the bad option; broker problems are not
  //! errors here (Kafka reconnects on its own) but show up in stats().
  static Result<std::unique_ptr<KafkaSource>> Start(KafkaSourceOptions options, IngestSink* sink);

  ~KafkaSource();  // Stop()
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  //! Leaves the group cleanly and joins the consumer thread. Buffered messages that were not
  //! committed are dropped and will be redelivered to the group. Idempotent.
  void Stop();

  Stats stats() const;

 private:
  class Consumer;  // the consumer thread's state, in kafka_source.cpp
  explicit KafkaSource(std::unique_ptr<Consumer> consumer);

  std::unique_ptr<Consumer> consumer_;
};

//! Parses the topic list of the configuration, "usage=tally.usage,recharge=tally.recharge":
//! family=topic pairs, family names as in enums.h, spaces around names ignored. A family may read
//! several topics, a topic belongs to one family. Errors name the bad pair.
Result<std::vector<std::pair<std::string, EventFamily>>> ParseKafkaTopics(std::string_view spec);

}  // namespace tally
