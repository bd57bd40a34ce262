#include "ingest/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ingest/rollup_builder.h"

namespace tally {

namespace {

// The key of a reference row as text, for spotting repeated keys in one batch.
template <typename Rec>
std::string KeyText(const Rec& r) {
  TextBuffer out(64);
  for (std::string_view k : ReferenceKey<Rec>()) {
    ForEachField<Rec>([&](const auto& f) {
      if (f.name == k) {
        const auto& v = r.*(f.member);
        if constexpr (IsOptional<std::decay_t<decltype(v)>>::value) {
          if (v) codec_internal::PutCsvValue(out, *v);
        } else {
          codec_internal::PutCsvValue(out, v);
        }
        out.Put("|");
      }
    });
  }
  return std::string(out.view());
}

// The time a caller allowed until `deadline`, to the nearest 10 ms (its clock ran on a little
// since it set the deadline).
std::chrono::milliseconds Allowed(std::chrono::steady_clock::time_point deadline,
                                  std::chrono::steady_clock::time_point now) {
  return std::chrono::milliseconds(
      std::llround(std::chrono::duration<double, std::milli>(deadline - now).count() / 10.0) * 10);
}

}  // namespace

struct IngestPipeline::Job {
  enum class Kind { kEvents, kReference, kTask } kind = Kind::kEvents;
  EventFamily family = EventFamily::kUsage;
  ReferenceTable reference_table = ReferenceTable::kPartners;
  std::string body;  // owns the text that `raw` points into
  std::string source;
  SubmitOptions options;
  Status prepare_status;
  AnyRows rows;
  std::vector<int64_t> lines;
  std::vector<RejectedRow> rejects;
  int64_t read = 0;
  int64_t flagged = 0;
  Timestamp started;
  std::promise<IngestResult> promise;
  // Exclusive task.
  std::function<Status(EventStore&)> task;
  std::promise<Status> task_promise;
  // Set by the writer.
  IngestResult result;
  int events_index = -1;  // index of this job's new rows in StoreCommit::events
};

IngestPipeline::IngestPipeline(EventStore* store, std::string data_dir, PipelineOptions options)
    : store_(store),
      data_dir_(std::move(data_dir)),
      options_(options),
      quarantine_(data_dir_),
      dedup_(store, options.dedup),
      last_compaction_(std::chrono::steady_clock::now()),
      no_readers_(options_.read_connections <= 0) {}

Result<std::unique_ptr<IngestPipeline>> IngestPipeline::Start(EventStore* store,
                                                              std::string data_dir,
                                                              PipelineOptions options) {
  std::unique_ptr<IngestPipeline> p(new IngestPipeline(store, std::move(data_dir), options));
  TALLY_RETURN_IF_ERROR(p->subscribers_.Load(*store));
  if (options.subscriber_index_days > 0) {
    p->subscriber_index_ = std::make_unique<SubscriberUsageIndex>(options.subscriber_index_days);
    TALLY_RETURN_IF_ERROR(
        p->subscriber_index_->Load(*store).WithContext("loading the subscriber usage index"));
  }
  p->PublishWatermark();
  p->writer_ = std::thread([raw = p.get()] { raw->WriterLoop(); });
  p->watchdog_ = std::thread([raw = p.get()] { raw->WatchdogLoop(); });
  return p;
}

IngestPipeline::~IngestPipeline() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void IngestPipeline::WatchdogLoop() {
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!watch_stop_) {
    Watch* next = nullptr;
    for (auto& [id, w] : watches_) {
      if (!w.fired && (!next || w.deadline < next->deadline)) next = &w;
    }
    if (!next) {
      watch_cv_.wait(lock);
      continue;
    }
    // A copy: wait_until holds on to it while the lock is released, and Disarm() may erase
    // the watch meanwhile.
    const auto deadline = next->deadline;
    if (std::chrono::steady_clock::now() < deadline) {
      watch_cv_.wait_until(lock, deadline);
      continue;
    }
    // Under the lock, so the task cannot have been disarmed (and moved on) in between.
    next->interrupt();
    next->fired = true;
  }
}

uint64_t IngestPipeline::Arm(std::chrono::steady_clock::time_point deadline,
                             std::function<void()> interrupt) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    id = next_watch_++;
    watches_[id] = Watch{deadline, std::move(interrupt), false};
  }
  watch_cv_.notify_all();
  return id;
}

bool IngestPipeline::Disarm(uint64_t id) {
  std::lock_guard<std::mutex> lock(watch_mu_);
  auto it = watches_.find(id);
  const bool fired = it != watches_.end() && it->second.fired;
  if (it != watches_.end()) watches_.erase(it);
  return fired;
}

// Holds the read gate shut for a compaction, retention or import on the writer thread.
class IngestPipeline::LayoutChange {
 public:
  explicit LayoutChange(IngestPipeline* p) : p_(p) {
    std::unique_lock<std::mutex> lock(p_->read_mu_);
    p_->read_cv_.wait(lock, [&] { return !p_->layout_pending_; });
    p_->layout_pending_ = true;  // new reads wait from now on
    p_->read_cv_.wait(lock, [&] { return p_->reads_running_ == 0; });
  }
  ~LayoutChange() {
    {
      std::lock_guard<std::mutex> lock(p_->read_mu_);
      p_->layout_pending_ = false;
    }
    p_->read_cv_.notify_all();
  }
  LayoutChange(const LayoutChange&) = delete;
  LayoutChange& operator=(const LayoutChange&) = delete;

 private:
  IngestPipeline* p_;
};

Result<std::unique_ptr<StoreReader>> IngestPipeline::AcquireReader(
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock<std::mutex> lock(read_mu_);
  auto ready = [&] {
    return no_readers_ || (!layout_pending_ && (!idle_readers_.empty() ||
                                                readers_open_ < options_.read_connections));
  };
  if (deadline) {
    if (!read_cv_.wait_until(lock, *deadline, ready)) {
      return Status::DeadlineExceeded("no store reader was free");
    }
  } else {
    read_cv_.wait(lock, ready);
  }
  if (no_readers_) return std::unique_ptr<StoreReader>();
  ++reads_running_;
  if (!idle_readers_.empty()) {
    std::unique_ptr<StoreReader> r = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return r;
  }
  ++readers_open_;
  lock.unlock();
  // A new connection; DuckDB's connect is safe beside the writer's statements.
  Result<std::unique_ptr<StoreReader>> opened = store_->OpenReader();
  lock.lock();
  if (!opened.ok() || !*opened) {
    --readers_open_;
    --reads_running_;
    if (opened.ok()) no_readers_ = true;  // this store has none: reads take the writer thread
    lock.unlock();
    read_cv_.notify_all();
    if (!opened.ok()) return opened.status().WithContext("opening a store reader");
    return std::unique_ptr<StoreReader>();
  }
  return opened;
}

void IngestPipeline::ReleaseReader(std::unique_ptr<StoreReader> reader) {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    idle_readers_.push_back(std::move(reader));
    --reads_running_;
  }
  read_cv_.notify_all();
}

Status IngestPipeline::RunRead(const std::function<Status(StoreReader&)>& task,
                               std::optional<std::chrono::steady_clock::time_point> deadline) {
  auto on_writer = [&] {
    auto exclusive = [&](EventStore& store) { return task(store); };
    return deadline ? RunExclusive(exclusive, *deadline) : RunExclusive(exclusive);
  };
  const auto allowed = deadline ? Allowed(*deadline, std::chrono::steady_clock::now())
                                : std::chrono::milliseconds(0);
  Result<std::unique_ptr<StoreReader>> reader = AcquireReader(deadline);
  if (reader.status().code() == Status::Code::kDeadlineExceeded) {
    return Status::DeadlineExceeded(
        "waited " + std::to_string(allowed.count()) +
        " ms for a free store reader (all store.read_connections were busy), the time allowed");
  }
  TALLY_RETURN_IF_ERROR(reader.status());
  if (!*reader) return on_writer();  // no readers: the writer thread runs it
  StoreReader* r = reader->get();
  std::optional<uint64_t> watch;
  if (deadline) watch = Arm(*deadline, [r] { r->Interrupt(); });
  Status st = task(*r);
  const bool fired = watch && Disarm(*watch);
  ReleaseReader(std::move(*reader));
  if (fired) {
    return Status::DeadlineExceeded("stopped after the " + std::to_string(allowed.count()) +
                                    " ms allowed");
  }
  return st;
}

template <typename Rec>
void IngestPipeline::Prepare(Job& job, const IngestRequest& request, const SubmitOptions& options) {
  BatchDecoder<Rec> decoder;
  DecodedBatch<Rec> batch;
  DecodeOptions d;
  d.max_line_bytes = options_.max_line_bytes;
  d.first_line = options.first_line;
  d.csv_header = options.csv_header;
  job.prepare_status = decoder.Decode(request.format, job.body, d, &batch);
  if (!job.prepare_status.ok()) return;
  job.read = batch.read;
  job.rejects = std::move(batch.rejects);
  std::vector<Rec> kept;
  kept.reserve(batch.rows.size());
  if constexpr (requires { Rec::kFamily; }) {
    std::shared_lock<std::shared_mutex> lock(subscribers_mu_);
    RowValidator validator(options_.validation, WallClock(), &subscribers_);
    for (size_t i = 0; i < batch.rows.size(); ++i) {
      RowVerdict v = validator.Check(batch.rows[i]);
      if (!v.ok) {
        job.rejects.push_back(MakeReject(batch.lines[i], batch.raw[i], v.field, v.check, v.reason));
        continue;
      }
      if (v.unknown_subscriber) ++job.flagged;
      kept.push_back(std::move(batch.rows[i]));
      job.lines.push_back(batch.lines[i]);
    }
  } else {
    kept = std::move(batch.rows);
    job.lines = std::move(batch.lines);
  }
  std::sort(job.rejects.begin(), job.rejects.end(),
            [](const RejectedRow& a, const RejectedRow& b) { return a.line < b.line; });
  job.rows = std::move(kept);
}

std::future<IngestResult> IngestPipeline::Submit(IngestRequest request, SubmitOptions options) {
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kEvents;
  job->family = request.family;
  job->started = WallClock();
  job->body = std::move(request.body);
  job->source = request.source;
  VisitFamily(request.family,
              [&](auto t) { Prepare<typename decltype(t)::type>(*job, request, options); });
  job->options = std::move(options);
  return Enqueue(std::move(job));
}

std::future<IngestResult> IngestPipeline::SubmitReference(ReferenceTable table, BodyFormat format,
                                                          std::string body, std::string source,
                                                          SubmitOptions options) {
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kReference;
  job->reference_table = table;
  job->started = WallClock();
  job->body = std::move(body);
  job->source = std::move(source);
  IngestRequest shape;
  shape.format = format;
  VisitReference(table, [&](auto t) { Prepare<typename decltype(t)::type>(*job, shape, options); });
  job->options = std::move(options);
  return Enqueue(std::move(job));
}

std::future<IngestResult> IngestPipeline::Enqueue(std::unique_ptr<Job> job) {
  std::future<IngestResult> f = job->promise.get_future();
  if (!job->prepare_status.ok()) {
    IngestResult r;
    r.ack.status = job->prepare_status;
    job->promise.set_value(std::move(r));
    return f;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      IngestResult r;
      r.ack.status = Status::Unavailable("the ingest pipeline is shutting down");
      job->promise.set_value(std::move(r));
      return f;
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return f;
}

Status IngestPipeline::RunExclusive(std::function<Status(EventStore&)> task,
                                    std::chrono::steady_clock::time_point deadline) {
  const auto queued = std::chrono::steady_clock::now();
  const auto allowed = Allowed(deadline, queued);
  return RunExclusive(
      [this, task = std::move(task), deadline, queued, allowed](EventStore& store) -> Status {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
          return Status::DeadlineExceeded(
              "waited " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(now - queued).count()) +
              " ms behind ingest, past the " + std::to_string(allowed.count()) + " ms allowed");
        }
        const uint64_t watch = Arm(deadline, [this] { store_->Interrupt(); });
        Status st = task(store);
        const bool fired = Disarm(watch);
        if (fired) {
          return Status::DeadlineExceeded("stopped after the " + std::to_string(allowed.count()) +
                                          " ms allowed");
        }
        return st;
      });
}

Status IngestPipeline::RunExclusive(std::function<Status(EventStore&)> task) {
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kTask;
  job->task = std::move(task);
  std::future<Status> f = job->task_promise.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("the ingest pipeline is shutting down");
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return f.get();
}

Status IngestPipeline::StoreReport(const QualityReport& report) {
  return RunExclusive([&](EventStore& store) {
    StoreCommit commit;
    commit.loads.push_back(report.ToRecord());
    return store.Commit(commit);
  });
}

Status IngestPipeline::ImportCsvTable(const std::string& table,
                                      const std::vector<std::string>& csv_paths) {
  return RunExclusive([&](EventStore& store) {
    LayoutChange gate(this);
    Status st = store.ImportCsvTable(table, csv_paths);
    data_version_.fetch_add(1, std::memory_order_acq_rel);
    return st;
  });
}

Status IngestPipeline::Compact() {
  return RunExclusive([this](EventStore& store) {
    LayoutChange gate(this);
    Status st = store.Compact();
    if (st.ok()) {
      staged_rows_ = 0;
      last_compaction_ = std::chrono::steady_clock::now();
    }
    return st;
  });
}

Result<RetentionReport> IngestPipeline::DropDaysBefore(Date cutoff) {
  RetentionReport report;
  TALLY_RETURN_IF_ERROR(RunExclusive([&](EventStore& store) -> Status {
    LayoutChange gate(this);
    auto dropped = store.DropDaysBefore(cutoff);
    data_version_.fetch_add(1, std::memory_order_acq_rel);
    TALLY_ASSIGN_OR_RETURN(report, std::move(dropped));
    dedup_.Clear();
    if (subscriber_index_) subscriber_index_->DropBefore(cutoff);
    return Status::Ok();
  }));
  return report;
}

std::optional<Timestamp> IngestPipeline::watermark() const {
  const int64_t w = watermark_.load(std::memory_order_acquire);
  if (w == kNoWatermark) return std::nullopt;
  return Timestamp{w};
}

void IngestPipeline::PublishWatermark() {
  const std::optional<Timestamp> w = store_->Watermark();
  watermark_.store(w ? w->micros : kNoWatermark, std::memory_order_release);
}

std::optional<SubscriberInfo> IngestPipeline::FindSubscriber(SubscriberId id) const {
  std::shared_lock<std::shared_mutex> lock(subscribers_mu_);
  const SubscriberInfo* info = subscribers_.Find(id);
  return info ? std::optional<SubscriberInfo>(*info) : std::nullopt;
}

size_t IngestPipeline::dedup_memory_bytes() const {
  return dedup_.memory_bytes();
}

void IngestPipeline::WriterLoop() {
  for (;;) {
    std::vector<std::unique_ptr<Job>> group;
    std::unique_ptr<Job> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        if (stopping_) return;
        lock.unlock();
        MaybeCompact();
        continue;
      }
      if (queue_.front()->kind == Job::Kind::kTask) {
        task = std::move(queue_.front());
        queue_.pop_front();
      } else {
        size_t rows = 0;
        while (!queue_.empty() && queue_.front()->kind != Job::Kind::kTask &&
               (group.empty() || rows < options_.max_group_rows)) {
          rows += static_cast<size_t>(queue_.front()->read);
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (task) {
      Status st = task->task(*store_);
      PublishWatermark();
      task->task_promise.set_value(std::move(st));
      continue;
    }
    CommitGroup(group);
    MaybeCompact();
  }
}

void IngestPipeline::MaybeCompact() {
  const bool by_rows = options_.compact_rows > 0 && staged_rows_ >= options_.compact_rows;
  const bool by_time =
      staged_rows_ > 0 && options_.compact_interval.count() > 0 &&
      std::chrono::steady_clock::now() - last_compaction_ >= options_.compact_interval;
  if (!by_rows && !by_time) return;
  LayoutChange gate(this);
  if (store_->Compact().ok()) staged_rows_ = 0;  // on failure the rows stay staged and readable
  last_compaction_ = std::chrono::steady_clock::now();
}

Status IngestPipeline::RateUsage(const StoreCommit& commit) {
  if (!options_.rate_usage) return Status::Ok();
  // One call per batch; a failure after an earlier batch was rated is safe: rating is idempotent.
  for (const AnyRows& rows : commit.events) {
    const auto* usage = std::get_if<std::vector<UsageEvent>>(&rows);
    if (!usage || usage->empty()) continue;
    TALLY_RETURN_IF_ERROR(options_.rate_usage(*usage).WithContext("rating usage in the ledger"));
  }
  return Status::Ok();
}

void IngestPipeline::CommitGroup(std::vector<std::unique_ptr<Job>>& group) {
  StoreCommit commit;
  RollupBuilder rollups(&subscribers_);
  std::map<EventFamily, FingerprintSet> pending;
  std::vector<Job*> ok_jobs;
  const std::optional<Timestamp> watermark_before = store_->Watermark();

  for (auto& job : group) {
    IngestResult& res = job->result;
    QualityReport& rep = res.report;
    rep.load_id = job->options.load_id.empty() ? NewLoadId() : job->options.load_id;
    rep.source = job->source;
    rep.started = job->started;
    rep.counts.read = job->read;
    rep.counts.rejected = static_cast<int64_t>(job->rejects.size());
    rep.unknown_subscribers_flagged = job->flagged;
    Status st;
    rep.table = job->kind == Job::Kind::kEvents ? std::string(Name(job->family))
                                                : VisitReference(job->reference_table, [](auto t) {
                                                    return std::string(decltype(t)::type::kTable);
                                                  });
    if (!job->rejects.empty()) {
      // Quarantined before the commit: a failed commit may leave a copy for a batch the client
      // will retry, but a rejected row is never lost.
      auto file = quarantine_.Write(rep.load_id, rep.source, rep.table, job->rejects);
      if (file.ok()) {
        rep.quarantine_file = *file;
      } else {
        st = file.status();
      }
    }
    if (st.ok() && job->kind == Job::Kind::kEvents) {
      st = std::visit(
          [&](auto& rows) -> Status {
            using Rec = typename std::decay_t<decltype(rows)>::value_type;
            if constexpr (requires { Rec::kFamily; }) {
              std::vector<std::string_view> ids;
              std::vector<Timestamp> ts;
              ids.reserve(rows.size());
              ts.reserve(rows.size());
              for (const Rec& r : rows) {
                ids.push_back(r.event_id);
                ts.push_back(r.ts);
              }
              const std::optional<Timestamp> reference =
                  job->options.reference ? *job->options.reference : watermark_before;
              std::vector<Admission> admissions;
              TALLY_RETURN_IF_ERROR(dedup_.Classify(Rec::kFamily, ids, ts, reference,
                                                    &pending[Rec::kFamily], &admissions));
              std::vector<Rec> fresh;
              fresh.reserve(rows.size());
              for (size_t i = 0; i < rows.size(); ++i) {
                switch (admissions[i]) {
                  case Admission::kDuplicate:
                    ++rep.counts.duplicate;
                    continue;
                  case Admission::kNewLate:
                    ++rep.counts.late;
                    break;
                  case Admission::kNew:
                    ++rep.counts.accepted;
                    break;
                }
                rollups.Add(rows[i]);
                fresh.push_back(std::move(rows[i]));
              }
              job->events_index = static_cast<int>(commit.events.size());
              commit.events.emplace_back(std::move(fresh));
              return Status::Ok();
            }
            return Status::Internal("reference rows in an event job");
          },
          job->rows);
    } else if (st.ok()) {
      std::visit(
          [&](auto& rows) {
            using Rec = typename std::decay_t<decltype(rows)>::value_type;
            if constexpr (requires { Rec::kTable; }) {
              // A key repeated within the batch: the last row wins, the earlier ones count as
              // duplicates.
              std::unordered_map<std::string, size_t> last;
              for (size_t i = 0; i < rows.size(); ++i) last[KeyText(rows[i])] = i;
              std::vector<Rec> kept;
              for (size_t i = 0; i < rows.size(); ++i) {
                if (last[KeyText(rows[i])] != i) {
                  ++rep.counts.duplicate;
                  continue;
                }
                kept.push_back(std::move(rows[i]));
              }
              rep.counts.accepted = static_cast<int64_t>(kept.size());
              commit.references.emplace_back(std::move(kept));
            }
          },
          job->rows);
    }
    if (!st.ok()) {
      // Only this batch fails; none of its rows or rollups were added to the commit.
      res.ack.status = st;
      job->promise.set_value(std::move(res));
      job.reset();
      continue;
    }
    rep.AddRejects(job->rejects);
    rep.finished = WallClock();
    if (job->options.store_report) commit.loads.push_back(rep.ToRecord());
    ok_jobs.push_back(job.get());
  }
  commit.rollups = rollups.Take();
  Status st = RateUsage(commit);
  if (st.ok()) st = store_->Commit(commit);
  if (st.ok()) PublishWatermark();
  if (st.ok()) data_version_.fetch_add(1, std::memory_order_acq_rel);
  if (st.ok()) {
    int64_t accepted = 0;
    for (Job* job : ok_jobs) {
      if (job->kind == Job::Kind::kEvents) {
        accepted += job->result.report.counts.accepted + job->result.report.counts.late;
      }
    }
    live_.Publish(WallClock(), commit.rollups, accepted);
    if (subscriber_index_) subscriber_index_->Apply(commit.rollups.subscriber_day);
  }
  if (st.ok()) {
    const std::optional<Timestamp> watermark = store_->Watermark();
    std::unique_lock<std::shared_mutex> lock(subscribers_mu_);
    for (Job* job : ok_jobs) {
      if (job->kind != Job::Kind::kEvents) continue;
      std::visit(
          [&](const auto& rows) {
            using Rec = typename std::decay_t<decltype(rows)>::value_type;
            if constexpr (requires { Rec::kFamily; }) {
              std::vector<std::string_view> ids;
              std::vector<Timestamp> ts;
              for (const Rec& r : rows) {
                ids.push_back(r.event_id);
                ts.push_back(r.ts);
                if constexpr (std::is_same_v<Rec, LifecycleEvent>) {
                  if (r.kind == LifecycleKind::kPlanChange)
                    subscribers_.SetPlan(r.subscriber_id, r.plan_id);
                }
              }
              staged_rows_ += static_cast<int64_t>(rows.size());
              dedup_.Remember(Rec::kFamily, ids, ts, watermark);
            }
          },
          commit.events[job->events_index]);
    }
    for (const AnyRows& rows : commit.references) {
      if (const auto* subs = std::get_if<std::vector<Subscriber>>(&rows)) {
        for (const Subscriber& s : *subs) subscribers_.Upsert(s);
      }
    }
  }
  for (Job* job : ok_jobs) {
    IngestResult& res = job->result;
    res.ack.status = st;
    res.ack.counts = res.report.counts;
    res.ack.load_id = res.report.load_id;
    res.rejects = std::move(job->rejects);
    job->promise.set_value(std::move(res));
  }
}

}  // namespace tally
