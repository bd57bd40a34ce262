// Kafka into the real pipeline and store, on librdkafka's mock cluster: every message is stored
// once, and a full redelivery (offsets rewound to the start) changes nothing.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <filesystem>
#include <thread>

#include "ingest/kafka_source.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

using namespace std::chrono_literals;

class MockKafka {
 public:
  MockKafka() {
    char err[512];
    rd_kafka_conf_t* host_conf = rd_kafka_conf_new();
    rd_kafka_conf_set(host_conf, "log_level", "4", err, sizeof err);
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, host_conf, err, sizeof err);
    cluster_ = rd_kafka_mock_cluster_new(host_, 1);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), err, sizeof err);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  }
  ~MockKafka() {
    rd_kafka_destroy(producer_);
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(host_);
  }
  void CreateTopic(const std::string& t, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, t.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  void Produce(const std::string& topic, int partition, const std::string& value) {
    while (rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_, 50);
    }
  }
  void Flush() { ASSERT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR); }
  const std::string& bootstraps() const { return bootstraps_; }

 private:
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::string bootstraps_;
};

KafkaSourceOptions Options(const std::string& brokers) {
  KafkaSourceOptions o;
  o.brokers = brokers;
  o.group_id = "tally-ingest";
  o.topics = {{"cdr.usage", EventFamily::kUsage}};
  o.max_batch_wait = 50ms;
  o.extra_config = {{"session.timeout.ms", "3000"},
                    {"heartbeat.interval.ms", "300"},
                    {"topic.metadata.refresh.interval.ms", "500"},
                    {"fetch.wait.max.ms", "50"}};
  return o;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout = 60s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

TEST(KafkaIngest, EveryMessageIsStoredOnceEvenWhenRedelivered) {
  MockKafka kafka;
  kafka.CreateTopic("cdr.usage", 3);
  constexpr int kMessages = 3000;
  for (int i = 0; i < kMessages; ++i) {
    const std::string line = "{\"event_id\":\"kf" + std::to_string(i) + "\",\"ts\":\"2024-07-0" +
                             std::to_string(1 + i % 7) + "T08:00:00Z\",\"kind\":\"sms\",\"subscriber_id\":" +
                             std::to_string(1 + i % 40) + ",\"partner_id\":0,\"roaming\":false,\"session_ref\":\"x\"}";
    kafka.Produce("cdr.usage", i % 3, line);
    if (i % 10 == 0) kafka.Produce("cdr.usage", (i + 1) % 3, line);  // a producer retry: same event twice
  }
  kafka.Produce("cdr.usage", 0, "{\"event_id\": broken");  // quarantined, and its offset still commits
  kafka.Flush();
  const std::string dir = TempDir("kafka_ingest");
  StoreFixture s(dir);
  {
    auto source = KafkaSource::Start(Options(kafka.bootstraps()), &s.pipeline());
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_TRUE(WaitFor([&] { return (*source)->stats().messages >= kMessages + kMessages / 10 + 1; }));
    EXPECT_TRUE(WaitFor([&] { return s.Rows(EventFamily::kUsage) == kMessages; }));
    (*source)->Stop();
    const auto stats = (*source)->stats();
    EXPECT_EQ(stats.counts.duplicate, kMessages / 10);
    EXPECT_EQ(stats.counts.rejected, 1);
  }
  // The whole topic again, as after a consumer-group reset (here: a new group reading from the
  // earliest offset): nothing changes.
  KafkaSourceOptions fresh = Options(kafka.bootstraps());
  fresh.group_id = "tally-ingest-replay";
  auto again = KafkaSource::Start(fresh, &s.pipeline());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(WaitFor([&] { return (*again)->stats().counts.duplicate >= kMessages + kMessages / 10; }));
  (*again)->Stop();
  EXPECT_EQ((*again)->stats().counts.accepted, 0);
  EXPECT_EQ(s.Rows(EventFamily::kUsage), kMessages);
  EXPECT_EQ(s.DistinctIds(EventFamily::kUsage), kMessages);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally::testing
