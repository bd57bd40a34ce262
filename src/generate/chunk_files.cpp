#include "generate/chunk_files.h"

namespace tally {

ChunkFiles::ChunkFiles(const GeneratorOptions& o, const std::string& part, uint64_t seed, bool funnel,
                       IoQueue* io)
    : o_(o), part_(part), seed_(seed), funnel_(funnel), io_(io) {}

template <typename Rec>
std::unique_ptr<RecordWriter<Rec>> ChunkFiles::Make(std::string_view dir, int dirty_slot) {
  std::string rel = std::string(dir) + "/part-" + part_ + "." + std::string(Extension(o_.format));
  DirtyInjector* dirty = nullptr;
  if (dirty_slot >= 0 && o_.dirty > 0) {
    dirty_[dirty_slot] = std::make_unique<DirtyInjector>(
        o_.dirty, o_.format, MixKeys(seed_, 0xD1287, dirty_slot), &dirty_truth_);
    dirty = dirty_[dirty_slot].get();
  }
  return std::make_unique<RecordWriter<Rec>>(o_.format, rel, dirty);
}

Status ChunkFiles::Open() {
  auto fam = [](EventFamily f) { return static_cast<int>(f); };
  if (o_.dirty > 0) {
    TALLY_RETURN_IF_ERROR(dirty_truth_.Open(o_.out_dir + "/truth/dirty/part-" + part_ + ".csv", io_));
    WriteCsvHeader<DirtyTruth>(dirty_truth_.buffer());
    dirty_truth_.Commit(1);
  }
  app_ = Make<AppEvent>(Name(EventFamily::kApp), fam(EventFamily::kApp));
  experiment_ = Make<ExperimentEvent>(Name(EventFamily::kExperiment), fam(EventFamily::kExperiment));
  TALLY_RETURN_IF_ERROR(app_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(experiment_->Open(o_.out_dir, io_));
  if (funnel_) return Status::Ok();

  subscribers_ = Make<Subscriber>("subscribers", -1);
  usage_ = Make<UsageEvent>(Name(EventFamily::kUsage), fam(EventFamily::kUsage));
  recharge_ = Make<RechargeEvent>(Name(EventFamily::kRecharge), fam(EventFamily::kRecharge));
  lifecycle_ = Make<LifecycleEvent>(Name(EventFamily::kLifecycle), fam(EventFamily::kLifecycle));
  network_ = Make<NetworkEvent>(Name(EventFamily::kNetwork), fam(EventFamily::kNetwork));
  roaming_ = Make<RoamingEvent>(Name(EventFamily::kRoaming), fam(EventFamily::kRoaming));
  complaint_ = Make<ComplaintEvent>(Name(EventFamily::kComplaint), fam(EventFamily::kComplaint));
  // Ground truth is always clean CSV, whatever the data's format.
  churn_ = std::make_unique<RecordWriter<ChurnTruth>>(OutputFormat::kCsv,
                                                      "truth/churn/part-" + part_ + ".csv", nullptr);
  anomalies_ = std::make_unique<RecordWriter<AnomalyTruth>>(
      OutputFormat::kCsv, "truth/anomalies/part-" + part_ + ".csv", nullptr);
  TALLY_RETURN_IF_ERROR(subscribers_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(usage_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(recharge_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(lifecycle_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(network_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(roaming_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(complaint_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(churn_->Open(o_.out_dir, io_));
  TALLY_RETURN_IF_ERROR(anomalies_->Open(o_.out_dir, io_));
  return Status::Ok();
}

template <typename Rec>
Status ChunkFiles::Finish(RecordWriter<Rec>* w) {
  if (!w) return Status::Ok();
  TALLY_RETURN_IF_ERROR(w->Close());
  if (o_.format == OutputFormat::kParquet && w->StagingPath() != w->rel_path()) {
    return ConvertToParquet(o_.out_dir + "/" + w->StagingPath(), o_.out_dir + "/" + w->rel_path(),
                            DescribeFields<Rec>());
  }
  return Status::Ok();
}

Status ChunkFiles::Close(ChunkStats* stats) {
  auto rows = [](const auto& w) { return w ? w->rows() : 0; };
  stats->family_rows[int(EventFamily::kUsage)] += rows(usage_);
  stats->family_rows[int(EventFamily::kRecharge)] += rows(recharge_);
  stats->family_rows[int(EventFamily::kLifecycle)] += rows(lifecycle_);
  stats->family_rows[int(EventFamily::kNetwork)] += rows(network_);
  stats->family_rows[int(EventFamily::kRoaming)] += rows(roaming_);
  stats->family_rows[int(EventFamily::kComplaint)] += rows(complaint_);
  stats->family_rows[int(EventFamily::kApp)] += rows(app_);
  stats->family_rows[int(EventFamily::kExperiment)] += rows(experiment_);
  stats->subscribers += rows(subscribers_);
  stats->churners += rows(churn_);
  if (o_.dirty > 0) stats->dirty_rows += dirty_truth_.lines() - 1;
  TALLY_RETURN_IF_ERROR(Finish(subscribers_.get()));
  TALLY_RETURN_IF_ERROR(Finish(usage_.get()));
  TALLY_RETURN_IF_ERROR(Finish(recharge_.get()));
  TALLY_RETURN_IF_ERROR(Finish(lifecycle_.get()));
  TALLY_RETURN_IF_ERROR(Finish(network_.get()));
  TALLY_RETURN_IF_ERROR(Finish(roaming_.get()));
  TALLY_RETURN_IF_ERROR(Finish(complaint_.get()));
  TALLY_RETURN_IF_ERROR(Finish(app_.get()));
  TALLY_RETURN_IF_ERROR(Finish(experiment_.get()));
  TALLY_RETURN_IF_ERROR(Finish(churn_.get()));
  TALLY_RETURN_IF_ERROR(Finish(anomalies_.get()));
  if (o_.dirty > 0) TALLY_RETURN_IF_ERROR(dirty_truth_.Close());
  return Status::Ok();
}

}  // namespace tally
