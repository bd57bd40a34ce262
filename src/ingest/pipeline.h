#pragma once
// The ingest pipeline: decode -> validate -> dedup -> append, shared by every source.
//
// Callers (HTTP handlers, the Kafka consumer, the file loader) submit batches from their own
// threads. Decoding and validation run on the caller's thread, so they scale with the sources.
// One writer thread then takes every batch waiting in the queue, classifies their rows against
// the dedup index, and writes all of them — events, rollup rows, reference rows and one load
// report per batch — in one store transaction (group commit). Every waiting caller is answered
// after that commit: ok means durable. A batch is never partly stored.
//
// Exclusive tasks (compaction, retention, table imports) run on the same writer thread between
// groups, which keeps the store single-owner without a lock around it. Reads (queries) run on the
// caller's thread, on one of a few store readers (EventStore::OpenReader), beside the commits:
// they wait only for compaction, retention and table imports, which change the files a reader
// names, and those wait for the reads in progress (RunRead).

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "ingest/batch_decoder.h"
#include "ingest/dedup_index.h"
#include "ingest/ingest_request.h"
#include "ingest/live_feed.h"
#include "ingest/quality_report.h"
#include "ingest/quarantine.h"
#include "ingest/row_validator.h"
#include "ingest/subscriber_directory.h"
#include "ingest/subscriber_usage_index.h"
#include "model/families.h"
#include "store/event_store.h"

namespace tally {

struct PipelineOptions {
  DedupOptions dedup;
  ValidationOptions validation;
  size_t max_line_bytes = size_t{1} << 20;
  size_t max_group_rows = size_t{1} << 20;     // rows written by one group commit, at most
  int64_t compact_rows = 4'000'000;            // staged rows that trigger a compaction; 0 never
  std::chrono::seconds compact_interval{300};  // ...or this long after the last one, if any staged
  //! Called on the writer thread with the new usage rows of a group (after dedup), before the
  //! group is committed to the store; an error fails the group, which the sources then retry. The
  //! ledger's RateUsage goes here: it is idempotent by event id, so a retried batch is never
  //! charged twice (docs/ledger.md).
  std::function<Status(const std::vector<UsageEvent>&)> rate_usage;
  //! Keep a SubscriberUsageIndex of this many days (behind the newest) for the per-subscriber
  //! usage API; 0: none (`tally load`, tests). `tally serve` sets serve.subscriber_index_days.
  int32_t subscriber_index_days = 0;
  //! Store readers RunRead uses at most, so reads run this many at a time beside ingest (the
  //! rest wait for one). 0: reads run on the writer thread, as exclusive tasks.
  int read_connections = 2;
};

//! How one submitted batch is read and judged.
struct SubmitOptions {
  //! Lateness is judged against this watermark (the store's at the start of a file load); unset
  //! means the store's watermark when the batch is committed.
  std::optional<std::optional<Timestamp>> reference;
  int64_t first_line = 1;                 // line number of the body's first line
  std::optional<std::string> csv_header;  // for a CSV chunk without its header line
  std::string load_id;                    // reuse one load id (and quarantine file); empty: new
  bool store_report = true;  // false for chunks of a file whose merged report is stored at the end
};

//! The full outcome of one batch: the ack a source needs plus the data-quality report and every
//! rejected row.
struct IngestResult {
  IngestAck ack;
  QualityReport report;
  std::vector<RejectedRow> rejects;
};

//! Owns the write path of one store. Thread-safe.
class IngestPipeline final : public IngestSink {
 public:
  //! Starts the writer thread. `store` must outlive the pipeline.
  static Result<std::unique_ptr<IngestPipeline>> Start(EventStore* store, std::string data_dir,
                                                       PipelineOptions options);
  ~IngestPipeline() override;  // finishes queued work, then stops

  IngestAck Ingest(IngestRequest request) override {
    return Submit(std::move(request), {}).get().ack;
  }

  //! Decodes and validates on this thread, then queues the batch; the future resolves once the
  //! batch is durable (or failed).
  std::future<IngestResult> Submit(IngestRequest request, SubmitOptions options);
  //! The same for a reference table (partners, plans, subscribers, cities, towers): rows replace
  //! stored rows with the same key.
  std::future<IngestResult> SubmitReference(ReferenceTable table, BodyFormat format,
                                            std::string body, std::string source,
                                            SubmitOptions options);

  //! Runs `task` on the writer thread, between group commits, and returns its status.
  Status RunExclusive(std::function<Status(EventStore&)> task);
  //! The same with a deadline: a task still queued at the deadline is not run, and one still
  //! running is interrupted (EventStore::Interrupt); both return DeadlineExceeded. For reads
  //! only (an interrupted task must have nothing to undo).
  Status RunExclusive(std::function<Status(EventStore&)> task,
                      std::chrono::steady_clock::time_point deadline);

  //! Runs the read-only `task` on a store reader on this thread, beside ingest (see the top),
  //! or on the writer thread (RunExclusive) when the store has no readers or read_connections is
  //! 0. With a deadline, waiting for a reader counts, and a task still running at the deadline is
  //! interrupted (StoreReader::Interrupt); both return DeadlineExceeded.
  Status RunRead(const std::function<Status(StoreReader&)>& task,
                 std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  //! Stores a load report (e.g. the merged report of a file loaded in chunks).
  Status StoreReport(const QualityReport& report);
  //! Replaces a table with a CSV file's rows (ground-truth files), on the writer thread.
  Status ImportCsvTable(const std::string& table, const std::vector<std::string>& csv_paths);

  //! Compacts staged rows into day partitions (on the writer thread).
  Status Compact();
  //! Drops day partitions before `cutoff` and forgets them in the dedup index.
  Result<RetentionReport> DropDaysBefore(Date cutoff);

  //! The store's watermark as of the last commit (safe from any thread).
  std::optional<Timestamp> watermark() const;
  size_t dedup_memory_bytes() const;
  //! Per-second counters of what recent commits stored (the real-time stream reads them).
  const LiveFeed& live() const { return live_; }
  //! The in-memory per-subscriber usage index, or null when PipelineOptions has none.
  const SubscriberUsageIndex* subscriber_index() const { return subscriber_index_.get(); }
  //! The partner, plan and region of a stored subscriber; nullopt when the store has none.
  std::optional<SubscriberInfo> FindSubscriber(SubscriberId id) const;
  //! Grows whenever stored rows change (a commit, a reference import, retention): caches of
  //! query results compare it to know they are stale.
  uint64_t data_version() const { return data_version_.load(std::memory_order_acquire); }

 private:
  struct Job;
  std::atomic<uint64_t> data_version_{0};
  static constexpr int64_t kNoWatermark = INT64_MIN;
  std::atomic<int64_t> watermark_{kNoWatermark};
  void PublishWatermark();  // on the writer thread, after the store changed
  IngestPipeline(EventStore* store, std::string data_dir, PipelineOptions options);
  template <typename Rec>
  void Prepare(Job& job, const IngestRequest& request, const SubmitOptions& options);
  std::future<IngestResult> Enqueue(std::unique_ptr<Job> job);
  void WriterLoop();
  void CommitGroup(std::vector<std::unique_ptr<Job>>& group);
  Status RateUsage(const StoreCommit& commit);
  void MaybeCompact();

  EventStore* store_;
  std::string data_dir_;
  PipelineOptions options_;
  Quarantine quarantine_;
  DedupIndex dedup_;
  SubscriberDirectory subscribers_;
  LiveFeed live_;
  std::unique_ptr<SubscriberUsageIndex> subscriber_index_;
  mutable std::shared_mutex subscribers_mu_;  // validation reads; the writer updates

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // The deadline watchdog: interrupts a task (the writer's or a reader's) that passes its
  // deadline. Arm() registers the running task, Disarm() says whether it was interrupted.
  struct Watch {
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> interrupt;
    bool fired = false;
  };
  void WatchdogLoop();
  uint64_t Arm(std::chrono::steady_clock::time_point deadline, std::function<void()> interrupt);
  bool Disarm(uint64_t id);
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::map<uint64_t, Watch> watches_;
  uint64_t next_watch_ = 0;
  bool watch_stop_ = false;
  std::thread watchdog_;

  // Store readers for RunRead, and the gate between reads and the writer's layout changes
  // (compaction, retention, imports): a layout change waits for the reads in progress and holds
  // new ones back until it is done, so a reader never names a file that is being removed.
  class LayoutChange;
  Result<std::unique_ptr<StoreReader>> AcquireReader(
      std::optional<std::chrono::steady_clock::time_point> deadline);
  void ReleaseReader(std::unique_ptr<StoreReader> reader);
  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<std::unique_ptr<StoreReader>> idle_readers_;
  int readers_open_ = 0;
  int reads_running_ = 0;
  bool layout_pending_ = false;  // a layout change waits for, or holds, the gate

  int64_t staged_rows_ = 0;  // writer thread only
  std::chrono::steady_clock::time_point last_compaction_;
  // No readers (read_connections is 0, or the store has none): reads run as exclusive tasks.
  // Guarded by read_mu_.
  bool no_readers_ = false;
};

}  // namespace tally
