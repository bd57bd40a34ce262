// KafkaSource against librdkafka's built-in mock cluster: every produced row reaches the sink,
// offsets are committed only after the sink acknowledged, failed batches are redelivered, and a
// restarted or rebalanced group loses nothing.

#include "ingest/kafka_source.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tally {
namespace {

using namespace std::chrono_literals;

//! Polls `done` until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 60s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

std::vector<std::string> SplitLines(const std::string& body) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    lines.push_back(body.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

//! Stands in for the ingest pipeline: stores rows in a set keyed by their text (the pipeline dedups
//! by event id), rejects lines starting with "bad" as undecodable, and fails calls when told to.
class SetSink : public IngestSink {
 public:
  //! One Ingest() as the sink saw it.
  struct Call {
    EventFamily family;
    std::string source;
    std::vector<std::string> lines;
    bool ok;
  };

  IngestAck Ingest(IngestRequest request) override {
    std::vector<std::string> lines = SplitLines(request.body);
    bool fail = false;
    std::function<void()> on_failure;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu_);
      fail = fail_next_ > 0 || (fail_after_ok_calls_ >= 0 && ok_calls_ >= fail_after_ok_calls_);
      if (fail_next_ > 0) --fail_next_;
      if (fail) on_failure = on_failure_;
      delay = delay_;
    }
    if (on_failure) on_failure();  // outside the lock: it may take a while
    if (delay.count() > 0) std::this_thread::sleep_for(delay);

    std::lock_guard lock(mu_);
    calls_.push_back({request.family, request.source, lines, !fail});
    if (fail) return IngestAck{Status::Unavailable("test sink told to fail"), {}, ""};
    ++ok_calls_;
    IngestCounts counts;
    for (const std::string& line : lines) {
      ++counts.read;
      if (line.starts_with("bad")) {
        ++counts.rejected;
      } else if (rows_.insert(line).second) {
        ++counts.accepted;
      } else {
        ++counts.duplicate;
      }
    }
    return IngestAck{Status::Ok(), counts, "load-" + std::to_string(calls_.size())};
  }

  void FailNext(int n) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
  }
  //! Every call after `n` successful ones fails; -1 turns this off.
  void FailAfterOkCalls(int n) {
    std::lock_guard lock(mu_);
    fail_after_ok_calls_ = n;
  }
  //! Runs on the source's thread inside each failing call, before it returns.
  void OnFailure(std::function<void()> f) {
    std::lock_guard lock(mu_);
    on_failure_ = std::move(f);
  }
  void SetDelay(std::chrono::milliseconds d) {
    std::lock_guard lock(mu_);
    delay_ = d;
  }

  std::set<std::string> rows() const {
    std::lock_guard lock(mu_);
    return rows_;
  }
  size_t row_count() const {
    std::lock_guard lock(mu_);
    return rows_.size();
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int ok_calls() const {
    std::lock_guard lock(mu_);
    return ok_calls_;
  }
  int failed_calls() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(calls_.size()) - ok_calls_;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> rows_;
  std::vector<Call> calls_;
  int ok_calls_ = 0;
  int fail_next_ = 0;
  int fail_after_ok_calls_ = -1;
  std::function<void()> on_failure_;
  std::chrono::milliseconds delay_{0};
};

//! The rows of the message at `offset` of `topic`/`partition`: one NDJSON line, three for every
//! seventh message; every eleventh value ends with a newline, as some producers write them.
std::vector<std::string> MessageLines(const std::string& family, const std::string& topic,
                                      int partition, int64_t offset) {
  const int n = offset % 7 == 0 ? 3 : 1;
  std::vector<std::string> lines;
  for (int k = 0; k < n; ++k) {
    lines.push_back(R"({"family":")" + family + R"(","event_id":")" + topic + "-" +
                    std::to_string(partition) + "-" + std::to_string(offset) + "-" +
                    std::to_string(k) + R"("})");
  }
  return lines;
}

std::string MessageValue(const std::vector<std::string>& lines, int64_t offset) {
  std::string value;
  for (const std::string& line : lines) {
    if (!value.empty()) value += '\n';
    value += line;
  }
  if (offset % 11 == 0) value += '\n';
  return value;
}

//! A one-broker librdkafka mock cluster, a producer into it and readers of committed offsets.
class KafkaSourceTest : public ::testing::Test {
 protected:
  static constexpr const char* kGroup = "tally-test";

  void SetUp() override {
    char errstr[512];
    // The handle that hosts the mock cluster never connects anywhere: quiet its notice about that.
    rd_kafka_conf_t* host_conf = rd_kafka_conf_new();
    ASSERT_EQ(rd_kafka_conf_set(host_conf, "log_level", "4", errstr, sizeof errstr),
              RD_KAFKA_CONF_OK);
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, host_conf, errstr, sizeof errstr);
    ASSERT_NE(host_, nullptr) << errstr;
    cluster_ = rd_kafka_mock_cluster_new(host_, 1);
    ASSERT_NE(cluster_, nullptr);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);

    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    ASSERT_EQ(
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    ASSERT_EQ(rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      if (m->err) static_cast<KafkaSourceTest*>(opaque)->failed_deliveries_++;
    });
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ASSERT_NE(producer_, nullptr) << errstr;
  }

  void TearDown() override {
    for (auto& [group, reader] : readers_) rd_kafka_destroy(reader);
    if (producer_) rd_kafka_destroy(producer_);
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
    if (host_) rd_kafka_destroy(host_);
  }

  void CreateTopic(const std::string& topic, int partitions, EventFamily family) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    topics_[topic] = {partitions, family};
  }

  void Produce(const std::string& topic, int partition, const std::string& value) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
        return;
      }
      rd_kafka_poll(producer_, 50);
    }
  }

  //! Produces the next `count` generated messages round-robin over the partitions of `topic` and
  //! adds their rows to `expected_`.
  void ProduceGenerated(const std::string& topic, int count) {
    const auto& [partitions, family] = topics_.at(topic);
    for (int i = 0; i < count; ++i) {
      const int p = i % partitions;
      const int64_t offset = produced_[{topic, p}]++;
      std::vector<std::string> lines = MessageLines(std::string(Name(family)), topic, p, offset);
      Produce(topic, p, MessageValue(lines, offset));
      expected_.insert(lines.begin(), lines.end());
    }
  }

  //! Produces a message that is not a generated one (a bad row, an empty value).
  void ProduceRaw(const std::string& topic, int partition, const std::string& value) {
    Produce(topic, partition, value);
    ++produced_[{topic, partition}];
  }

  void Flush() {
    ASSERT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(failed_deliveries_, 0);
  }

  //! Offset after the last message of each partition of `topic`, as the broker reports it.
  std::vector<int64_t> EndOffsets(const std::string& topic) {
    std::vector<int64_t> out;
    for (int p = 0; p < topics_.at(topic).first; ++p) {
      int64_t low = -1, high = -1;
      EXPECT_EQ(rd_kafka_query_watermark_offsets(producer_, topic.c_str(), p, &low, &high, 5000),
                RD_KAFKA_RESP_ERR_NO_ERROR);
      EXPECT_EQ(high, (produced_[{topic, p}]));
      out.push_back(high);
    }
    return out;
  }

  //! The group's committed offsets of each partition of `topic` (-1001, "invalid", if none).
  //! Safe to call from any thread.
  std::vector<int64_t> Committed(const std::string& topic, const std::string& group = kGroup) {
    rd_kafka_t* reader = Reader(group);
    const int partitions = topics_.at(topic).first;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    std::vector<int64_t> out(partitions, -2);  // -2: the read itself failed
    if (rd_kafka_committed(reader, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return out;
  }

  KafkaSourceOptions Options(std::vector<std::pair<std::string, EventFamily>> topics) {
    KafkaSourceOptions o;
    o.brokers = bootstraps_;
    o.group_id = kGroup;
    o.topics = std::move(topics);
    o.max_batch_wait = 20ms;
    o.retry_backoff = 50ms;
    // The mock cluster waits (session timeout - 1 s) for members to rejoin a rebalance: keep the
    // session short. Metadata and fetch waits are shortened so the tests do not idle.
    o.extra_config = {{"session.timeout.ms", "3000"},
                      {"heartbeat.interval.ms", "300"},
                      {"topic.metadata.refresh.interval.ms", "500"},
                      {"fetch.wait.max.ms", "50"},
                      {"fetch.error.backoff.ms", "50"}};
    return o;
  }

  std::unique_ptr<KafkaSource> StartSource(KafkaSourceOptions options, IngestSink* sink) {
    auto source = KafkaSource::Start(std::move(options), sink);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return source.ok() ? std::move(source).value() : nullptr;
  }

  std::string bootstraps_;
  std::set<std::string> expected_;                           // every generated row produced so far
  std::map<std::pair<std::string, int>, int64_t> produced_;  // messages per partition

 private:
  rd_kafka_t* Reader(const std::string& group) {
    std::lock_guard lock(readers_mu_);
    rd_kafka_t*& reader = readers_[group];
    if (reader == nullptr) {
      char errstr[512];
      rd_kafka_conf_t* conf = rd_kafka_conf_new();
      rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), errstr, sizeof errstr);
      rd_kafka_conf_set(conf, "group.id", group.c_str(), errstr, sizeof errstr);
      reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    }
    return reader;
  }

  rd_kafka_t* host_ = nullptr;  // owns the mock cluster
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::atomic<int> failed_deliveries_{0};
  std::map<std::string, std::pair<int, EventFamily>> topics_;  // partitions, family
  std::mutex readers_mu_;
  std::map<std::string, rd_kafka_t*> readers_;  // group -> consumer that only reads offsets
};

TEST_F(KafkaSourceTest, DeliversEveryRowAndCommitsTheEndOffsets) {
  CreateTopic("tally.usage", 3, EventFamily::kUsage);
  CreateTopic("tally.recharge", 1, EventFamily::kRecharge);
  ProduceGenerated("tally.usage", 5000);
  ProduceGenerated("tally.recharge", 300);
  ProduceRaw("tally.usage", 1, "bad row: not json");  // rejected, but its offset is committed
  ProduceRaw("tally.usage", 2, "");                   // no rows, but its offset is committed
  Flush();
  const std::vector<int64_t> usage_end = EndOffsets("tally.usage");
  const std::vector<int64_t> recharge_end = EndOffsets("tally.recharge");

  SetSink sink;
  KafkaSourceOptions options =
      Options({{"tally.usage", EventFamily::kUsage}, {"tally.recharge", EventFamily::kRecharge}});
  options.max_batch_messages = 500;
  auto source = StartSource(std::move(options), &sink);
  ASSERT_NE(source, nullptr);

  ASSERT_TRUE(WaitFor([&] { return sink.row_count() >= expected_.size(); }))
      << sink.row_count() << " of " << expected_.size() << " rows arrived";
  ASSERT_TRUE(WaitFor([&] {
    return Committed("tally.usage") == usage_end && Committed("tally.recharge") == recharge_end;
  })) << "usage committed "
      << ::testing::PrintToString(Committed("tally.usage")) << ", end "
      << ::testing::PrintToString(usage_end);
  ASSERT_TRUE(WaitFor([&] {
    auto s = source->stats();
    return s.committed_batches == s.batches;
  }));

  EXPECT_EQ(sink.rows(), expected_);
  for (const SetSink::Call& call : sink.calls()) {
    ASSERT_TRUE(call.ok);
    const std::string topic = call.family == EventFamily::kUsage ? "tally.usage" : "tally.recharge";
    const std::string other = call.family == EventFamily::kUsage ? "tally.recharge" : "tally.usage";
    EXPECT_TRUE(call.source.starts_with("kafka:" + topic + "/")) << call.source;
    EXPECT_EQ(call.source.find(other), std::string::npos) << call.source;
    for (const std::string& line : call.lines) {
      if (line.starts_with("bad")) continue;
      EXPECT_NE(line.find("\"family\":\"" + std::string(Name(call.family)) + "\""),
                std::string::npos)
          << line << " delivered as " << Name(call.family);
    }
  }
  const KafkaSource::Stats stats = source->stats();
  EXPECT_EQ(stats.messages, 5000 + 300 + 2);
  EXPECT_EQ(stats.failed_batches, 0);
  EXPECT_GT(stats.batches, 5300 / 500 - 1);  // batches are capped at 500 messages
  EXPECT_EQ(stats.counts.accepted, static_cast<int64_t>(expected_.size()));
  EXPECT_EQ(stats.counts.rejected, 1);
  EXPECT_EQ(stats.counts.duplicate, 0);
  EXPECT_EQ(stats.errors, 0) << stats.last_error;
}

TEST_F(KafkaSourceTest, FailedIngestIsNeverCommittedAndIsRedelivered) {
  CreateTopic("tally.usage", 2, EventFamily::kUsage);
  SetSink sink;
  std::mutex snapshots_mu;
  std::vector<std::vector<int64_t>> committed_at_failure;
  sink.OnFailure([&] {
    std::vector<int64_t> committed = Committed("tally.usage");
    std::lock_guard lock(snapshots_mu);
    committed_at_failure.push_back(committed);
  });

  // Phase 1 goes through and is committed.
  ProduceGenerated("tally.usage", 400);
  Flush();
  const std::vector<int64_t> end1 = EndOffsets("tally.usage");
  KafkaSourceOptions options = Options({{"tally.usage", EventFamily::kUsage}});
  options.max_batch_messages = 100;
  options.retry_backoff = 100ms;
  auto source = StartSource(std::move(options), &sink);
  ASSERT_NE(source, nullptr);
  ASSERT_TRUE(WaitFor([&] { return Committed("tally.usage") == end1; }));
  ASSERT_EQ(sink.row_count(), expected_.size());

  // Phase 2: the next three Ingest calls fail.
  sink.FailNext(3);
  ProduceGenerated("tally.usage", 1200);
  Flush();
  const std::vector<int64_t> end2 = EndOffsets("tally.usage");
  ASSERT_TRUE(WaitFor([&] { return sink.row_count() >= expected_.size(); }))
      << sink.row_count() << " of " << expected_.size() << " rows arrived";
  ASSERT_TRUE(WaitFor([&] { return Committed("tally.usage") == end2; }))
      << ::testing::PrintToString(Committed("tally.usage"));

  EXPECT_EQ(sink.rows(), expected_);
  {
    std::lock_guard lock(snapshots_mu);
    ASSERT_EQ(committed_at_failure.size(), 3u);
    for (const auto& committed : committed_at_failure) {
      EXPECT_EQ(committed, end1) << "the committed offsets moved while Ingest was failing";
    }
  }
  // Every row of a failed call came again in a later successful call.
  const std::vector<SetSink::Call> calls = sink.calls();
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].ok) continue;
    ASSERT_FALSE(calls[i].lines.empty());
    for (const std::string& line : calls[i].lines) {
      bool redelivered = false;
      for (size_t j = i + 1; j < calls.size() && !redelivered; ++j) {
        redelivered = calls[j].ok && std::find(calls[j].lines.begin(), calls[j].lines.end(),
                                               line) != calls[j].lines.end();
      }
      EXPECT_TRUE(redelivered) << line << " of failed call " << i << " was not redelivered";
    }
  }
  const KafkaSource::Stats stats = source->stats();
  EXPECT_EQ(stats.failed_batches, 3);
  EXPECT_EQ(stats.counts.duplicate, 0) << "a failed call stored nothing, so nothing repeats";
  EXPECT_NE(stats.last_error.find("test sink told to fail"), std::string::npos) << stats.last_error;
}

TEST_F(KafkaSourceTest, RestartResumesFromCommittedOffsetsAndRedeliversTheRest) {
  CreateTopic("tally.usage", 3, EventFamily::kUsage);
  ProduceGenerated("tally.usage", 3000);
  Flush();
  const std::vector<int64_t> end = EndOffsets("tally.usage");

  // The first source gets three batches through, then its sink fails until it is stopped.
  SetSink sink;
  sink.FailAfterOkCalls(3);
  KafkaSourceOptions options = Options({{"tally.usage", EventFamily::kUsage}});
  options.max_batch_messages = 200;
  auto first = StartSource(options, &sink);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sink.failed_calls() >= 2; }));
  first->Stop();
  EXPECT_GE(first->stats().failed_batches, 2);
  EXPECT_EQ(first->stats().committed_batches, 3);

  std::vector<int64_t> committed = Committed("tally.usage");
  int64_t committed_messages = 0, total_messages = 0;
  for (size_t p = 0; p < committed.size(); ++p) {
    ASSERT_NE(committed[p], -2);
    if (committed[p] < 0) committed[p] = 0;  // never committed: starts from the beginning
    committed_messages += committed[p];
    total_messages += end[p];
  }
  ASSERT_GT(committed_messages, 0);
  ASSERT_LT(committed_messages, total_messages) << "the first source should have stopped early";
  // What was committed is stored.
  const std::set<std::string> stored = sink.rows();
  for (int p = 0; p < 3; ++p) {
    for (int64_t offset = 0; offset < committed[p]; ++offset) {
      for (const std::string& line : MessageLines("usage", "tally.usage", p, offset)) {
        ASSERT_TRUE(stored.count(line)) << line << " is committed but not stored";
      }
    }
  }

  // The second source, in the same group, reads exactly the uncommitted messages once.
  sink.FailAfterOkCalls(-1);
  const size_t mark = sink.calls().size();
  auto second = StartSource(options, &sink);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(WaitFor([&] { return Committed("tally.usage") == end; }))
      << ::testing::PrintToString(Committed("tally.usage"));
  second->Stop();

  EXPECT_EQ(sink.rows(), expected_) << "rows were lost across the restart";
  std::vector<std::string> delivered, uncommitted;
  const std::vector<SetSink::Call> calls = sink.calls();
  for (size_t i = mark; i < calls.size(); ++i) {
    ASSERT_TRUE(calls[i].ok);
    delivered.insert(delivered.end(), calls[i].lines.begin(), calls[i].lines.end());
  }
  for (int p = 0; p < 3; ++p) {
    for (int64_t offset = committed[p]; offset < end[p]; ++offset) {
      for (const std::string& line : MessageLines("usage", "tally.usage", p, offset)) {
        uncommitted.push_back(line);
      }
    }
  }
  std::sort(delivered.begin(), delivered.end());
  std::sort(uncommitted.begin(), uncommitted.end());
  EXPECT_EQ(delivered.size(), uncommitted.size());
  EXPECT_TRUE(delivered == uncommitted)
      << "the restarted source must start at the committed offsets, not before or after";
  EXPECT_EQ(second->stats().failed_batches, 0);
}

TEST_F(KafkaSourceTest, RebalanceBetweenTwoSourcesLosesNothing) {
  CreateTopic("tally.usage", 4, EventFamily::kUsage);
  ProduceGenerated("tally.usage", 4000);
  Flush();
  const std::vector<int64_t> end = EndOffsets("tally.usage");

  SetSink sink;
  sink.SetDelay(40ms);  // slow enough that the second source joins with work left
  KafkaSourceOptions options = Options({{"tally.usage", EventFamily::kUsage}});
  options.max_batch_messages = 50;
  auto first = StartSource(options, &sink);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sink.ok_calls() >= 3; }));
  auto second = StartSource(options, &sink);  // joining revokes and splits the partitions
  ASSERT_NE(second, nullptr);

  ASSERT_TRUE(WaitFor([&] { return Committed("tally.usage") == end; }, 120s))
      << ::testing::PrintToString(Committed("tally.usage"));
  EXPECT_EQ(sink.rows(), expected_);
  EXPECT_GT(second->stats().batches, 0) << "the second source never got a partition";
  EXPECT_GT(first->stats().batches, 0);
}

TEST(ParseKafkaTopics, ReadsFamilyTopicPairs) {
  auto topics = ParseKafkaTopics(" usage = tally.usage,recharge=tally.recharge ,usage=usage-2");
  ASSERT_TRUE(topics.ok()) << topics.status().ToString();
  const std::vector<std::pair<std::string, EventFamily>> want = {
      {"tally.usage", EventFamily::kUsage},
      {"tally.recharge", EventFamily::kRecharge},
      {"usage-2", EventFamily::kUsage}};
  EXPECT_EQ(*topics, want);
}

TEST(ParseKafkaTopics, ErrorsNameTheBadEntry) {
  struct Case {
    const char* spec;
    const char* named;
  };
  for (const Case& c :
       {Case{"usage=tally.usage,bogus=tally.bogus", "bogus=tally.bogus"},
        Case{"usage=tally.usage,recharge", "entry 2 'recharge'"}, Case{"usage=", "'usage='"},
        Case{"usage=a,,recharge=b", "entry 2"}, Case{"usage=tally usage", "'usage=tally usage'"},
        Case{"usage=t,recharge=t", "recharge=t"}, Case{"  ", "empty"}}) {
    auto topics = ParseKafkaTopics(c.spec);
    ASSERT_FALSE(topics.ok()) << c.spec;
    EXPECT_EQ(topics.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(topics.status().message().find(c.named), std::string::npos)
        << c.spec << " -> " << topics.status().message();
  }
  // The family error lists the accepted names.
  EXPECT_NE(ParseKafkaTopics("bogus=t").status().message().find("usage, recharge"),
            std::string::npos);
}

TEST(KafkaSourceStart, RejectsOptionsThatBreakTheContract) {
  SetSink sink;
  KafkaSourceOptions good;
  good.brokers = "localhost:1";  // never contacted: every case fails before connecting
  good.topics = {{"tally.usage", EventFamily::kUsage}};

  struct Case {
    std::function<void(KafkaSourceOptions&)> change;
    const char* named;
  };
  const std::vector<Case> cases = {
      {[](KafkaSourceOptions& o) { o.topics.clear(); }, "no topics"},
      {[](KafkaSourceOptions& o) { o.brokers.clear(); }, "brokers"},
      {[](KafkaSourceOptions& o) {
         o.topics.push_back({"^tally.*", EventFamily::kApp});
       },
       "'^tally.*'"},
      {[](KafkaSourceOptions& o) {
         o.topics.push_back({"tally.usage", EventFamily::kApp});
       },
       "listed twice"},
      {[](KafkaSourceOptions& o) { o.max_batch_messages = 0; }, "max_batch_messages"},
      {[](KafkaSourceOptions& o) {
         o.extra_config = {{"enable.auto.commit", "true"}};
       },
       "enable.auto.commit=true"},
      {[](KafkaSourceOptions& o) {
         o.extra_config = {{"no.such.option", "1"}};
       },
       "no.such.option"},
  };
  for (const Case& c : cases) {
    KafkaSourceOptions o = good;
    c.change(o);
    auto source = KafkaSource::Start(o, &sink);
    ASSERT_FALSE(source.ok()) << c.named;
    EXPECT_NE(source.status().message().find(c.named), std::string::npos)
        << source.status().message();
  }
  EXPECT_FALSE(KafkaSource::Start(good, nullptr).ok());
}

}  // namespace
}  // namespace tally
