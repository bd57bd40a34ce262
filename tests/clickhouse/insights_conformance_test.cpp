// Conformance of the insights on the ClickHouse event store with the embedded one: every insight
// (KPIs, funnels, pricing, experiments and each A/B report, unusual charges, plan advice,
// geography), with its parameters varied and under every kind of scope, gives the same report on
// the 2-shard cluster as on DuckDB (numbers to float tolerance), or the same refusal.
#include <regex>

#include "conformance_fixture.h"
#include "insights/experiments.h"
#include "insights/insight_request.h"
#include "metrics/analyses.h"
#include "metrics/model_features.h"

namespace tally {
namespace {

// "" when two reports are the same but for float rounding in numbers, else the first difference.
std::string DiffReports(const std::string& a, const std::string& b) {
  static const std::regex number(R"(-?\d+(\.\d+)?([eE][+-]?\d+)?)");
  auto ia = std::sregex_iterator(a.begin(), a.end(), number);
  auto ib = std::sregex_iterator(b.begin(), b.end(), number);
  size_t pa = 0, pb = 0;
  const std::sregex_iterator end;
  for (; ia != end && ib != end; ++ia, ++ib) {
    const std::string text_a = a.substr(pa, ia->position() - pa);
    const std::string text_b = b.substr(pb, ib->position() - pb);
    if (text_a != text_b)
      return "text at byte " + std::to_string(pa) + ": " + text_a.substr(0, 200);
    const double x = std::strtod(ia->str().c_str(), nullptr);
    const double y = std::strtod(ib->str().c_str(), nullptr);
    if (std::fabs(x - y) > 1e-6 * std::max({1.0, std::fabs(x), std::fabs(y)})) {
      return "number at byte " + std::to_string(ia->position()) + ": " + ia->str() + " vs " +
             ib->str() + " after ..." + a.substr(pa > 120 ? ia->position() - 120 : 0, 120);
    }
    pa = ia->position() + ia->length();
    pb = ib->position() + ib->length();
  }
  if ((ia == end) != (ib == end) || a.substr(pa) != b.substr(pb)) {
    return "the ends differ: ..." + a.substr(pa, 200) + " vs ..." + b.substr(pb, 200);
  }
  return "";
}

class InsightsConformance : public ConformanceTest {
 public:
  // "" when both engines give the same rows (or the same refusal) for the analysis.
  static std::string CompareAnalysis(const std::string& what, const Result<Analysis>& analysis,
                                     const SecurityScope& scope, size_t* rows) {
    if (!analysis.ok()) return "\n" + what + ": " + analysis.status().ToString();
    auto d = duck_engine_->RunAnalysis(*analysis, scope, MetricsEngine::CachePolicy::kRefresh);
    auto c = ch_engine_->RunAnalysis(*analysis, scope, MetricsEngine::CachePolicy::kRefresh);
    if (!d.ok() || !c.ok()) {
      if (d.ok() != c.ok() || d.status().message() != c.status().message()) {
        return "\n" + what + ":\n  duckdb: " + d.status().ToString() +
               "\n  clickhouse: " + c.status().ToString();
      }
      return "";
    }
    if (d->rows.size() != c->rows.size()) {
      return "\n" + what + ": " + std::to_string(d->rows.size()) + " rows vs " +
             std::to_string(c->rows.size());
    }
    *rows += d->rows.size();
    for (size_t i = 0; i < d->rows.size(); ++i) {
      for (size_t j = 0; j < d->columns.size(); ++j) {
        if (!Same(d->rows[i][j], c->rows[i][j])) {
          return "\n" + what + ": row " + std::to_string(i) + " " + d->columns[j] + ": " +
                 d->rows[i][j].value_or("NULL") + " vs " + c->rows[i][j].value_or("NULL");
        }
      }
    }
    return "";
  }

  // "" when both engines give the same report (or the same refusal) for the insight.
  static std::string CompareInsight(const std::string& name, const InsightParams& params,
                                    const SecurityScope& scope, size_t* answered) {
    auto d = RunInsight(*duck_engine_, name, params, scope);
    auto c = RunInsight(*ch_engine_, name, params, scope);
    std::string what = name;
    for (const auto& [k, v] : params) what += " " + k + "=" + v;
    if (scope.partner) what += " (partner " + std::to_string(*scope.partner) + ")";
    if (scope.subscriber) what += " (subscriber " + std::to_string(*scope.subscriber) + ")";
    if (!d.ok() || !c.ok()) {
      if (d.ok() != c.ok() || d.status().message() != c.status().message()) {
        return "\n" + what + ":\n  duckdb: " + d.status().ToString() +
               "\n  clickhouse: " + c.status().ToString();
      }
      return "";
    }
    ++*answered;
    const std::string diff = DiffReports(d->body, c->body);
    return diff.empty() ? "" : "\n" + what + ": " + diff;
  }
};

TEST_F(ConformanceTest, EveryInsightGivesTheSameReportOnBothEngines) {
  const std::vector<SecurityScope> scopes = {
      {}, {1, std::nullopt}, {2, std::nullopt}, {std::nullopt, 7}, {std::nullopt, 123}};
  std::vector<std::pair<std::string, InsightParams>> runs = {
      {"kpis", {}},
      {"kpis", {{"segment", "region"}}},
      {"funnel", {}},
      {"funnel", {{"segments", "region,tier"}}},
      {"funnel", {{"segments", "plan,partner,device"}}},
      {"funnel", {{"segments", "year,month"}, {"steps", "visit,signup,paid_conversion"}}},
      {"funnel", {{"source", "seed"}}},
      {"pricing", {}},
      {"pricing", {{"trial_days", "7"}}},
      {"pricing", {{"source", "seed"}}},
      {"experiments", {}},
      {"anomalies", {}},
      {"anomalies", {{"subscriber", "7"}}},
      {"plans", {}},
      {"plans", {{"subscriber", "42"}}},
      {"geo", {}},
      {"geo", {{"measures", "revenue,active_subscribers,data_gb"}, {"region", "Europe"}}},
  };
  // Every experiment's A/B report.
  auto experiments = ListExperiments(*duck_engine_, AllTime(), {});
  ASSERT_TRUE(experiments.ok()) << experiments.status().ToString();
  ASSERT_FALSE(experiments->empty());
  for (const ExperimentSummary& e : *experiments) {
    runs.push_back({"experiment", {{"experiment", e.experiment}}});
  }
  std::string diff;
  size_t answered = 0;
  for (const auto& [name, params] : runs) {
    for (const SecurityScope& scope : scopes) {
      diff += InsightsConformance::CompareInsight(name, params, scope, &answered);
    }
  }
  EXPECT_EQ(diff, "");
  EXPECT_GT(answered, runs.size() * 2);
}

TEST_F(ConformanceTest, EveryAnalysisAndModelFeatureTableGivesTheSameRows) {
  const TimeRange july{ParseTimestamp("2024-07-01T00:00:00Z").value(),
                       ParseTimestamp("2024-08-01T00:00:00Z").value()};
  const TimeRange all{ParseTimestamp("2024-07-01T00:00:00Z").value(),
                      ParseTimestamp("2024-08-30T00:00:00Z").value()};
  const Timestamp cutoff = ParseTimestamp("2024-08-10T00:00:00Z").value();
  std::vector<std::pair<std::string, Result<Analysis>>> analyses = {
      {"price_trials", PriceTrialsAnalysis(all, 14)},
      {"experiment_list", ExperimentListAnalysis(all)},
      {"seed_funnel", SeedTableAnalysis(ReferenceTable::kSeedFunnel)},
      {"seed_pricing", SeedTableAnalysis(ReferenceTable::kSeedPricingElasticity)},
      {"cities", CitiesAnalysis()},
      {"retention", RevenueRetentionAnalysis(all, "")},
      {"subscriber_days", SubscriberDaysAnalysis(july, std::nullopt)},
      {"subscriber_days 7", SubscriberDaysAnalysis(all, 7)},
      {"duplicate_usage", DuplicateUsageAnalysis(all, std::nullopt)},
      {"plan_versions", PlanVersionsAnalysis()},
      {"subscriber_plans", SubscriberPlansAnalysis(all, std::nullopt)},
      {"subscriber_cycles", SubscriberCyclesAnalysis(all, std::nullopt)},
      {"subscriber_cycles 42", SubscriberCyclesAnalysis(all, 42)},
      {"usage_start", UsageStartAnalysis(all)},
      {"usage_start (empty)",
       UsageStartAnalysis(TimeRange{ParseTimestamp("2030-01-01T00:00:00Z").value(),
                                    ParseTimestamp("2030-02-01T00:00:00Z").value()})},
      {"model_features", ModelFeaturesAnalysis(cutoff)},
      {"model_labels", ModelLabelsAnalysis(cutoff, 14, 30)},
      {"model_data_span", ModelDataSpanAnalysis()},
  };
  for (const char* segment : {"plan", "tier", "region", "partner"}) {
    analyses.push_back(
        {std::string("retention by ") + segment, RevenueRetentionAnalysis(all, segment)});
  }
  for (const char* segments : {"", "region,tier", "plan,partner,device", "year,month"}) {
    FunnelAnalysisSpec spec;
    spec.steps = {"visit", "signup", "trial_start", "paid_conversion"};
    for (std::string_view rest = segments; !rest.empty();) {
      const size_t comma = rest.find(',');
      spec.segments.emplace_back(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
    spec.range = all;
    analyses.push_back({std::string("funnel by ") + segments, FunnelAnalysis(spec)});
  }
  auto experiments = ListExperiments(*duck_engine_, AllTime(), {});
  ASSERT_TRUE(experiments.ok()) << experiments.status().ToString();
  for (const ExperimentSummary& e : *experiments) {
    for (const std::string& metric : e.metrics) {
      ExperimentArmsSpec spec;
      spec.experiment = e.experiment;
      spec.metric = metric;
      spec.range = AllTime();
      analyses.push_back({"arms " + e.experiment + " " + metric, ExperimentArmsAnalysis(spec)});
    }
  }
  std::string diff;
  size_t rows = 0;
  for (const auto& [what, analysis] : analyses) {
    for (const SecurityScope& scope :
         {SecurityScope{}, SecurityScope{1, std::nullopt}, SecurityScope{std::nullopt, 7}}) {
      diff += InsightsConformance::CompareAnalysis(what, analysis, scope, &rows);
    }
  }
  EXPECT_EQ(diff, "");
  EXPECT_GT(rows, 5000u);
}

}  // namespace
}  // namespace tally
