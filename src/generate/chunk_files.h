#pragma once
// The set of files one unit of generation work writes: one part file per event family, the
// subscribers it simulated, and its ground truth. Each chunk owns its files, so chunks run on
// separate threads with nothing shared, and the same chunk always writes the same bytes.

#include <array>
#include <memory>
#include <string>

#include "generate/output.h"
#include "generate/truth.h"
#include "model/events.h"
#include "model/subscriber.h"

namespace tally {

//! Row counts of a chunk, summed into the manifest.
struct ChunkStats {
  std::array<int64_t, kEventFamilyCount> family_rows{};
  int64_t subscribers = 0;
  int64_t churners = 0;
  int64_t roaming_shocks = 0;
  int64_t premium_fraud = 0;
  int64_t double_charges = 0;
  int64_t dirty_rows = 0;

  void Add(const ChunkStats& o) {
    for (int i = 0; i < kEventFamilyCount; ++i) family_rows[i] += o.family_rows[i];
    subscribers += o.subscribers;
    churners += o.churners;
    roaming_shocks += o.roaming_shocks;
    premium_fraud += o.premium_fraud;
    double_charges += o.double_charges;
    dirty_rows += o.dirty_rows;
  }
};

//! All output files of one chunk (a range of subscribers, or the funnel).
class ChunkFiles {
 public:
  //! `part` names the files ("00003" or "funnel"); `seed` drives the dirty-row choices; writes
  //! go through `io` (may be null: write on this thread).
  ChunkFiles(const GeneratorOptions& o, const std::string& part, uint64_t seed, bool funnel, IoQueue* io);
  Status Open();
  //! Flushes and closes every file, converting to parquet when asked. Fills stats.
  Status Close(ChunkStats* stats);

  RecordWriter<Subscriber>& subscribers() { return *subscribers_; }
  RecordWriter<UsageEvent>& usage() { return *usage_; }
  RecordWriter<RechargeEvent>& recharge() { return *recharge_; }
  RecordWriter<LifecycleEvent>& lifecycle() { return *lifecycle_; }
  RecordWriter<NetworkEvent>& network() { return *network_; }
  RecordWriter<RoamingEvent>& roaming() { return *roaming_; }
  RecordWriter<ComplaintEvent>& complaint() { return *complaint_; }
  RecordWriter<AppEvent>& app() { return *app_; }
  RecordWriter<ExperimentEvent>& experiment() { return *experiment_; }
  RecordWriter<ChurnTruth>& churn_truth() { return *churn_; }
  RecordWriter<AnomalyTruth>& anomaly_truth() { return *anomalies_; }

 private:
  template <typename Rec>
  std::unique_ptr<RecordWriter<Rec>> Make(std::string_view dir, int dirty_slot);
  template <typename Rec>
  Status Finish(RecordWriter<Rec>* w);

  const GeneratorOptions& o_;
  std::string part_;
  uint64_t seed_;
  bool funnel_;
  IoQueue* io_;
  LineFile dirty_truth_;
  std::array<std::unique_ptr<DirtyInjector>, kEventFamilyCount + 1> dirty_;
  std::unique_ptr<RecordWriter<Subscriber>> subscribers_;
  std::unique_ptr<RecordWriter<UsageEvent>> usage_;
  std::unique_ptr<RecordWriter<RechargeEvent>> recharge_;
  std::unique_ptr<RecordWriter<LifecycleEvent>> lifecycle_;
  std::unique_ptr<RecordWriter<NetworkEvent>> network_;
  std::unique_ptr<RecordWriter<RoamingEvent>> roaming_;
  std::unique_ptr<RecordWriter<ComplaintEvent>> complaint_;
  std::unique_ptr<RecordWriter<AppEvent>> app_;
  std::unique_ptr<RecordWriter<ExperimentEvent>> experiment_;
  std::unique_ptr<RecordWriter<ChurnTruth>> churn_;
  std::unique_ptr<RecordWriter<AnomalyTruth>> anomalies_;
};

}  // namespace tally
