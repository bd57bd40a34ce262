#include "ingest/kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

namespace tally {

namespace {

using Clock = std::chrono::steady_clock;

// How long a poll may block when nothing is buffered: bounds how late Stop() is noticed.
constexpr std::chrono::milliseconds kPollSlice{100};
// How long a rewind may wait for the fetcher to drop what it prefetched from the old position.
constexpr int kSeekTimeoutMs = 10000;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* error) const { rd_kafka_error_destroy(error); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using ListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

//! One partition of one topic, as a map key.
struct PartitionKey {
  std::string topic;
  int32_t partition = 0;
};

//! A partition named without owning its topic string, to look keys up per message without copying.
struct PartitionRef {
  std::string_view topic;
  int32_t partition = 0;
};

//! Orders PartitionKeys and compares them with PartitionRefs (a transparent comparator).
struct PartitionLess {
  using is_transparent = void;
  static std::tuple<std::string_view, int32_t> Tie(const PartitionKey& k) {
    return {k.topic, k.partition};
  }
  static std::tuple<std::string_view, int32_t> Tie(const PartitionRef& r) {
    return {r.topic, r.partition};
  }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return Tie(a) < Tie(b);
  }
};

template <typename V>
using PartitionMap = std::map<PartitionKey, V, PartitionLess>;

//! The messages of one partition buffered for the next batch: a contiguous run of offsets.
struct PartitionBuffer {
  EventFamily family = EventFamily::kUsage;
  int64_t first_offset = 0;  // offset of the first buffered message: where a rewind goes
  int64_t next_offset = 0;   // offset after the last buffered message: what a commit stores
  int64_t messages = 0;
  std::string body;  // the message values joined with '\n'
};

std::string Describe(std::string_view topic, int32_t partition) {
  return std::string(topic) + "/" + std::to_string(partition);
}

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-]. Checking it here turns a typo into an
// error at startup instead of a subscription that silently matches nothing.
Status CheckTopicName(std::string_view topic) {
  if (topic.empty()) return Status::InvalidArgument("the topic name is empty");
  if (topic.size() > 249) {
    return Status::InvalidArgument("topic '" + std::string(topic.substr(0, 64)) +
                                   "...' is longer than 249 characters");
  }
  for (char c : topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("topic '" + std::string(topic) + "' has the character '" +
                                     std::string(1, c) + "' (allowed: a-z A-Z 0-9 . _ -)");
    }
  }
  return Status::Ok();
}

Status CheckOptions(const KafkaSourceOptions& o, const IngestSink* sink) {
  if (sink == nullptr) return Status::InvalidArgument("kafka source: no sink given");
  if (Trim(o.brokers).empty()) return Status::InvalidArgument("kafka source: brokers is empty");
  if (o.group_id.empty()) return Status::InvalidArgument("kafka source: group_id is empty");
  if (o.topics.empty()) return Status::InvalidArgument("kafka source: no topics to read");
  std::set<std::string_view> seen;
  for (const auto& [topic, family] : o.topics) {
    TALLY_RETURN_IF_ERROR(CheckTopicName(topic).WithContext("kafka source"));
    if (!seen.insert(topic).second) {
      return Status::InvalidArgument("kafka source: topic '" + topic + "' is listed twice");
    }
  }
  if (o.max_batch_messages <= 0) {
    return Status::InvalidArgument("kafka source: max_batch_messages is " +
                                   std::to_string(o.max_batch_messages) + ", must be positive");
  }
  if (o.max_batch_wait.count() < 0 || o.retry_backoff.count() < 0) {
    return Status::InvalidArgument("kafka source: negative max_batch_wait or retry_backoff");
  }
  for (const auto& [key, value] : o.extra_config) {
    if ((key == "enable.auto.commit" || key == "enable.auto.offset.store") && value != "false") {
      return Status::InvalidArgument("kafka source: extra_config '" + key + "=" + value +
                                     "' would commit offsets before the sink made the rows "
                                     "durable; only 'false' is allowed");
    }
  }
  return Status::Ok();
}

}  // namespace

//! The consumer thread and everything it owns: the Kafka handle, the buffered batch, the offsets
//! still to commit or to rewind to. Only the consumer thread touches these (librdkafka calls the
//! rebalance and error callbacks from rd_kafka_consumer_poll on that thread); stats are shared
//! under a mutex.
class KafkaSource::Consumer {
 public:
  Consumer(KafkaSourceOptions options, IngestSink* sink)
      : options_(std::move(options)), sink_(sink) {
    for (const auto& [topic, family] : options_.topics) families_.emplace(topic, family);
  }

  ~Consumer() {
    Stop();
    handle_.reset();
  }

  //! Creates the consumer and subscribes; the group is joined by the first poll.
  Status Connect() {
    ConfPtr conf(rd_kafka_conf_new());
    const std::vector<std::pair<std::string, std::string>> defaults = {
        {"bootstrap.servers", options_.brokers},
        {"group.id", options_.group_id},
        {"client.id", "tally"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
    };
    for (const auto* list : {&defaults, &options_.extra_config}) {
      for (const auto& [key, value] : *list) {
        char errstr[512] = "";
        if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
          return Status::InvalidArgument("kafka source: option '" + key + "=" + value +
                                         "': " + errstr);
        }
      }
    }
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::OnRebalance);
    rd_kafka_conf_set_error_cb(conf.get(), &Consumer::OnError);

    char errstr[512] = "";
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr);
    if (rk == nullptr) {
      return Status::InvalidArgument(std::string("kafka source: cannot create the consumer: ") +
                                     errstr);
    }
    conf.release();  // rd_kafka_new took it
    handle_.reset(rk);
    rd_kafka_poll_set_consumer(rk);  // serve error callbacks from the consumer poll

    ListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
    for (const auto& [topic, family] : options_.topics) {
      rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    }
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get())) {
      return Status::InvalidArgument(std::string("kafka source: cannot subscribe: ") +
                                     rd_kafka_err2str(err));
    }
    return Status::Ok();
  }

  void StartThread() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard lock(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    std::lock_guard lock(join_mu_);
    if (thread_.joinable()) thread_.join();
  }

  Stats stats() const {
    std::lock_guard lock(stats_mu_);
    return stats_;
  }

 private:
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    static_cast<Consumer*>(opaque)->Rebalance(rk, err, partitions);
  }

  static void OnError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
    static_cast<Consumer*>(opaque)->RecordError(
        std::string("kafka: ") + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) + ": " +
        reason);
  }

  bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  void Run() {
    rd_kafka_t* rk = handle_.get();
    while (!stopping()) {
      Clock::time_point now = Clock::now();
      if (!rewind_.empty() && now >= next_rewind_attempt_) Rewind();

      auto wait = kPollSlice;
      if (buffered_ > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
        wait = std::clamp(left, std::chrono::milliseconds(0), kPollSlice);
      }
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, static_cast<int>(wait.count()))) {
        Buffer(*m);
        rd_kafka_message_destroy(m);
      }

      now = Clock::now();
      if (buffered_ > 0 && (buffered_ >= options_.max_batch_messages || now >= deadline_)) {
        DeliverBatch();
      } else if (buffered_ == 0 && !pending_commit_.empty() && now >= next_commit_attempt_) {
        Commit();
      }
    }
    // What is buffered was never acknowledged: drop it, the group reads it again. What was
    // acknowledged but not yet committed gets a last chance before the group is left.
    ClearBuffer();
    if (!pending_commit_.empty()) Commit();
    if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk)) {
      RecordError(std::string("kafka: closing the consumer: ") + rd_kafka_err2str(err));
    }
  }

  //! Adds one polled message (or error) to the batch.
  void Buffer(const rd_kafka_message_t& m) {
    if (m.err) {
      if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
      std::string where = m.rkt ? " on " + Describe(rd_kafka_topic_name(m.rkt), m.partition) : "";
      RecordError("kafka: consumer error" + where + ": " + rd_kafka_message_errstr(&m));
      return;
    }
    const PartitionRef ref{rd_kafka_topic_name(m.rkt), m.partition};
    auto family = families_.find(ref.topic);
    if (family == families_.end()) {
      RecordError("kafka: message from unsubscribed topic " + Describe(ref.topic, ref.partition));
      return;
    }
    // A partition waiting for a rewind must not buffer anything: what arrives now comes from
    // after the failed batch, and committing it would skip that batch.
    if (rewind_.find(ref) != rewind_.end()) return;

    auto it = buffer_.find(ref);
    if (it == buffer_.end()) {
      PartitionBuffer fresh;
      fresh.family = family->second;
      fresh.first_offset = m.offset;
      it = buffer_.emplace(PartitionKey{std::string(ref.topic), ref.partition}, std::move(fresh))
               .first;
    }
    PartitionBuffer& b = it->second;
    std::string_view value;
    if (m.payload != nullptr) value = {static_cast<const char*>(m.payload), m.len};
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
    if (!value.empty()) {
      if (!b.body.empty()) b.body.push_back('\n');
      b.body.append(value);
    }
    b.next_offset = m.offset + 1;
    ++b.messages;
    if (buffered_++ == 0) deadline_ = Clock::now() + options_.max_batch_wait;
    std::lock_guard lock(stats_mu_);
    ++stats_.messages;
  }

  //! Hands the buffered messages to the sink, one request per family, then commits or rewinds.
  void DeliverBatch() {
    {
      std::lock_guard lock(stats_mu_);
      ++stats_.batches;
    }
    std::array<IngestRequest, kEventFamilyCount> requests;
    for (auto& [key, b] : buffer_) {
      IngestRequest& r = requests[static_cast<size_t>(b.family)];
      r.family = b.family;
      r.format = BodyFormat::kNdjson;
      r.source += r.source.empty() ? "kafka:" : ",";
      r.source += Describe(key.topic, key.partition) + "@" + std::to_string(b.first_offset) + "-" +
                  std::to_string(b.next_offset - 1);
      if (b.body.empty()) continue;
      if (r.body.empty()) {
        r.body = std::move(b.body);
      } else {
        r.body.push_back('\n');
        r.body.append(b.body);
      }
    }

    for (IngestRequest& r : requests) {
      if (r.body.empty()) continue;  // no family rows, or only empty messages
      if (stopping()) {
        ClearBuffer();  // unacknowledged; the group redelivers it
        return;
      }
      std::string label = r.source;
      IngestAck ack = sink_->Ingest(std::move(r));
      if (!ack.status.ok()) {
        RecordError("kafka: ingest of " + label +
                    " failed, will be redelivered: " + ack.status.ToString());
        {
          std::lock_guard lock(stats_mu_);
          ++stats_.failed_batches;
        }
        for (const auto& [key, b] : buffer_) rewind_[key] = b.first_offset;
        ClearBuffer();
        Rewind();
        std::unique_lock lock(stop_mu_);
        stop_cv_.wait_for(lock, options_.retry_backoff, [this] { return stopping(); });
        return;
      }
      std::lock_guard lock(stats_mu_);
      stats_.counts += ack.counts;
    }

    for (const auto& [key, b] : buffer_) {
      int64_t& next = pending_commit_[key];
      next = std::max(next, b.next_offset);
    }
    ++uncommitted_batches_;
    ClearBuffer();
    Commit();
  }

  //! Commits the offsets of acknowledged batches, synchronously. Keeps what failed for later.
  void Commit() {
    if (pending_commit_.empty()) return;
    ListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(pending_commit_.size())));
    for (const auto& [key, next] : pending_commit_) {
      rd_kafka_topic_partition_list_add(list.get(), key.topic.c_str(), key.partition)->offset =
          next;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit(handle_.get(), list.get(), 0 /* synchronous */);
    if (!err) {
      for (int i = 0; i < list->cnt; ++i) {
        const rd_kafka_topic_partition_t& p = list->elems[i];
        if (p.err) {
          err = p.err;
        } else if (auto it = pending_commit_.find(PartitionRef{p.topic, p.partition});
                   it != pending_commit_.end()) {
          pending_commit_.erase(it);
        }
      }
    }
    if (err) {
      RecordError(std::string("kafka: offset commit failed, will retry: ") + rd_kafka_err2str(err));
      next_commit_attempt_ = Clock::now() + options_.retry_backoff;
      return;
    }
    pending_commit_.clear();
    std::lock_guard lock(stats_mu_);
    stats_.committed_batches += uncommitted_batches_;
    uncommitted_batches_ = 0;
  }

  //! Seeks the partitions in rewind_ back to their first unacknowledged offsets. A partition whose
  //! seek fails stays in rewind_ (its messages are dropped meanwhile) and is tried again later.
  void Rewind() {
    ListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(rewind_.size())));
    for (const auto& [key, offset] : rewind_) {
      rd_kafka_topic_partition_list_add(list.get(), key.topic.c_str(), key.partition)->offset =
          offset;
    }
    ErrorPtr error(rd_kafka_seek_partitions(handle_.get(), list.get(), kSeekTimeoutMs));
    if (error) {
      RecordError(std::string("kafka: rewind failed, will retry: ") +
                  rd_kafka_error_string(error.get()));
    } else {
      for (int i = 0; i < list->cnt; ++i) {
        const rd_kafka_topic_partition_t& p = list->elems[i];
        if (p.err) {
          RecordError("kafka: rewind of " + Describe(p.topic, p.partition) +
                      " failed, will retry: " + rd_kafka_err2str(p.err));
        } else if (auto it = rewind_.find(PartitionRef{p.topic, p.partition});
                   it != rewind_.end()) {
          rewind_.erase(it);
        }
      }
    }
    next_rewind_attempt_ = Clock::now() + options_.retry_backoff;
  }

  void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t* partitions) {
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      // A new assignment starts from the committed offsets, which no older state can beat.
      Forget(partitions);
      if (cooperative) {
        ErrorPtr error(rd_kafka_incremental_assign(rk, partitions));
        if (error) {
          RecordError(std::string("kafka: assign failed: ") + rd_kafka_error_string(error.get()));
        }
      } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, partitions)) {
        RecordError(std::string("kafka: assign failed: ") + rd_kafka_err2str(e));
      }
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      // Acknowledged offsets are worth committing while the partitions are still ours (unless
      // they were lost, when the group has moved on and the commit would be refused).
      if (!rd_kafka_assignment_lost(rk)) CommitFor(partitions);
      Forget(partitions);
      if (cooperative) {
        ErrorPtr error(rd_kafka_incremental_unassign(rk, partitions));
        if (error) {
          RecordError(std::string("kafka: unassign failed: ") + rd_kafka_error_string(error.get()));
        }
      } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, nullptr)) {
        RecordError(std::string("kafka: unassign failed: ") + rd_kafka_err2str(e));
      }
      return;
    }
    RecordError(std::string("kafka: rebalance error: ") + rd_kafka_err2str(err));
    Forget(partitions);
    rd_kafka_assign(rk, nullptr);
  }

  //! Commits pending offsets of the given partitions only, before they are revoked.
  void CommitFor(const rd_kafka_topic_partition_list_t* partitions) {
    bool any = false;
    for (int i = 0; i < partitions->cnt && !any; ++i) {
      any = pending_commit_.count(
                PartitionRef{partitions->elems[i].topic, partitions->elems[i].partition}) > 0;
    }
    if (any) Commit();
  }

  //! Drops all state of the given partitions: buffered messages, pending commits and rewinds.
  void Forget(const rd_kafka_topic_partition_list_t* partitions) {
    for (int i = 0; i < partitions->cnt; ++i) {
      const PartitionRef ref{partitions->elems[i].topic, partitions->elems[i].partition};
      if (auto it = buffer_.find(ref); it != buffer_.end()) {
        buffered_ -= it->second.messages;
        buffer_.erase(it);
      }
      if (auto it = pending_commit_.find(ref); it != pending_commit_.end()) {
        pending_commit_.erase(it);
      }
      if (auto it = rewind_.find(ref); it != rewind_.end()) rewind_.erase(it);
    }
  }

  void ClearBuffer() {
    buffer_.clear();
    buffered_ = 0;
  }

  void RecordError(std::string message) {
    std::lock_guard lock(stats_mu_);
    ++stats_.errors;
    stats_.last_error = std::move(message);
  }

  const KafkaSourceOptions options_;
  IngestSink* const sink_;
  std::map<std::string, EventFamily, std::less<>> families_;  // topic -> family

  // Consumer-thread state.
  PartitionMap<PartitionBuffer> buffer_;
  int64_t buffered_ = 0;                  // messages in buffer_
  Clock::time_point deadline_;            // when the buffered batch must be handed over
  PartitionMap<int64_t> pending_commit_;  // acknowledged, not yet committed: next offset
  int64_t uncommitted_batches_ = 0;       // batches covered by pending_commit_
  Clock::time_point next_commit_attempt_;
  PartitionMap<int64_t> rewind_;  // partitions to seek back: first unacknowledged offset
  Clock::time_point next_rewind_attempt_;

  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;  // with stop_cv_: wakes a retry backoff when Stop() is called
  std::condition_variable stop_cv_;
  std::mutex join_mu_;
  std::thread thread_;

  mutable std::mutex stats_mu_;
  Stats stats_;

  HandlePtr handle_;  // last: destroyed first, while the state its callbacks use still exists
};

KafkaSource::KafkaSource(std::unique_ptr<Consumer> consumer) : consumer_(std::move(consumer)) {}

KafkaSource::~KafkaSource() {
  Stop();
}

Result<std::unique_ptr<KafkaSource>> KafkaSource::Start(KafkaSourceOptions options,
                                                        IngestSink* sink) {
  TALLY_RETURN_IF_ERROR(CheckOptions(options, sink));
  auto consumer = std::make_unique<Consumer>(std::move(options), sink);
  TALLY_RETURN_IF_ERROR(consumer->Connect());
  consumer->StartThread();
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(consumer)));
}

void KafkaSource::Stop() {
  consumer_->Stop();
}

KafkaSource::Stats KafkaSource::stats() const {
  return consumer_->stats();
}

Result<std::vector<std::pair<std::string, EventFamily>>> ParseKafkaTopics(std::string_view spec) {
  const std::string context = "kafka topics '" + std::string(spec.substr(0, 200)) + "'";
  if (Trim(spec).empty()) {
    return Status::InvalidArgument(context +
                                   ": empty (expected family=topic pairs such as "
                                   "usage=tally.usage,recharge=tally.recharge)");
  }
  std::vector<std::pair<std::string, EventFamily>> out;
  size_t start = 0;
  for (int index = 1;; ++index) {
    const size_t comma = spec.find(',', start);
    const std::string_view entry =
        Trim(spec.substr(start, comma == std::string_view::npos ? comma : comma - start));
    const std::string where =
        context + ", entry " + std::to_string(index) + " '" + std::string(entry) + "'";
    if (entry.empty()) return Status::InvalidArgument(where + ": is empty");
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where + ": is not a family=topic pair");
    }
    auto family = ParseEnum<EventFamily>(Trim(entry.substr(0, eq)));
    if (!family.ok()) return family.status().WithContext(where);
    const std::string_view topic = Trim(entry.substr(eq + 1));
    TALLY_RETURN_IF_ERROR(CheckTopicName(topic).WithContext(where));
    for (const auto& [seen, seen_family] : out) {
      if (seen == topic) {
        return Status::InvalidArgument(where + ": topic '" + std::string(topic) +
                                       "' is already read as " + std::string(Name(seen_family)));
      }
    }
    out.emplace_back(std::string(topic), *family);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace tally
