// The churn and LTV models (src/insights/models, docs/models.md): the logistic baseline against
// scikit-learn, exact TreeSHAP, features that never see events after their cutoff, and the
// trained models on a generated world (XGBoost's holdout AUC beats the baseline's).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "api/models_api.h"
#include "insights/models/evaluation.h"
#include "insights/models/features.h"
#include "insights/models/logistic.h"
#include "insights/models/registry.h"
#include "insights/models/training.h"
#include "insights/models/xgb.h"
#include "metrics/metrics_engine.h"
#include "store_fixture.h"

namespace tally {
namespace {

using testing::StoreFixture;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- evaluation --------------------------------------------------------------------------------

TEST(ModelsEvaluation, AucCountsTiedScoresAsOneHalf) {
  // Pairs (positive, negative): (0.9 vs 0.1) win, (0.9 vs 0.5) win, (0.5 vs 0.1) win,
  // (0.5 vs 0.5) tie -> (3 + 0.5) / 4.
  EXPECT_DOUBLE_EQ(AucRoc({0.9, 0.5, 0.5, 0.1}, {1, 1, 0, 0}), 3.5 / 4);
  EXPECT_DOUBLE_EQ(AucRoc({0.1, 0.2, 0.3}, {0, 0, 1}), 1.0);
  EXPECT_TRUE(std::isnan(AucRoc({0.1, 0.2}, {0, 0})));
  EXPECT_NEAR(LogLoss({0.8, 0.3}, {1, 0}), -(std::log(0.8) + std::log(0.7)) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(Accuracy({0.8, 0.3, 0.6}, {1, 0, 0}), 2.0 / 3);
  EXPECT_DOUBLE_EQ(Rmse({1, 2}, {1, 4}), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(RSquared({1, 2, 3}, {1, 2, 3}), 1.0);
}

// ---- the logistic baseline against scikit-learn ------------------------------------------------

TEST(ModelsLogistic, IrlsMatchesScikitLearnWithoutPenaltyTo1e4) {
  const std::string fixture = TALLY_SOURCE_DIR "/tests/insights/logistic_fixture.json";
  const std::string out =
      ::testing::TempDir() + "lr_expected_" + std::to_string(getpid()) + ".json";
  const std::string command = "'" TALLY_SOURCE_DIR "/scripts/python' '" TALLY_SOURCE_DIR
                              "/tests/insights/logistic_reference.py' '" +
                              fixture + "' '" + out + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string printed;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) printed.append(buf, n);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << "\n" << printed;

  rapidjson::Document in, want;
  ASSERT_FALSE(
      in.Parse<rapidjson::kParseFullPrecisionFlag>(Slurp(fixture).c_str()).HasParseError());
  ASSERT_FALSE(want.Parse<rapidjson::kParseFullPrecisionFlag>(Slurp(out).c_str()).HasParseError())
      << printed;
  std::remove(out.c_str());
  const auto& xs = in["x"];
  const size_t rows = xs.Size(), cols = xs[0].Size();
  std::vector<double> x, y;
  for (const auto& row : xs.GetArray()) {
    for (const auto& v : row.GetArray()) x.push_back(v.GetDouble());
  }
  for (const auto& v : in["y"].GetArray()) y.push_back(v.GetDouble());

  auto fit = FitLogistic(x, rows, cols, y);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->intercept, want["intercept"].GetDouble(), 1e-4);
  for (size_t j = 0; j < cols; ++j) {
    const double w = want["coef"][static_cast<rapidjson::SizeType>(j)].GetDouble();
    EXPECT_NEAR(fit->coef[j], w, 1e-4 * std::max(1.0, std::fabs(w))) << "coefficient " << j;
  }
  for (size_t i = 0; i < rows; ++i) {
    EXPECT_NEAR(fit->Probability(&x[i * cols]),
                want["probability"][static_cast<rapidjson::SizeType>(i)].GetDouble(), 1e-4)
        << "row " << i;
  }
}

TEST(ModelsLogistic, ConstantColumnsGetZeroAndSeparatedClassesAreRefused) {
  // Column 1 is constant; y depends on column 0 with noise.
  std::vector<double> x, y;
  std::mt19937 rng(3);
  std::normal_distribution<double> z(0, 1);
  for (int i = 0; i < 200; ++i) {
    const double a = z(rng);
    x.push_back(a);
    x.push_back(5.0);
    y.push_back(a + z(rng) > 0 ? 1 : 0);
  }
  auto fit = FitLogistic(x, 200, 2, y);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_EQ(fit->coef[1], 0.0);
  EXPECT_GT(fit->coef[0], 0.5);
  // Perfect separation has no maximum-likelihood estimate.
  std::vector<double> sx = {-2, -1, 1, 2}, sy = {0, 0, 1, 1};
  EXPECT_FALSE(FitLogistic(sx, 4, 1, sy).ok());
}

// ---- XGBoost and exact TreeSHAP ----------------------------------------------------------------

xgb::DenseMatrix Synthetic(size_t rows, std::vector<float>* y, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> z(0, 1);
  xgb::DenseMatrix m;
  m.rows = rows;
  m.cols = 4;
  for (size_t i = 0; i < rows; ++i) {
    const float a = z(rng), b = z(rng), c = z(rng), d = z(rng);
    m.values.insert(m.values.end(), {a, b, c, i % 7 == 0 ? std::nanf("") : d});
    const float logit = 1.5f * a - b * c + (a > 1 ? 1.0f : 0.0f);
    y->push_back(std::uniform_real_distribution<float>(0, 1)(rng) < 1 / (1 + std::exp(-logit)));
  }
  return m;
}

TEST(ModelsXgb, ShapContributionsPlusBiasSumToTheMarginOfEveryRow) {
  std::vector<float> y;
  const xgb::DenseMatrix x = Synthetic(600, &y, 11);
  auto booster = xgb::Booster::Train(x, y, DefaultParams(ModelKind::kChurn), 40);
  ASSERT_TRUE(booster.ok()) << booster.status().ToString();
  auto margin = booster->PredictMargin(x);
  auto prob = booster->Predict(x);
  auto contrib = booster->Contributions(x);
  ASSERT_TRUE(margin.ok() && prob.ok() && contrib.ok());
  ASSERT_EQ(contrib->cols, x.cols + 1);
  const double bias = contrib->values[x.cols];
  for (size_t i = 0; i < x.rows; ++i) {
    double sum = 0;
    for (size_t j = 0; j <= x.cols; ++j) sum += contrib->values[i * (x.cols + 1) + j];
    ASSERT_NEAR(sum, (*margin)[i], 1e-4) << "row " << i;
    ASSERT_NEAR(1 / (1 + std::exp(-sum)), (*prob)[i], 1e-5) << "row " << i;
    // The bias column is the same expected margin for every row.
    ASSERT_FLOAT_EQ(contrib->values[i * (x.cols + 1) + x.cols], bias);
  }
}

TEST(ModelsXgb, ASavedJsonModelLoadsAndPredictsTheSame) {
  std::vector<float> y;
  const xgb::DenseMatrix x = Synthetic(300, &y, 5);
  auto booster = xgb::Booster::Train(x, y, DefaultParams(ModelKind::kChurn), 20);
  ASSERT_TRUE(booster.ok()) << booster.status().ToString();
  const std::string path = testing::TempDir("xgb_model") + ".json";
  ASSERT_TRUE(booster->Save(path).ok());
  EXPECT_EQ(Slurp(path).substr(0, 1), "{");
  auto loaded = xgb::Booster::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto a = booster->Predict(x), b = loaded->Predict(x);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < x.rows; ++i) EXPECT_FLOAT_EQ((*a)[i], (*b)[i]);
  std::filesystem::remove(path);
  EXPECT_FALSE(xgb::Booster::Load(path).ok());
}

// ---- the registry ------------------------------------------------------------------------------

TEST(ModelsRegistry, TheNewestVersionIsActiveUntilAnotherIsActivated) {
  const std::string dir = testing::TempDir("model_registry");
  ModelRegistry r(dir);
  ASSERT_TRUE(r.Directory(ModelKind::kChurn).ok());
  EXPECT_FALSE(r.Active(ModelKind::kChurn)->has_value());
  for (int v = 1; v <= 3; ++v) {
    ASSERT_TRUE(
        ModelRegistry::WriteAtomically(r.PathOf(ModelKind::kChurn, v, "meta.json"), "{}").ok());
  }
  EXPECT_EQ(*r.Versions(ModelKind::kChurn), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(**r.Active(ModelKind::kChurn), 3);
  ASSERT_TRUE(r.Activate(ModelKind::kChurn, 2).ok());
  EXPECT_EQ(**r.Active(ModelKind::kChurn), 2);
  EXPECT_EQ(r.Activate(ModelKind::kChurn, 9).code(), Status::Code::kNotFound);
  EXPECT_EQ(*r.NextVersion(ModelKind::kChurn), 4);
  EXPECT_FALSE(r.Active(ModelKind::kLtv)->has_value());
  EXPECT_FALSE(ParseModelKind("arpu").ok());
  std::filesystem::remove_all(dir);
}

// ---- on a generated world ----------------------------------------------------------------------

// One generated world, loaded once for every test of the suite.
class ModelsWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(testing::TempDir("models_world"));
    data_ = new std::string(testing::TempDir("models_data"));
    GeneratorOptions o;
    o.out_dir = *world_;
    o.subscribers = kSubscribers;
    o.days = kDays;
    o.start = Date{DaysFromCivil(2024, 1, 1)};
    o.seed = 5;  // not one of the worlds the default parameters were chosen on (docs/models.md)
    o.visitors_per_day = 20;
    o.threads = 2;
    o.quiet = true;
    testing::MustGenerate(o);
    store_ = new StoreFixture(*data_);
    store_->Load({*world_});
  }
  static void TearDownTestSuite() {
    delete store_;
    std::filesystem::remove_all(*world_);
    std::filesystem::remove_all(*data_);
    delete world_;
    delete data_;
  }

  // The checks, run by one test: under ctest each test of a suite runs in a process of its own,
  // and generating and loading the world is the slow part.
  static void FeaturesOfACutoffIgnoreEventsAddedAfterIt();
  static void OnlySubscribersActiveAtTheCutoffHaveFeatures();
  static void ChurnXgboostBeatsTheLogisticBaselineOnTheHoldout();
  static void TrainedVersionsAreServedWithShapDataWithinTheCallersScope();

  static constexpr int kSubscribers = 2000;
  static constexpr int kDays = 150;
  static std::string* world_;
  static std::string* data_;
  static StoreFixture* store_;
};
std::string* ModelsWorld::world_ = nullptr;
std::string* ModelsWorld::data_ = nullptr;
StoreFixture* ModelsWorld::store_ = nullptr;

// Features as of a cutoff in the middle of a day (so that the day partition holding the cutoff is
// read) do not change when events after the cutoff arrive, in every family the features read,
// while the labels after the cutoff do.
void ModelsWorld::FeaturesOfACutoffIgnoreEventsAddedAfterIt() {
  MetricsEngine engine(MetricCatalogue::Builtin(), &store_->pipeline());
  const Timestamp cutoff{StartOfDay(Date{DaysFromCivil(2024, 1, 1) + 100}).micros +
                         int64_t{12} * 3600 * 1000000};
  auto before = LoadFeatures(engine, cutoff);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_GT(before->rows(), 100u);
  auto labels_before = LoadLabels(engine, *before, {});
  ASSERT_TRUE(labels_before.ok());

  // Ten subscribers get, one minute to a day after the cutoff, usage, drops, complaints,
  // recharges, charges, app sessions and a deactivation.
  std::string usage =
      "event_id,ts,kind,subscriber_id,partner_id,duration_s,bytes,roaming,session_ref\n";
  std::string network = "event_id,ts,kind,subscriber_id,partner_id,tower_id,cause,session_ref\n";
  std::string complaint =
      "event_id,ts,subscriber_id,partner_id,case_id,category,channel,priority\n";
  std::string recharge =
      "event_id,ts,subscriber_id,partner_id,amount_minor,currency,channel,payment_status\n";
  std::string charge =
      "event_id,ts,entry,subscriber_id,partner_id,plan_id,plan_version,billing_type,amount_minor,"
      "currency,kind,insufficient_balance,balance_minor\n";
  std::string lifecycle = "event_id,ts,kind,subscriber_id,partner_id,plan_id,reason\n";
  std::string app = "event_id,ts,kind,subscriber_id,partner_id,region,device_type,duration_s\n";
  std::vector<int64_t> touched;
  for (size_t i = 0; i < before->rows() && touched.size() < 10; i += before->rows() / 10) {
    const int64_t id = before->ids[i].value();
    const int64_t partner = before->partners[i];
    touched.push_back(id);
    for (int k = 0; k < 3; ++k) {
      const std::string ts =
          FormatTimestamp(Timestamp{cutoff.micros + (1 + k * 700) * int64_t{60000000}});
      const std::string tag = std::to_string(id) + "_" + std::to_string(k);
      const std::string p = std::to_string(partner);
      const std::string sid = std::to_string(id);
      usage += "leak_u" + tag + "," + ts + ",data_session," + sid + "," + p +
               ",60,900000000,true,s" + tag + "\n";
      network += "leak_n" + tag + "," + ts + ",call_drop," + sid + "," + p + ",1,congestion,s" +
                 tag + "\n";
      complaint += "leak_c" + tag + "," + ts + "," + sid + "," + p + ",9" +
                   std::to_string(id * 10 + k) + ",billing,app,high\n";
      recharge += "leak_r" + tag + "," + ts + "," + sid + "," + p + ",5000,USD,app,failed\n";
      charge += "leak_ch" + tag + "," + ts + ",usage," + sid + "," + p +
                ",1,1,prepaid,99900,USD,roaming,true,-50000\n";
      app += "leak_a" + tag + "," + ts + ",session," + sid + "," + p + ",Europe,android,60\n";
    }
    lifecycle += "leak_l" + std::to_string(id) + "," +
                 FormatTimestamp(Timestamp{cutoff.micros + 60000000}) + ",deactivation," +
                 std::to_string(id) + "," + std::to_string(partner) + ",1,voluntary\n";
  }
  for (auto [family, body] :
       std::vector<std::pair<EventFamily, std::string>>{{EventFamily::kUsage, usage},
                                                        {EventFamily::kNetwork, network},
                                                        {EventFamily::kComplaint, complaint},
                                                        {EventFamily::kRecharge, recharge},
                                                        {EventFamily::kCharge, charge},
                                                        {EventFamily::kLifecycle, lifecycle},
                                                        {EventFamily::kApp, app}}) {
    IngestResult r = store_->Ingest(family, BodyFormat::kCsv, body);
    ASSERT_TRUE(r.ack.status.ok()) << r.ack.status.ToString();
    ASSERT_EQ(r.ack.counts.rejected, 0) << Name(family) << ": " << r.report.ToJson();
    const auto lines = std::count(body.begin(), body.end(), '\n') - 1;
    ASSERT_EQ(r.ack.counts.accepted + r.ack.counts.late, lines) << Name(family);
  }

  MetricsEngine fresh(MetricCatalogue::Builtin(), &store_->pipeline());  // no cached answers
  auto after = LoadFeatures(fresh, cutoff);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->ids, before->ids);
  for (size_t i = 0; i < before->values.size(); ++i) {
    const float a = before->values[i], b = after->values[i];
    ASSERT_TRUE((std::isnan(a) && std::isnan(b)) || a == b)
        << "subscriber " << before->ids[i / before->cols()].value() << " feature "
        << before->names[i % before->cols()] << ": " << a << " became " << b;
  }
  // The new events are there: the labels after the cutoff see them.
  auto labels_after = LoadLabels(fresh, *after, {});
  ASSERT_TRUE(labels_after.ok());
  double churn_before = 0, churn_after = 0;
  for (size_t i = 0; i < before->rows(); ++i) {
    churn_before += labels_before->churned[i];
    churn_after += labels_after->churned[i];
  }
  EXPECT_GT(churn_after, churn_before);
}

// Subscribers deactivated before a cutoff are not scored at it, and the rows are those active.
void ModelsWorld::OnlySubscribersActiveAtTheCutoffHaveFeatures() {
  MetricsEngine engine(MetricCatalogue::Builtin(), &store_->pipeline());
  const Date day{DaysFromCivil(2024, 1, 1) + 90};
  auto f = LoadFeatures(engine, StartOfDay(day));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::string expected;
  Status st = store_->pipeline().RunExclusive([&](EventStore& store) -> Status {
    TALLY_ASSIGN_OR_RETURN(
        EventRelation lifecycle,
        store.Relation(EventFamily::kLifecycle, TimeRange{Timestamp{0}, StartOfDay(day)}));
    TALLY_ASSIGN_OR_RETURN(
        TextTable t,
        store.Query("SELECT count(*) FROM subscribers s WHERE s.activation_date < DATE '" +
                    FormatDate(day) + "' AND s.subscriber_id NOT IN (SELECT subscriber_id FROM (" +
                    lifecycle.sql + ") l WHERE l.kind = 'deactivation')"));
    expected = t.rows.at(0).at(0).value_or("");
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(std::to_string(f->rows()), expected);
  EXPECT_GT(f->rows(), 1000u);
}

// The churn model on the world, split by time; XGBoost's holdout AUC beats the logistic
// baseline's. Both are printed for the record (docs/models.md).
void ModelsWorld::ChurnXgboostBeatsTheLogisticBaselineOnTheHoldout() {
  MetricsEngine engine(MetricCatalogue::Builtin(), &store_->pipeline());
  const std::string dir = testing::TempDir("models_registry_churn");
  ModelRegistry registry(dir);
  TrainOptions o;
  o.kind = ModelKind::kChurn;
  auto r = TrainModel(engine, registry, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto metric = [](const std::vector<std::pair<std::string, double>>& m, const std::string& k) {
    for (const auto& [name, v] : m) {
      if (name == k) return v;
    }
    return std::nan("");
  };
  const double auc = metric(r->metrics, "auc"), base_auc = metric(r->baseline, "auc");
  std::cout << "[ churn ] holdout " << FormatDate(r->holdout_cutoff) << ": " << r->holdout_rows
            << " subscribers, churn rate " << r->holdout_positive_rate << "; train rows "
            << r->train_rows << "; XGBoost AUC " << auc << ", log loss "
            << metric(r->metrics, "log_loss") << ", accuracy " << metric(r->metrics, "accuracy")
            << "; logistic AUC " << base_auc << ", log loss " << metric(r->baseline, "log_loss")
            << "\n[ churn ] top features:";
  for (size_t i = 0; i < 6; ++i) std::cout << " " << r->importance[i].first;
  std::cout << std::endl;
  EXPECT_GT(base_auc, 0.55);
  EXPECT_GT(auc, base_auc);
  EXPECT_EQ(r->version, 1);
  // Every active subscriber is scored, with SHAP values that add up.
  auto scores = registry.Scores(ModelKind::kChurn, 1);
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  EXPECT_EQ(scores->rows.size(), r->scored_rows);
  EXPECT_GT(scores->rows.size(), 100u);
  for (const auto& [id, s] : scores->rows) {
    double sum = s.base_value;
    for (double c : s.contributions) sum += c;
    ASSERT_NEAR(sum, s.margin, 1e-3) << id;
    ASSERT_NEAR(1 / (1 + std::exp(-s.margin)), s.prediction, 1e-4) << id;
  }
  // The metadata names the features, the cutoffs and both models' metrics.
  auto meta = registry.Metadata(ModelKind::kChurn, 1);
  ASSERT_TRUE(meta.ok());
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(meta->c_str()).HasParseError()) << *meta;
  EXPECT_EQ(doc["features"].Size(), ModelFeatureNames().size());
  EXPECT_TRUE(doc["metrics"].HasMember("auc"));
  EXPECT_TRUE(doc["baseline"]["metrics"].HasMember("auc"));
  EXPECT_EQ(doc["importance"].Size(), ModelFeatureNames().size());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally

namespace tally {
namespace {

HttpRequest Get(const std::string& target) {
  HttpRequest r;
  r.method = "GET";
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  // name=value pairs after '?' (the tests' values need no decoding).
  for (size_t at = q; at != std::string::npos && at + 1 < target.size();) {
    const size_t end = target.find('&', at + 1);
    const std::string pair = target.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    const size_t eq = pair.find('=');
    r.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    at = end;
  }
  return r;
}

// Both models trained into one data directory's registry, then served: versions, importance,
// and one subscriber's scores with SHAP data, within the caller's scope only.
void ModelsWorld::TrainedVersionsAreServedWithShapDataWithinTheCallersScope() {
  MetricsEngine engine(MetricCatalogue::Builtin(), &store_->pipeline());
  const std::string dir = testing::TempDir("models_registry_api");
  ModelRegistry registry(dir);
  TrainOptions churn;
  churn.kind = ModelKind::kChurn;
  churn.rounds = 40;
  ASSERT_TRUE(TrainModel(engine, registry, churn).ok());
  TrainOptions ltv;
  ltv.kind = ModelKind::kLtv;
  ltv.horizons.ltv_days = 30;  // 60 days of history + 2 x 30 fit in the 150-day world
  ltv.rounds = 40;
  auto l = TrainModel(engine, registry, ltv);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  // The default LTV horizon needs 180 days; the error says so.
  TrainOptions too_long;
  too_long.kind = ModelKind::kLtv;
  auto refused = TrainModel(engine, registry, too_long);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("needs 180 days"), std::string::npos)
      << refused.status().message();

  ModelsApi api(dir);
  Principal admin;
  admin.role = Role::kAdmin;
  auto list = api.Handle(Get("/v1/insights/models"), admin);
  ASSERT_TRUE(list && list->status == 200);
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(list->body.c_str()).HasParseError()) << list->body;
  ASSERT_EQ(doc["models"].Size(), 2u);
  EXPECT_EQ(doc["models"][0]["active_version"].GetInt(), 1);
  EXPECT_TRUE(doc["models"][0]["versions"][0]["meta"]["metrics"].HasMember("auc"));
  EXPECT_TRUE(doc["models"][1]["versions"][0]["meta"]["metrics"].HasMember("rmse"));

  auto imp = api.Handle(Get("/v1/insights/models/churn/importance"), admin);
  ASSERT_TRUE(imp && imp->status == 200) << (imp ? imp->body : "");
  ASSERT_FALSE(doc.Parse(imp->body.c_str()).HasParseError()) << imp->body;
  ASSERT_EQ(doc["importance"].Size(), ModelFeatureNames().size());
  EXPECT_GE(doc["importance"][0]["mean_abs_shap"].GetDouble(),
            doc["importance"][1]["mean_abs_shap"].GetDouble());
  EXPECT_EQ(api.Handle(Get("/v1/insights/models/arpu/importance"), admin)->status, 404);

  auto scores = registry.Scores(ModelKind::kChurn, 1);
  ASSERT_TRUE(scores.ok() && !scores->rows.empty());
  const SubscriberScore& s = scores->rows.begin()->second;

  // The top predictions: the registry's scores, highest first (ties by id), or lowest first.
  std::vector<std::pair<double, int64_t>> ranked;
  for (const auto& [id, row] : scores->rows) ranked.emplace_back(-row.prediction, id);
  std::sort(ranked.begin(), ranked.end());
  auto top = api.Handle(Get("/v1/insights/models/churn/scores?limit=5"), admin);
  ASSERT_TRUE(top && top->status == 200) << (top ? top->body : "");
  ASSERT_FALSE(doc.Parse(top->body.c_str()).HasParseError()) << top->body;
  EXPECT_EQ(doc["scored"].GetInt64(), static_cast<int64_t>(scores->rows.size()));
  ASSERT_EQ(doc["scores"].Size(), std::min<size_t>(5, ranked.size()));
  for (rapidjson::SizeType i = 0; i < doc["scores"].Size(); ++i) {
    EXPECT_EQ(doc["scores"][i]["subscriber_id"].GetInt64(), ranked[i].second);
    EXPECT_NEAR(doc["scores"][i]["prediction"].GetDouble(), -ranked[i].first, 1e-12);
  }
  auto bottom = api.Handle(Get("/v1/insights/models/ltv/scores?limit=3&order=asc"), admin);
  ASSERT_TRUE(bottom && bottom->status == 200);
  ASSERT_FALSE(doc.Parse(bottom->body.c_str()).HasParseError());
  EXPECT_LE(doc["scores"][0]["prediction"].GetDouble(), doc["scores"][1]["prediction"].GetDouble());
  // One partner's: the same ranking, with the other partners' subscribers left out.
  const int64_t top_partner = scores->rows.at(ranked[0].second).partner_id;
  std::vector<int64_t> theirs;
  for (const auto& [neg, id] : ranked) {
    if (scores->rows.at(id).partner_id == top_partner) theirs.push_back(id);
  }
  auto own = api.Handle(
      Get("/v1/insights/models/churn/scores?limit=5&partner=" + std::to_string(top_partner)),
      admin);
  ASSERT_TRUE(own && own->status == 200) << (own ? own->body : "");
  ASSERT_FALSE(doc.Parse(own->body.c_str()).HasParseError());
  EXPECT_EQ(doc["scored"].GetInt64(), static_cast<int64_t>(theirs.size()));
  ASSERT_EQ(doc["scores"].Size(), std::min<size_t>(5, theirs.size()));
  for (rapidjson::SizeType i = 0; i < doc["scores"].Size(); ++i) {
    EXPECT_EQ(doc["scores"][i]["subscriber_id"].GetInt64(), theirs[i]);
    EXPECT_EQ(doc["scores"][i]["partner_id"].GetInt64(), top_partner);
  }
  EXPECT_EQ(api.Handle(Get("/v1/insights/models/churn/scores?partner=x"), admin)->status, 400);
  EXPECT_EQ(api.Handle(Get("/v1/insights/models/churn/scores?limit=0"), admin)->status, 400);
  EXPECT_EQ(api.Handle(Get("/v1/insights/models/churn/scores?order=up"), admin)->status, 400);
  EXPECT_EQ(api.Handle(Get("/v1/insights/models/churn/other"), admin)->status, 404);
  const std::string route = "/v1/subscribers/" + std::to_string(s.subscriber_id) + "/churn";
  auto one = api.Handle(Get(route), admin);
  ASSERT_TRUE(one && one->status == 200) << (one ? one->body : "");
  ASSERT_FALSE(doc.Parse(one->body.c_str()).HasParseError()) << one->body;
  EXPECT_NEAR(doc["churn_probability"].GetDouble(), s.prediction, 1e-9);
  const auto& contributions = doc["churn"]["contributions"];
  ASSERT_EQ(contributions.Size(), ModelFeatureNames().size());
  double sum = doc["churn"]["base_value"].GetDouble();
  for (rapidjson::SizeType i = 0; i < contributions.Size(); ++i) {
    sum += contributions[i]["contribution"].GetDouble();
    if (i > 0) {
      EXPECT_GE(std::fabs(contributions[i - 1]["contribution"].GetDouble()),
                std::fabs(contributions[i]["contribution"].GetDouble()));
    }
  }
  EXPECT_NEAR(sum, doc["churn"]["margin"].GetDouble(), 1e-3);
  EXPECT_TRUE(doc["ltv_model"].IsObject());

  // The subscriber itself and its partner see it; another partner or subscriber gets a 404.
  Principal self;
  self.role = Role::kSubscriber;
  self.subscriber = SubscriberId(s.subscriber_id);
  EXPECT_EQ(api.Handle(Get(route), self)->status, 200);
  Principal partner;
  partner.role = Role::kPartner;
  partner.partner = PartnerId(s.partner_id);
  EXPECT_EQ(api.Handle(Get(route), partner)->status, 200);
  partner.partner = PartnerId(s.partner_id + 1);
  EXPECT_EQ(api.Handle(Get(route), partner)->status, 404);
  self.subscriber = SubscriberId(s.subscriber_id + 100000);
  EXPECT_EQ(api.Handle(Get(route), self)->status, 404);
  EXPECT_EQ(api.Handle(Get("/v1/subscribers/99999999/churn"), admin)->status, 404);
  EXPECT_EQ(api.Handle(Get("/v1/subscribers/x/churn"), admin)->status, 400);
  EXPECT_FALSE(api.Handle(Get("/v1/subscribers/1/usage"), admin).has_value());

  // Activating version 1 after a second training keeps version 1 active.
  ASSERT_TRUE(TrainModel(engine, registry, churn).ok());
  EXPECT_EQ(**registry.Active(ModelKind::kChurn), 2);
  ASSERT_TRUE(registry.Activate(ModelKind::kChurn, 1).ok());
  ASSERT_FALSE(
      doc.Parse(api.Handle(Get("/v1/insights/models"), admin)->body.c_str()).HasParseError());
  EXPECT_EQ(doc["models"][0]["active_version"].GetInt(), 1);
  EXPECT_EQ(doc["models"][0]["versions"].Size(), 2u);
  std::filesystem::remove_all(dir);
}

TEST_F(ModelsWorld, FeaturesScoresAndModelsOnOneWorld) {
  for (auto [name, check] :
       {std::pair{"features ignore later events", &FeaturesOfACutoffIgnoreEventsAddedAfterIt},
        std::pair{"only active subscribers", &OnlySubscribersActiveAtTheCutoffHaveFeatures},
        std::pair{"xgboost beats the baseline", &ChurnXgboostBeatsTheLogisticBaselineOnTheHoldout},
        std::pair{"served within scope",
                  &TrainedVersionsAreServedWithShapDataWithinTheCallersScope}}) {
    SCOPED_TRACE(name);
    check();
  }
}

}  // namespace
}  // namespace tally

namespace tally {
namespace {

// Copies the generated world in `from` to `to`, keeping only event rows before `cutoff` (every
// event file's second column is its ISO 8601 ts, which sorts as text). Reference tables and the
// truth are copied as they are.
void CopyWorldBefore(const std::string& from, const std::string& to, const std::string& cutoff) {
  namespace fs = std::filesystem;
  fs::create_directories(to);
  for (const auto& entry : fs::recursive_directory_iterator(from)) {
    const fs::path rel = fs::relative(entry.path(), from);
    if (entry.is_directory()) {
      fs::create_directories(fs::path(to) / rel);
      continue;
    }
    const std::string family = rel.begin()->string();
    const bool events =
        rel.has_parent_path() && family != "subscribers" && family != "truth" && family != "seed";
    if (!events) {
      fs::copy_file(entry.path(), fs::path(to) / rel);
      continue;
    }
    std::ifstream in(entry.path());
    std::ofstream out(fs::path(to) / rel);
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
      const size_t a = line.find(',');
      const size_t b = a == std::string::npos ? a : line.find(',', a + 1);
      if (header || (b != std::string::npos && line.substr(a + 1, b - a - 1) < cutoff)) {
        out << line << '\n';
      }
      header = false;
    }
  }
}

// The other direction of the leakage test: a store that never received the events after the
// cutoff gives exactly the same features as the store with the whole history.
TEST(ModelsLeakage, FeaturesOfACutoffAreTheSameWhenEveryLaterEventIsRemoved) {
  const std::string world = testing::TempDir("models_leak_world");
  const std::string cut_world = testing::TempDir("models_leak_cut");
  GeneratorOptions o;
  o.out_dir = world;
  o.subscribers = 150;
  o.days = 80;
  o.start = Date{DaysFromCivil(2024, 3, 1)};
  o.seed = 17;
  o.visitors_per_day = 10;
  o.threads = 2;
  o.quiet = true;
  testing::MustGenerate(o);
  const Timestamp cutoff{StartOfDay(Date{o.start.days + 65}).micros + int64_t{13} * 3600 * 1000000};
  // Compare as text ending in 'Z' so that rows at the cutoff second itself are dropped too.
  CopyWorldBefore(world, cut_world, FormatTimestamp(cutoff).substr(0, 19));

  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
  };
  const std::string usage_part = "/usage/part-00000.csv";
  ASSERT_GT(lines(world + usage_part), lines(cut_world + usage_part) + 1000)
      << "the cut copy should have lost the last 15 days of usage";
  ASSERT_GT(lines(cut_world + usage_part), 1000);

  std::vector<FeatureSet> sets;
  for (const std::string& dir : {world, cut_world}) {
    const std::string data = dir + "_data";
    StoreFixture store(data);
    store.Load({dir});
    MetricsEngine engine(MetricCatalogue::Builtin(), &store.pipeline());
    auto f = LoadFeatures(engine, cutoff);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    sets.push_back(std::move(*f));
    std::filesystem::remove_all(data);
  }
  ASSERT_GT(sets[0].rows(), 100u);
  ASSERT_EQ(sets[0].ids, sets[1].ids);
  for (size_t i = 0; i < sets[0].values.size(); ++i) {
    const float a = sets[0].values[i], b = sets[1].values[i];
    ASSERT_TRUE((std::isnan(a) && std::isnan(b)) || a == b)
        << "subscriber " << sets[0].ids[i / sets[0].cols()].value() << " feature "
        << sets[0].names[i % sets[0].cols()] << ": " << a << " with the whole history, " << b
        << " without the events after the cutoff";
  }
  std::filesystem::remove_all(world);
  std::filesystem::remove_all(cut_world);
}

}  // namespace
}  // namespace tally
