#include "insights/models/training.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/text_buffer.h"
#include "insights/models/evaluation.h"
#include "insights/models/logistic.h"
#include "insights/models/xgb.h"
#include "metrics/model_features.h"

namespace tally {

namespace {

constexpr int64_t kDayMicros = int64_t{86400} * 1000000;

Date DayOf(Timestamp t) {
  return Date{static_cast<int32_t>(t.micros >= 0 ? t.micros / kDayMicros
                                                 : (t.micros + 1) / kDayMicros - 1)};
}

void PutNumber(TextBuffer& out, double v) {
  if (std::isfinite(v)) {
    out.PutDouble(v);
  } else {
    out.Put("null");
  }
}

void PutPairs(TextBuffer& out, const std::vector<std::pair<std::string, double>>& pairs) {
  out.Put('{');
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i) out.Put(',');
    out.PutJsonString(pairs[i].first);
    out.Put(':');
    PutNumber(out, pairs[i].second);
  }
  out.Put('}');
}

// Appends `from`'s rows (and labels) to `into`.
void Append(FeatureSet* into, LabelSet* labels_into, const FeatureSet& from,
            const LabelSet& labels) {
  if (into->names.empty()) into->names = from.names;
  into->ids.insert(into->ids.end(), from.ids.begin(), from.ids.end());
  into->partners.insert(into->partners.end(), from.partners.begin(), from.partners.end());
  into->values.insert(into->values.end(), from.values.begin(), from.values.end());
  labels_into->churned.insert(labels_into->churned.end(), labels.churned.begin(),
                              labels.churned.end());
  labels_into->revenue.insert(labels_into->revenue.end(), labels.revenue.begin(),
                              labels.revenue.end());
}

xgb::DenseMatrix MatrixOf(const FeatureSet& f) {
  xgb::DenseMatrix m;
  m.rows = f.rows();
  m.cols = f.cols();
  m.values = f.values;
  return m;
}

std::vector<double> ToDouble(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DefaultParams(ModelKind kind) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"eta", "0.05"},
      {"max_depth", kind == ModelKind::kChurn ? "2" : "3"},
      {"min_child_weight", kind == ModelKind::kChurn ? "10" : "5"},
      {"subsample", "0.8"},
      {"colsample_bytree", "0.8"},
      {"lambda", "1"},
      {"tree_method", "exact"},
      {"nthread", "1"},
      {"seed", "7"}};
  if (kind == ModelKind::kChurn) {
    p.insert(p.begin(), {"objective", "binary:logistic"});
    p.emplace_back("eval_metric", "logloss");
  } else {
    p.insert(p.begin(), {"objective", "reg:squarederror"});
    p.emplace_back("eval_metric", "rmse");
  }
  return p;
}

int DefaultRounds(ModelKind kind) {
  return kind == ModelKind::kChurn ? 150 : 300;
}

Result<std::string> ScoresCsv(const std::string& model_path, const FeatureSet& features,
                              ModelKind kind) {
  TALLY_ASSIGN_OR_RETURN(xgb::Booster booster, xgb::Booster::Load(model_path));
  const xgb::DenseMatrix x = MatrixOf(features);
  TALLY_ASSIGN_OR_RETURN(std::vector<float> pred, booster.Predict(x));
  TALLY_ASSIGN_OR_RETURN(xgb::DenseMatrix contrib, booster.Contributions(x));
  TextBuffer out(size_t{1} << 20);
  out.Put("# scored_at=");
  out.PutTimestamp(features.cutoff);
  out.Put("\nsubscriber_id,partner_id,prediction,margin,base_value");
  for (const auto& n : features.names) out.Put("," + n);
  for (const auto& n : features.names) out.Put(",shap_" + n);
  out.Put('\n');
  const size_t k = features.cols();
  for (size_t i = 0; i < features.rows(); ++i) {
    const float* c = &contrib.values[i * (k + 1)];
    double margin = 0;
    for (size_t j = 0; j <= k; ++j) margin += c[j];
    out.PutInt(features.ids[i].value());
    out.Put(',');
    out.PutInt(features.partners[i]);
    out.Put(',');
    out.PutDouble(pred[i]);
    out.Put(',');
    out.PutDouble(kind == ModelKind::kChurn ? margin : pred[i]);
    out.Put(',');
    out.PutDouble(c[k]);
    for (size_t j = 0; j < k; ++j) {
      out.Put(',');
      const float v = features.at(i, j);
      if (!std::isnan(v)) out.PutDouble(v);
    }
    for (size_t j = 0; j < k; ++j) {
      out.Put(',');
      out.PutDouble(c[j]);
    }
    out.Put('\n');
  }
  return std::string(out.view());
}

Result<TrainReport> TrainModel(MetricsEngine& engine, const ModelRegistry& registry,
                               const TrainOptions& options) {
  const ModelKind kind = options.kind;
  const int horizon =
      kind == ModelKind::kChurn ? options.horizons.churn_days : options.horizons.ltv_days;
  if (horizon < 1) return Status::InvalidArgument("horizon: must be at least 1 day");
  TALLY_ASSIGN_OR_RETURN(MetricsResult span, engine.RunAnalysis(ModelDataSpanAnalysis(), {}));
  if (span.rows.empty() || !span.rows[0][0] || !span.rows[0][1]) {
    return Status::InvalidArgument("no usage events: load data before training (tally load)");
  }
  TALLY_ASSIGN_OR_RETURN(Timestamp first_ts, ParseTimestamp(*span.rows[0][0]));
  TALLY_ASSIGN_OR_RETURN(Timestamp last_ts, ParseTimestamp(*span.rows[0][1]));
  const Date first_day = DayOf(first_ts);
  const Date end_day{DayOf(last_ts).days + 1};  // the day after the newest data
  const Date holdout = options.cutoff ? *options.cutoff : Date{end_day.days - horizon};
  const Date earliest{first_day.days + options.history_days};
  const int needed = options.history_days + 2 * horizon;
  if (holdout.days + horizon > end_day.days) {
    return Status::InvalidArgument(
        "cutoff: " + FormatDate(holdout) + " + " + std::to_string(horizon) +
        " days of labels ends after the data (" + FormatDate(Date{end_day.days - 1}) + ")");
  }
  if (Date{holdout.days - horizon} < earliest) {
    return Status::InvalidArgument(
        "the " + std::string(ModelName(kind)) + " model needs " + std::to_string(needed) +
        " days of data before the end of its holdout (" + std::to_string(options.history_days) +
        " of history, " + std::to_string(horizon) + " of training labels, " +
        std::to_string(horizon) + " of holdout labels); the data hold " +
        std::to_string(end_day.days - first_day.days) + " days from " + FormatDate(first_day) +
        (options.cutoff ? " and the cutoff is " + FormatDate(*options.cutoff) : std::string()));
  }
  TrainReport report;
  report.kind = kind;
  report.holdout_cutoff = holdout;
  for (int k = 0; k < std::max(1, options.max_train_cutoffs); ++k) {
    const Date c{holdout.days - horizon - k * options.stack_step_days};
    if (c < earliest) break;
    report.train_cutoffs.push_back(c);
  }

  FeatureSet train;
  LabelSet train_labels;
  for (Date c : report.train_cutoffs) {
    TALLY_ASSIGN_OR_RETURN(FeatureSet f, LoadFeatures(engine, StartOfDay(c)));
    TALLY_ASSIGN_OR_RETURN(LabelSet l, LoadLabels(engine, f, options.horizons));
    Append(&train, &train_labels, f, l);
  }
  TALLY_ASSIGN_OR_RETURN(FeatureSet test, LoadFeatures(engine, StartOfDay(holdout)));
  TALLY_ASSIGN_OR_RETURN(LabelSet test_labels, LoadLabels(engine, test, options.horizons));
  report.train_rows = train.rows();
  report.holdout_rows = test.rows();
  const std::vector<float>& y_train =
      kind == ModelKind::kChurn ? train_labels.churned : train_labels.revenue;
  const std::vector<float>& y_test =
      kind == ModelKind::kChurn ? test_labels.churned : test_labels.revenue;
  if (train.rows() == 0 || test.rows() == 0) {
    return Status::InvalidArgument("no active subscribers at the cutoffs");
  }
  const std::vector<double> yt = ToDouble(y_test);
  if (kind == ModelKind::kChurn) {
    const double train_pos = std::accumulate(y_train.begin(), y_train.end(), 0.0);
    const double test_pos = std::accumulate(yt.begin(), yt.end(), 0.0);
    if (train_pos == 0 || test_pos == 0 || train_pos == static_cast<double>(train.rows())) {
      return Status::InvalidArgument(
          "no churn (or only churn) in the training or holdout labels: the data need "
          "deactivations in both windows");
    }
    report.train_positive_rate = train_pos / static_cast<double>(train.rows());
    report.holdout_positive_rate = test_pos / static_cast<double>(test.rows());
  }

  const auto params = options.params.empty() ? DefaultParams(kind) : options.params;
  const int rounds = options.rounds > 0 ? options.rounds : DefaultRounds(kind);
  TALLY_ASSIGN_OR_RETURN(xgb::Booster booster,
                         xgb::Booster::Train(MatrixOf(train), y_train, params, rounds));
  const xgb::DenseMatrix x_test = MatrixOf(test);
  TALLY_ASSIGN_OR_RETURN(std::vector<float> pred_f, booster.Predict(x_test));
  const std::vector<double> pred = ToDouble(pred_f);
  if (kind == ModelKind::kChurn) {
    report.metrics = {{"auc", AucRoc(pred, yt)},
                      {"log_loss", LogLoss(pred, yt)},
                      {"accuracy", Accuracy(pred, yt)}};
    // The baseline: logistic regression on the same features (missing values: training means).
    const std::vector<double> xtr(train.values.begin(), train.values.end());
    LogisticOptions lo;
    Result<LogisticModel> lr = FitLogistic(xtr, train.rows(), train.cols(), ToDouble(y_train), lo);
    if (!lr.ok()) {  // separated or collinear: a small ridge makes it well posed
      lo.l2 = 1e-3;
      lr = FitLogistic(xtr, train.rows(), train.cols(), ToDouble(y_train), lo);
    }
    if (!lr.ok()) return lr.status();
    std::vector<double> base(test.rows());
    std::vector<double> row(test.cols());
    for (size_t i = 0; i < test.rows(); ++i) {
      for (size_t j = 0; j < test.cols(); ++j) row[j] = test.at(i, j);
      base[i] = lr->Probability(row.data());
    }
    report.baseline = {{"auc", AucRoc(base, yt)},
                       {"log_loss", LogLoss(base, yt)},
                       {"accuracy", Accuracy(base, yt)},
                       {"l2", lo.l2}};
  } else {
    double mae = 0;
    for (size_t i = 0; i < pred.size(); ++i) mae += std::fabs(pred[i] - yt[i]);
    mae /= static_cast<double>(pred.size());
    report.metrics = {{"rmse", Rmse(pred, yt)}, {"r2", RSquared(pred, yt)}, {"mae", mae}};
    // The baseline: each subscriber's last 30 days of revenue, scaled to the horizon.
    const size_t rev = static_cast<size_t>(
        std::find(test.names.begin(), test.names.end(), "revenue_30d") - test.names.begin());
    std::vector<double> naive(test.rows());
    for (size_t i = 0; i < test.rows(); ++i) {
      naive[i] = static_cast<double>(test.at(i, rev)) * horizon / 30.0;
    }
    report.baseline = {{"rmse", Rmse(naive, yt)}, {"r2", RSquared(naive, yt)}};
  }

  // Global importance: mean |SHAP| of each feature on the holdout.
  TALLY_ASSIGN_OR_RETURN(xgb::DenseMatrix contrib, booster.Contributions(x_test));
  const size_t k = test.cols();
  for (size_t j = 0; j < k; ++j) {
    double s = 0;
    for (size_t i = 0; i < test.rows(); ++i) s += std::fabs(contrib.values[i * (k + 1) + j]);
    report.importance.emplace_back(test.names[j], s / static_cast<double>(test.rows()));
  }
  std::stable_sort(report.importance.begin(), report.importance.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  // Scores of every subscriber active at the newest data.
  TALLY_ASSIGN_OR_RETURN(FeatureSet now, LoadFeatures(engine, Timestamp{last_ts.micros + 1}));
  report.scored_at = now.cutoff;
  report.scored_rows = now.rows();

  TALLY_ASSIGN_OR_RETURN(std::string dir, registry.Directory(kind));
  (void)dir;
  TALLY_ASSIGN_OR_RETURN(report.version, registry.NextVersion(kind));
  const std::string model_path = registry.PathOf(kind, report.version, "model.json");
  const std::string tmp_model = model_path + ".tmp.json";
  TALLY_RETURN_IF_ERROR(booster.Save(tmp_model));
  TALLY_ASSIGN_OR_RETURN(std::string scores, ScoresCsv(tmp_model, now, kind));
  std::error_code ec;
  std::filesystem::rename(tmp_model, model_path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp_model + ": " + ec.message());
  TALLY_RETURN_IF_ERROR(
      ModelRegistry::WriteAtomically(registry.PathOf(kind, report.version, "scores.csv"), scores));

  TextBuffer m(1 << 14);
  m.Put("{\"model\":");
  m.PutJsonString(ModelName(kind));
  m.Put(",\"version\":");
  m.PutInt(report.version);
  m.Put(",\"created\":");
  m.PutJsonString(FormatTimestamp(WallClock()));
  m.Put(",\"cutoff\":");
  m.PutJsonString(FormatDate(holdout));
  m.Put(",\"train_cutoffs\":[");
  for (size_t i = 0; i < report.train_cutoffs.size(); ++i) {
    if (i) m.Put(',');
    m.PutJsonString(FormatDate(report.train_cutoffs[i]));
  }
  m.Put("],\"horizon_days\":");
  m.PutInt(horizon);
  m.Put(",\"history_days\":");
  m.PutInt(options.history_days);
  m.Put(",\"label\":");
  m.PutJsonString(kind == ModelKind::kChurn
                      ? "a deactivation in [cutoff, cutoff + horizon)"
                      : "usage, plan_fee and proration charges in [cutoff, cutoff + horizon), "
                        "major units of the plan's currency");
  m.Put(",\"scored_at\":");
  m.PutJsonString(FormatTimestamp(report.scored_at));
  m.Put(",\"rows\":{\"train\":");
  m.PutInt(static_cast<int64_t>(report.train_rows));
  m.Put(",\"holdout\":");
  m.PutInt(static_cast<int64_t>(report.holdout_rows));
  m.Put(",\"scored\":");
  m.PutInt(static_cast<int64_t>(report.scored_rows));
  m.Put('}');
  if (kind == ModelKind::kChurn) {
    m.Put(",\"positive_rate\":{\"train\":");
    PutNumber(m, report.train_positive_rate);
    m.Put(",\"holdout\":");
    PutNumber(m, report.holdout_positive_rate);
    m.Put('}');
  }
  m.Put(",\"features\":[");
  for (size_t j = 0; j < k; ++j) {
    if (j) m.Put(',');
    m.PutJsonString(test.names[j]);
  }
  m.Put("],\"params\":{");
  for (size_t i = 0; i < params.size(); ++i) {
    if (i) m.Put(',');
    m.PutJsonString(params[i].first);
    m.Put(':');
    m.PutJsonString(params[i].second);
  }
  m.Put("},\"rounds\":");
  m.PutInt(rounds);
  m.Put(",\"metrics\":");
  PutPairs(m, report.metrics);
  m.Put(",\"baseline\":{\"method\":");
  m.PutJsonString(kind == ModelKind::kChurn ? "logistic regression (IRLS, standardised features)"
                                            : "revenue of the last 30 days scaled to the horizon");
  m.Put(",\"metrics\":");
  PutPairs(m, report.baseline);
  m.Put("},\"importance\":[");
  for (size_t j = 0; j < report.importance.size(); ++j) {
    if (j) m.Put(',');
    m.Put("{\"feature\":");
    m.PutJsonString(report.importance[j].first);
    m.Put(",\"mean_abs_shap\":");
    PutNumber(m, report.importance[j].second);
    m.Put('}');
  }
  m.Put("]}");
  report.meta_json = std::string(m.view());
  TALLY_RETURN_IF_ERROR(ModelRegistry::WriteAtomically(
      registry.PathOf(kind, report.version, "meta.json"), report.meta_json));
  return report;
}

}  // namespace tally
