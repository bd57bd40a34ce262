// KPIs: thresholds and status, and the billing-cohort KPIs (logo churn, revenue churn, net
// revenue retention) on hand-made plan fees whose answers are worked out by hand.

#include "insights/kpis.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "insights/insight_request.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

TEST(KpiThresholdsTest, StatusFollowsTheDirectionAndOverridesAreChecked) {
  std::map<std::string, KpiThreshold> t(DefaultKpiThresholds().begin(),
                                        DefaultKpiThresholds().end());
  KpiValue churn{0.015, std::nullopt, std::nullopt, ""};
  EXPECT_EQ(KpiStatus(churn, t["logo_churn"]), "green");
  churn.value = 0.04;
  EXPECT_EQ(KpiStatus(churn, t["logo_churn"]), "amber");
  churn.value = 0.08;
  EXPECT_EQ(KpiStatus(churn, t["logo_churn"]), "red");
  KpiValue nrr{1.02, std::nullopt, std::nullopt, ""};
  EXPECT_EQ(KpiStatus(nrr, t["nrr"]), "green");
  nrr.value = 0.85;
  EXPECT_EQ(KpiStatus(nrr, t["nrr"]), "red");
  // MRR is judged on its change; without a previous month there is nothing to judge.
  KpiValue mrr{1000, std::nullopt, std::nullopt, ""};
  EXPECT_EQ(KpiStatus(mrr, t["mrr"]), "");
  mrr.change = -0.01;
  EXPECT_EQ(KpiStatus(mrr, t["mrr"]), "amber");

  ASSERT_TRUE(ParseKpiThresholds("logo_churn:0.01:0.03;nrr:1.05:0.95", &t).ok());
  EXPECT_DOUBLE_EQ(t["logo_churn"].green, 0.01);
  EXPECT_DOUBLE_EQ(t["nrr"].amber, 0.95);
  churn.value = 0.02;
  EXPECT_EQ(KpiStatus(churn, t["logo_churn"]), "amber");
  for (const char* bad : {"logo_churn:0.05:0.01", "nrr:0.9:1.0", "nope:1:2", "nrr:1", "nrr:a:b"}) {
    auto st = ParseKpiThresholds(bad, &t);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("thresholds"), std::string::npos) << st.message();
  }
}

std::string Fee(const std::string& id, const std::string& ts, int subscriber, int plan,
                const char* entry, int amount) {
  return R"({"event_id":")" + id + R"(","ts":")" + ts + R"(","entry":")" + entry +
         R"(","subscriber_id":)" + std::to_string(subscriber) + R"(,"partner_id":)" +
         std::to_string(subscriber % 2) + R"(,"plan_id":)" + std::to_string(plan) +
         R"(,"plan_version":1,"billing_type":"prepaid","amount_minor":)" + std::to_string(amount) +
         R"(,"currency":"USD","insufficient_balance":false})" + "\n";
}

TEST(KpiCohortTest, ChurnAndNetRevenueRetentionOnHandMadeFees) {
  const std::string dir = TempDir("kpi_store");
  StoreFixture store(dir);
  // August: three subscribers billed 10, 20 and 30. September: the first billed again, the
  // second upgraded (fee 20 + proration 5), the third gone, a fourth new. October: one fee, so
  // September is a complete month.
  std::string body = Fee("c1", "2024-08-03T00:00:00Z", 1, 1, "plan_fee", 1000) +
                     Fee("c2", "2024-08-10T00:00:00Z", 2, 3, "plan_fee", 2000) +
                     Fee("c3", "2024-08-20T00:00:00Z", 3, 5, "plan_fee", 3000) +
                     Fee("c4", "2024-09-03T00:00:00Z", 1, 1, "plan_fee", 1000) +
                     Fee("c5", "2024-09-10T00:00:00Z", 2, 4, "plan_fee", 2000) +
                     Fee("c6", "2024-09-12T00:00:00Z", 2, 4, "proration", 500) +
                     Fee("c7", "2024-09-15T00:00:00Z", 4, 1, "plan_fee", 4000) +
                     Fee("c8", "2024-10-03T00:00:00Z", 1, 1, "plan_fee", 1000);
  IngestResult r = store.Ingest(EventFamily::kCharge, BodyFormat::kNdjson, body);
  ASSERT_TRUE(r.ack.status.ok()) << r.ack.status.ToString();
  ASSERT_EQ(r.ack.counts.accepted, 8) << (r.rejects.empty() ? "" : r.rejects[0].reason);
  MetricsEngine engine(MetricCatalogue::Builtin(), &store.pipeline());

  const TimeRange range{StartOfDay(Date{DaysFromCivil(2024, 8, 1)}),
                        StartOfDay(Date{DaysFromCivil(2024, 11, 1)})};
  auto analysis = RevenueRetentionAnalysis(range, "");
  ASSERT_TRUE(analysis.ok());
  auto rows = engine.RunAnalysis(*analysis, {});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->rows.size(), 1u) << "only September has a complete month after its cohort";
  const auto& row = rows->rows[0];
  EXPECT_EQ(row[0].value_or("").substr(0, 10), "2024-09-01");
  EXPECT_EQ(std::stod(*row[2]), 3);          // start subscribers
  EXPECT_DOUBLE_EQ(std::stod(*row[3]), 60);  // start MRR
  EXPECT_EQ(std::stod(*row[4]), 1);          // churned
  EXPECT_DOUBLE_EQ(std::stod(*row[5]), 30);
  EXPECT_DOUBLE_EQ(std::stod(*row[6]), 35);  // 10 + 25 retained; the new subscriber is not

  KpiOptions o;
  o.range = range;
  auto report = ComputeKpis(engine, o, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const KpiRow* sep = nullptr;
  for (const auto& k : report->rows) {
    if (k.period.starts_with("2024-09")) sep = &k;
  }
  ASSERT_NE(sep, nullptr);
  EXPECT_DOUBLE_EQ(*sep->kpis.at("logo_churn").value, 1.0 / 3);
  EXPECT_EQ(sep->kpis.at("logo_churn").status, "red");
  EXPECT_DOUBLE_EQ(*sep->kpis.at("revenue_churn").value, 0.5);
  EXPECT_DOUBLE_EQ(*sep->kpis.at("nrr").value, 35.0 / 60);
  // MRR from the catalogue: August 60, September 75 (+25%).
  EXPECT_DOUBLE_EQ(*sep->kpis.at("mrr").value, 75);
  EXPECT_DOUBLE_EQ(*sep->kpis.at("mrr").previous, 60);
  EXPECT_EQ(sep->kpis.at("mrr").status, "green");

  // By plan: the cohort's plan in August. Plan 5's only subscriber churned.
  auto by_plan = RevenueRetentionAnalysis(range, "plan");
  ASSERT_TRUE(by_plan.ok());
  auto plan_rows = engine.RunAnalysis(*by_plan, {});
  ASSERT_TRUE(plan_rows.ok());
  ASSERT_EQ(plan_rows->rows.size(), 3u);
  EXPECT_EQ(*plan_rows->rows[2][1], "5");
  EXPECT_EQ(std::stod(*plan_rows->rows[2][4]), 1);
  // A partner sees its own cohort only: partner 1 has subscribers 1 and 3.
  auto mine = engine.RunAnalysis(*analysis, SecurityScope{1, std::nullopt});
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->rows.size(), 1u);
  EXPECT_EQ(std::stod(*mine->rows[0][2]), 2);
  EXPECT_DOUBLE_EQ(std::stod(*mine->rows[0][3]), 40);

  auto bad = RunInsight(engine, "kpis", {{"segment", "colour"}}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("segment"), std::string::npos);
  bad = RunInsight(engine, "kpis", {{"from", "2024-08-01"}}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("from, to"), std::string::npos);

  // only=thresholds: the thresholds in force (overrides applied) and no rows.
  auto only = RunInsight(engine, "kpis",
                         {{"only", "thresholds"},
                          {"thresholds", "arpu:5:1"},
                          {"from", "2024-08-01"},
                          {"to", "2024-10-31"}},
                         {});
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_NE(only->body.find("\"rows\":[]"), std::string::npos) << only->body;
  EXPECT_NE(only->body.find("\"arpu\":{\"higher_is_better\":true,\"on\":\"change\",\"green\":5"),
            std::string::npos)
      << only->body;
  bad = RunInsight(engine, "kpis", {{"only", "everything"}}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("only"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tally::testing
