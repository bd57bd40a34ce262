// The metrics layer: the catalogue, the query form, SQL with bound values, the choice between
// rollups and raw events (and that both give the same answers), row-level security and the cache.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "metrics/metrics_engine.h"
#include "store_fixture.h"

namespace tally {
namespace {

using testing::StoreFixture;

SemanticQuery Q(const std::string& json) {
  auto q = ParseSemanticQuery(json);
  EXPECT_TRUE(q.ok()) << q.status().ToString() << "\n" << json;
  return q.ok() ? *q : SemanticQuery{};
}

std::string ErrorOf(const std::string& json) {
  auto q = ParseSemanticQuery(json);
  return q.ok() ? "ok" : q.status().message();
}

// The relation the compiler gets in unit tests: a named table, so the SQL is readable.
RelationFn FakeRelation() {
  return [](EventFamily f, TimeRange) -> Result<EventRelation> {
    EventRelation r;
    r.sql = "SELECT * FROM events_" + std::string(Name(f));
    return r;
  };
}

Result<CompiledQuery> Compile(const std::string& json, SecurityScope scope = {},
                              CompileOptions options = {}) {
  auto q = ParseSemanticQuery(json);
  if (!q.ok()) return q.status();
  return CompileQuery(MetricCatalogue::Builtin(), *q, scope, FakeRelation(), DuckDbDialect(),
                      options);
}

std::string Scalar(testing::WorldDb& world, const std::string& sql) {
  TextTable t = world.Rows(sql);
  return t.rows.size() == 1 && t.rows[0].size() == 1 ? t.rows[0][0].value_or("NULL") : "?";
}

constexpr const char* kJune =
    R"("timeDimensions": [{"dimension": "time", "granularity": "day",
        "dateRange": ["2024-06-01", "2024-06-30"]}])";

TEST(MetricsCatalogue, TheBuiltInCatalogueHasTheMeasuresAndDimensionsOfTheIssue) {
  const MetricCatalogue& c = MetricCatalogue::Builtin();
  for (const char* m : {"revenue", "mrr", "arpu", "active_subscribers", "churn_rate", "recharges",
                        "data_gb", "voice_minutes", "call_drop_rate", "conversions",
                        "conversion_rate", "sessions", "error_rate"}) {
    EXPECT_NE(c.FindMeasure(m), nullptr) << m;
  }
  for (const char* d : {"plan", "tier", "region", "city", "partner", "device", "billing_type",
                        "experiment", "variant", "subscriber"}) {
    EXPECT_NE(c.FindDimension(d), nullptr) << d;
  }
  for (const char* g : {"minute", "5minute", "hour", "day", "week", "month", "year"}) {
    EXPECT_TRUE(GranularityNamed(g).has_value()) << g;
  }
  // Every rollup expression reads only rollup columns, every raw one only its family's.
  EXPECT_NE(c.ToJson().find("\"name\":\"arpu\""), std::string::npos);
}

TEST(MetricsCatalogue, MistakesAreNamedByEntryAndKey) {
  auto bad = [](const std::string& toml) {
    auto c = MetricCatalogue::Parse(toml, "test.toml");
    return c.ok() ? std::string("ok") : c.status().message();
  };
  EXPECT_NE(bad("[[measure]]\nname = \"x\"\ntitle = \"X\"\nunit = \"u\"\nfamily = \"usage\"\n"
                "sql = \"count(*)\"\ncolour = \"red\"\n")
                .find("measure 1 ('x'): unknown key 'colour'"),
            std::string::npos);
  EXPECT_NE(bad("[[measure]]\nname = \"x\"\ntitle = \"X\"\nunit = \"u\"\nratio = [\"a\", \"b\"]\n")
                .find("ratio names unknown measure 'a'"),
            std::string::npos);
  EXPECT_NE(bad("[[measure]]\nname = \"x\"\ntitle = \"X\"\nunit = \"u\"\nfamily = \"calls\"\n"
                "sql = \"count(*)\"\n")
                .find("'calls' is not a event_family"),
            std::string::npos);
  EXPECT_NE(bad("[[dimension]]\nname = \"time\"\ntitle = \"T\"\ntype = \"string\"\nraw = \"x\"\n")
                .find("'time' is built in"),
            std::string::npos);
  EXPECT_NE(bad("[[measure]]\nname = \"x\"\ntitle = \"X\"\nunit = \"u\"\nfamily = \"usage\"\n"
                "sql = \"count(*)\"\nrollup = \"sum(r.x)\"\nrollups = [\"hourly\"]\n")
                .find("'hourly' is not a rollup table"),
            std::string::npos);
  EXPECT_NE(bad("[[measure]\n").find("test.toml:1"), std::string::npos);
}

TEST(MetricsQuery, BadQueriesAreNamedByField) {
  EXPECT_NE(ErrorOf("[1]").find("must be an object"), std::string::npos);
  EXPECT_NE(ErrorOf("{\"measures\": []}").find("measures: at least one"), std::string::npos);
  EXPECT_NE(ErrorOf("{\"measures\": [\"sms\"]}").find("dateRange: is required"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "granularity": "fortnight", "dateRange": ["2024-06-01", "2024-06-02"]}]})")
                .find("timeDimensions[0].granularity: 'fortnight' is not a granularity"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "dateRange": ["2024-06-01", "2024-13-02"]}]})")
                .find("timeDimensions[0].dateRange[1]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(R"({"measures": ["sms"], )") + kJune +
                    R"(, "filters": [{"member": "region", "operator": "like", "values": ["x"]}]})")
                .find("filters[0].operator: 'like' is not an operator"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(R"({"measures": ["sms"], )") + kJune +
                    R"(, "filters": [{"member": "partner", "operator": "gt", "values": [1, 2]}]})")
                .find("filters[0].values: takes exactly one value"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(R"({"measures": ["sms"], "limit": 0, )") + kJune + "}")
                .find("limit: must be an integer from 1"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(R"({"measures": ["sms"], "having": 1, )") + kJune + "}")
                .find("having: unknown key"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "dateRange": ["2020-01-01", "2024-01-01"]}]})")
                .find("spans more than"),
            std::string::npos);
  // Names are checked when compiled, against the catalogue.
  auto c = Compile(std::string(R"({"measures": ["sms", "profit"], )") + kJune + "}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("measures[1]: unknown measure 'profit'"), std::string::npos);
  c = Compile(std::string(R"({"measures": ["sms"], "dimensions": ["colour"], )") + kJune + "}");
  EXPECT_NE(c.status().message().find("dimensions[0]: unknown dimension 'colour'"),
            std::string::npos);
  c = Compile(std::string(R"({"measures": ["sms"], "order": {"revenue": "desc"}, )") + kJune + "}");
  EXPECT_NE(c.status().message().find("order[0]: 'revenue' is not a measure or dimension"),
            std::string::npos);
  c = Compile(std::string(R"({"measures": ["sms"], )") + kJune +
              R"(, "filters": [{"member": "partner", "operator": "equals", "values": ["x1"]}]})");
  EXPECT_NE(c.status().message().find("filters[0].values[0]: 'x1' is not a number"),
            std::string::npos);
}

TEST(MetricsCompiler, ValuesAreBoundNeverSplicedIntoTheSql) {
  const std::string evil = "Europe') OR 1=1 --";
  auto c = Compile(std::string(R"({"measures": ["sms"], "dimensions": ["region"], )") + kJune +
                   R"(, "filters": [{"member": "region", "operator": "equals", "values": [")" +
                   "Europe') OR 1=1 --" + R"("]}]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sql.find("OR 1=1"), std::string::npos) << c->sql;
  EXPECT_EQ(c->sql.find("Europe"), std::string::npos) << c->sql;
  bool bound = false;
  for (const SqlParam& p : c->params) {
    if (const auto* s = std::get_if<std::string>(&p)) bound = bound || *s == evil;
  }
  EXPECT_TRUE(bound);
  // The time range is bound too.
  EXPECT_EQ(c->sql.find("2024-06"), std::string::npos) << c->sql;
}

TEST(MetricsCompiler, TheCheapestSourceThatAnswersTheWholeQueryIsChosen) {
  auto source = [](const std::string& json, SecurityScope scope = {}) {
    auto c = Compile(json, scope);
    return c.ok() ? c->source : "error: " + c.status().message();
  };
  const std::string june = kJune;
  EXPECT_EQ(
      source(R"({"measures": ["data_gb", "recharges"], "dimensions": ["partner", "region"], )" +
             june + "}"),
      "rollup_segment_day");
  EXPECT_EQ(source(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "granularity": "5minute", "dateRange": ["2024-06-01", "2024-06-01"]}]})"),
            "rollup_segment_5m");
  EXPECT_EQ(source(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "granularity": "hour", "dateRange": ["2024-06-01T10:00:00Z", "2024-06-01T12:00:00Z"]}]})"),
            "rollup_segment_5m");
  // Finer than any rollup, or a range that cuts a 5-minute slot: raw events.
  EXPECT_EQ(source(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "granularity": "minute", "dateRange": ["2024-06-01", "2024-06-01"]}]})"),
            "events:usage");
  EXPECT_EQ(source(R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "dateRange": ["2024-06-01T10:01:00Z", "2024-06-01T12:00:00Z"]}]})"),
            "events:usage");
  // Distinct subscribers and subscriber attributes: the subscriber rollup.
  EXPECT_EQ(source(R"({"measures": ["arpu"], "dimensions": ["city"], )" + june + "}"),
            "rollup_subscriber_day");
  // A subscriber's scope reads only the subscriber rollup, or raw events.
  EXPECT_EQ(source(R"({"measures": ["data_gb"], )" + june + "}", SecurityScope{{}, 42}),
            "rollup_subscriber_day");
  // Experiments are not in rollups by variant.
  EXPECT_EQ(source(R"({"measures": ["exposures", "experiment_conversion_rate"],
      "dimensions": ["experiment", "variant"], )" +
                   june + "}"),
            "events:experiment");
  // Measures of several families on raw events: one part each, joined on the keys.
  auto c = Compile(R"({"measures": ["data_gb", "recharges", "conversion_rate"],
      "timeDimensions": [{"dimension": "time", "granularity": "minute",
      "dateRange": ["2024-06-01", "2024-06-01"]}]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->source, "events:usage,recharge,app");
  EXPECT_NE(c->sql.find("FULL OUTER JOIN"), std::string::npos);
  // Refusals name why.
  EXPECT_NE(source(R"({"measures": ["exposures"], )" + june + "}", SecurityScope{{}, 42})
                .find("a subscriber's scope cannot see events that belong to no subscriber"),
            std::string::npos);
  EXPECT_NE(source(R"({"measures": ["sms"], "dimensions": ["variant"], )" + june + "}")
                .find("dimension 'variant' does not apply"),
            std::string::npos);
}

TEST(MetricsCompiler, EveryPartOfEveryQueryCarriesTheScope) {
  for (bool raw : {false, true}) {
    auto c = Compile(R"({"measures": ["data_gb", "recharges", "revenue"], "dimensions": ["partner"],
        "timeDimensions": [{"dimension": "time", "granularity": "day",
        "dateRange": ["2024-06-01", "2024-06-30"]}]})",
                     SecurityScope{7, std::nullopt}, CompileOptions{raw});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    size_t parts = 0, scoped = 0;
    for (size_t at = 0; (at = c->sql.find("SELECT", at)) != std::string::npos; ++at) ++parts;
    for (size_t at = 0; (at = c->sql.find(".partner_id = ?", at)) != std::string::npos; ++at) {
      ++scoped;
    }
    // The outer SELECT, then one part per source (raw: each family also reads its relation).
    EXPECT_EQ(scoped, raw ? 3u : 1u) << c->sql;
    EXPECT_GE(parts, scoped + 1);
    int sevens = 0;
    for (const SqlParam& p : c->params) {
      if (const auto* v = std::get_if<int64_t>(&p)) sevens += *v == 7;
    }
    EXPECT_EQ(sevens, static_cast<int>(scoped));
  }
}

// ---- On a stored world ----------------------------------------------------------------------

class MetricsWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(testing::TempDir("metrics_world"));
    testing::MustGenerate(testing::SmallWorld(*world_));
    data_ = new std::string(testing::TempDir("metrics_data"));
    PipelineOptions po;
    po.subscriber_index_days = 400;  // the per-subscriber usage index, as `tally serve` keeps it
    store_ = new StoreFixture(*data_, po);
    store_->Load({*world_});
    ASSERT_TRUE(store_->pipeline().Compact().ok());
    engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &store_->pipeline());
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete store_;
    std::filesystem::remove_all(*world_);
    std::filesystem::remove_all(*data_);
    delete world_;
    delete data_;
  }

  static MetricsResult Run(const std::string& json, SecurityScope scope = {}, bool raw = false) {
    auto r = engine_->Run(Q(json), scope, CompileOptions{raw});
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << json;
    return r.ok() ? *r : MetricsResult{};
  }
  // Rows keyed by their non-measure columns, for comparing two answers.
  static std::map<std::string, std::vector<std::string>> Keyed(const MetricsResult& r,
                                                               size_t keys) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& row : r.rows) {
      std::string k;
      for (size_t i = 0; i < keys; ++i) k += row[i].value_or("NULL") + "|";
      std::vector<std::string> v;
      for (size_t i = keys; i < row.size(); ++i) v.push_back(row[i].value_or("NULL"));
      out[k] = v;
    }
    return out;
  }

  static std::string* world_;
  static std::string* data_;
  static StoreFixture* store_;
  static MetricsEngine* engine_;
};
std::string* MetricsWorldTest::world_ = nullptr;
std::string* MetricsWorldTest::data_ = nullptr;
StoreFixture* MetricsWorldTest::store_ = nullptr;
MetricsEngine* MetricsWorldTest::engine_ = nullptr;

constexpr const char* kWorldRange = R"("dateRange": ["2024-07-01", "2024-08-29"])";

TEST_F(MetricsWorldTest, RollupsAndRawEventsGiveTheSameAnswers) {
  const std::string all =
      R"("measures": ["usage_events", "voice_minutes", "data_gb", "sms", "premium_sms",
          "roaming_usage", "recharges", "recharge_amount", "failed_recharges", "activations",
          "churned", "plan_changes", "call_drops", "handovers", "call_drop_rate",
          "roaming_starts", "complaints", "sessions", "app_errors", "visits", "conversions",
          "conversion_rate"])";
  struct Case {
    std::string json;
    size_t keys;
    std::string source;
  };
  const std::vector<Case> cases = {
      {"{" + all.substr(0, all.size() - 1) + R"(, "exposures"], "dimensions": ["partner"],
          "timeDimensions": [{"dimension": "time",
          "granularity": "week", )" +
           kWorldRange + "}]}",
       2, "rollup_segment_day"},
      {"{" + all + R"(, "dimensions": ["region", "plan", "tier", "billing_type"],
          "timeDimensions": [{"dimension": "time", )" +
           kWorldRange + "}]}",
       4, "rollup_segment_day"},
      {"{" + all + R"(, "timeDimensions": [{"dimension": "time", "granularity": "hour",
          "dateRange": ["2024-07-10", "2024-07-11"]}]})",
       1, "rollup_segment_5m"},
      {R"({"measures": ["active_subscribers", "usage_events", "recharges", "churn_rate"],
          "dimensions": ["city", "device", "region", "tier"], "timeDimensions": [{"dimension": "time",
          "granularity": "month", )" +
           std::string(kWorldRange) + "}]}",
       5, "rollup_subscriber_day"},
      // Distinct subscribers from the activity rollup, the rest from a segment rollup: ranges
      // that start and end inside months, span two, or are one day (the 31st).
      {R"({"measures": ["active_subscribers", "usage_events", "arpu", "churn_rate"],
          "dimensions": ["region", "plan"], "timeDimensions": [{"dimension": "time",
          "dateRange": ["2024-07-10", "2024-08-20"]}]})",
       2, "rollup_segment_day,rollup_subscriber_month"},
      {R"({"measures": ["active_subscribers"], "dimensions": ["partner", "tier"],
          "timeDimensions": [{"dimension": "time", "granularity": "month", )" +
           std::string(kWorldRange) + "}]}",
       3, "rollup_subscriber_month"},
      {R"({"measures": ["active_subscribers", "data_gb"], "dimensions": ["billing_type"],
          "timeDimensions": [{"dimension": "time", "dateRange": ["2024-07-31", "2024-07-31"]}]})",
       1, "rollup_segment_day,rollup_subscriber_month"},
      {R"({"measures": ["active_subscribers"], "timeDimensions": [{"dimension": "time",
          "dateRange": ["2024-07-05", "2024-07-06"]}]})",
       0, "rollup_subscriber_month"},
  };
  for (const Case& c : cases) {
    const MetricsResult rollup = Run(c.json);
    const MetricsResult raw = Run(c.json, {}, true);
    EXPECT_EQ(rollup.source, c.source) << c.json;
    EXPECT_TRUE(rollup.uses_rollup);
    EXPECT_FALSE(raw.uses_rollup);
    ASSERT_FALSE(rollup.rows.empty()) << c.json;
    EXPECT_EQ(rollup.columns, raw.columns);
    const auto a = Keyed(rollup, c.keys), b = Keyed(raw, c.keys);
    std::string diff;
    for (const auto& [k, v] : a) {
      auto it = b.find(k);
      if (it == b.end() || it->second != v) {
        diff += "\n  " + k + " rollup:";
        for (const auto& x : v) diff += " " + x;
        diff += "\n  " + k + " raw:   ";
        if (it != b.end()) {
          for (const auto& x : it->second) diff += " " + x;
        }
      }
    }
    for (const auto& [k, v] : b) {
      if (!a.count(k)) diff += "\n  " + k + " only in raw";
    }
    EXPECT_EQ(diff, "") << c.json;
  }
}

TEST_F(MetricsWorldTest, AnswersMatchPlainSqlOverTheGeneratedFiles) {
  MetricsResult r = Run(R"({"measures": ["usage_events", "recharges"], )"
                        R"("timeDimensions": [{"dimension": "time", )" +
                        std::string(kWorldRange) + "}]}");
  ASSERT_EQ(r.rows.size(), 1u);
  testing::WorldDb world(*world_);
  EXPECT_EQ(*r.rows[0][0], Scalar(world, "SELECT count(*) FROM usage WHERE ts < '2024-08-30'"));
  EXPECT_EQ(*r.rows[0][1], Scalar(world,
                                  "SELECT count(*) FROM recharge WHERE ts < '2024-08-30' "
                                  "AND payment_status = 'succeeded'"));
}

TEST_F(MetricsWorldTest, APartnerSeesOnlyItsRowsWhateverItAsksFor) {
  const std::string q = R"({"measures": ["usage_events", "recharges"], "dimensions": ["partner"],
      "timeDimensions": [{"dimension": "time", "granularity": "day", )" +
                        std::string(kWorldRange) + "}]}";
  const MetricsResult everyone = Run(q);
  std::set<std::string> partners;
  for (const auto& row : everyone.rows) partners.insert(*row[1]);
  ASSERT_GE(partners.size(), 2u);
  for (bool raw : {false, true}) {
    const MetricsResult mine = Run(q, SecurityScope{1, std::nullopt}, raw);
    ASSERT_FALSE(mine.rows.empty());
    int64_t seen = 0, expected = 0;
    for (const auto& row : mine.rows) {
      EXPECT_EQ(*row[1], "1");
      seen += std::stoll(*row[2]);
    }
    for (const auto& row : everyone.rows) {
      if (*row[1] == "1") expected += std::stoll(*row[2]);
    }
    EXPECT_EQ(seen, expected);
    // Asking for another partner's rows returns nothing, not their rows.
    const MetricsResult other = Run(
        R"({"measures": ["usage_events"], "filters": [{"member": "partner", "operator": "equals",
            "values": [0, 2, 3]}], "timeDimensions": [{"dimension": "time", )" +
            std::string(kWorldRange) + "}]}",
        SecurityScope{1, std::nullopt}, raw);
    ASSERT_EQ(other.rows.size(), 1u);
    EXPECT_EQ(other.rows[0][0].value_or("0"), "0");
  }
}

TEST_F(MetricsWorldTest, ASubscriberSeesOnlyItsOwnUsage) {
  testing::WorldDb world(*world_);
  const std::string sub =
      Scalar(world, "SELECT subscriber_id FROM usage GROUP BY 1 ORDER BY count(*) DESC LIMIT 1");
  const int64_t id = std::stoll(sub);
  const std::string q = R"({"measures": ["usage_events", "data_gb"], "dimensions": ["subscriber"],
      "timeDimensions": [{"dimension": "time", "granularity": "day", )" +
                        std::string(kWorldRange) + "}]}";
  for (bool raw : {false, true}) {
    const MetricsResult mine = Run(q, SecurityScope{std::nullopt, id}, raw);
    ASSERT_FALSE(mine.rows.empty());
    int64_t events = 0;
    for (const auto& row : mine.rows) {
      EXPECT_EQ(*row[1], sub);
      events += std::stoll(*row[2]);
    }
    EXPECT_EQ(
        std::to_string(events),
        Scalar(world,
               "SELECT count(*) FROM usage WHERE ts < '2024-08-30' AND subscriber_id = " + sub));
  }
}

TEST_F(MetricsWorldTest, ResultsAreCachedUntilIngestChangesTheData) {
  const std::string q = R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time",
      "dateRange": ["2024-07-01", "2024-07-01"]}]})";
  const MetricsResult first = Run(q);
  const MetricsResult second = Run(q);
  EXPECT_FALSE(first.cached);
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(first.rows, second.rows);
  // A new SMS on that day: the cached answer is stale and not served.
  IngestResult res = store_->Ingest(
      EventFamily::kUsage, BodyFormat::kNdjson,
      R"({"event_id":"metrics-cache-1","ts":"2024-07-01T12:00:00Z","kind":"sms","subscriber_id":1,)"
      R"("partner_id":1,"tower_id":1,"counterparty":"+12125550100","destination":"on_net",)"
      R"("roaming":false,"session_ref":"m1"})");
  ASSERT_TRUE(res.ack.status.ok()) << res.ack.status.ToString();
  // Older than the dedup window (the world ends in August): stored through the late path.
  ASSERT_EQ(res.ack.counts.accepted + res.ack.counts.late, 1)
      << (res.rejects.empty() ? "" : res.rejects[0].reason) << res.ack.counts.duplicate;
  const MetricsResult third = Run(q);
  EXPECT_FALSE(third.cached);
  EXPECT_EQ(std::stoll(*third.rows[0][0]), std::stoll(*first.rows[0][0]) + 1);
  // Another scope never shares a cached answer.
  const MetricsResult scoped = Run(q, SecurityScope{1, std::nullopt});
  EXPECT_FALSE(scoped.cached);
}

TEST_F(MetricsWorldTest, ResultsRenderAsJsonAndCsv) {
  const MetricsResult r = Run(R"({"measures": ["recharge_amount", "conversion_rate"],
      "dimensions": ["region"], "timeDimensions": [{"dimension": "time", "granularity": "month",
      )" + std::string(kWorldRange) +
                              R"(}], "order": {"recharge_amount": "desc"}, "limit": 3})");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.columns,
            (std::vector<std::string>{"time", "region", "recharge_amount", "conversion_rate"}));
  for (const auto& row : r.rows) {
    EXPECT_TRUE(*row[0] == "2024-07-01T00:00:00Z" || *row[0] == "2024-08-01T00:00:00Z") << *row[0];
  }
  EXPECT_GE(std::stod(*r.rows[0][2]), std::stod(*r.rows[1][2]));
  const std::string json = r.ToJson();
  EXPECT_NE(json.find("[[\"" + *r.rows[0][0] + "\",\"" + *r.rows[0][1] + "\","), std::string::npos)
      << json;
  const std::string csv = r.ToCsv();
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")), "time,region,recharge_amount,conversion_rate");
}

// The in-memory subscriber index answers a subscriber's usage exactly as the metrics layer does
// from the store, at every granularity it serves, for whole and partial ranges.
TEST_F(MetricsWorldTest, TheSubscriberIndexAnswersLikeTheStore) {
  const char* kMeasures =
      R"("usage_events", "voice_minutes", "sms", "data_gb", "roaming_usage", "recharges", "recharge_amount", "revenue")";
  int compared = 0, nonempty = 0;
  for (int64_t id : {1, 2, 3, 17, 42, 99, 150, 151, 260, 333, 399, 400, 401, 450, 999999}) {
    for (const char* gran : {"", "day", "week", "month", "year"}) {
      for (const char* range :
           {R"(["2024-07-01", "2024-08-29"])", R"(["2024-07-10", "2024-08-03"])"}) {
        const std::string json = std::string(R"({"measures": [)") + kMeasures +
                                 R"(], "timeDimensions": [{"dimension": "time", )" +
                                 (*gran ? std::string(R"("granularity": ")") + gran + "\", " : "") +
                                 R"("dateRange": )" + range + "}]}";
        SemanticQuery q = Q(json);
        std::optional<MetricsResult> fast = engine_->FromSubscriberIndex(q, SubscriberId(id));
        ASSERT_TRUE(fast.has_value()) << json;
        SecurityScope scope;
        scope.subscriber = id;
        MetricsResult slow = Run(json, scope);
        ASSERT_EQ(fast->columns, slow.columns) << json;
        ASSERT_EQ(fast->rows.size(), slow.rows.size()) << id << " " << json;
        for (size_t r = 0; r < slow.rows.size(); ++r) {
          for (size_t c = 0; c < slow.columns.size(); ++c) {
            const std::string a = fast->rows[r][c].value_or("NULL");
            const std::string b = slow.rows[r][c].value_or("NULL");
            if (c == 0 && *gran) {
              EXPECT_EQ(a, b) << id << " " << json;
            } else {
              EXPECT_DOUBLE_EQ(std::stod(a), std::stod(b)) << slow.columns[c] << " " << id;
            }
          }
        }
        ++compared;
        nonempty += !slow.rows.empty() && (*gran != 0);
      }
    }
  }
  EXPECT_EQ(compared, 15 * 5 * 2);
  EXPECT_GT(nonempty, 50);
  // What it cannot answer goes to the store: hours, dimensions, filters, other measures.
  for (
      const char* json :
      {R"({"measures": ["sms"], "timeDimensions": [{"dimension": "time", "granularity": "hour", "dateRange": ["2024-07-01", "2024-07-02"]}]})",
       R"({"measures": ["sms"], "dimensions": ["region"], "timeDimensions": [{"dimension": "time", "dateRange": ["2024-07-01", "2024-07-02"]}]})",
       R"({"measures": ["arpu"], "timeDimensions": [{"dimension": "time", "dateRange": ["2024-07-01", "2024-07-02"]}]})",
       R"({"measures": ["sessions"], "timeDimensions": [{"dimension": "time", "dateRange": ["2024-07-01", "2024-07-02"]}]})"}) {
    EXPECT_FALSE(engine_->FromSubscriberIndex(Q(json), SubscriberId(1)).has_value()) << json;
  }
}

// The index keeps a window of days behind the newest: older days fall out as new ones arrive, and
// a range starting before the window is not answered from it.
TEST(SubscriberUsageIndexTest, TheWindowFollowsTheNewestDay) {
  SubscriberUsageIndex index(3);
  for (int32_t day = 100; day <= 105; ++day) {
    SubscriberDayRow r;
    r.day = Date{day};
    r.subscriber_id = SubscriberId(7);
    r.m[Measure::k_usage_events] = day;
    index.Apply({r});
  }
  EXPECT_EQ(index.first_day().days, 103);
  EXPECT_EQ(index.day_rows(), 3u);
  auto days = index.Days(SubscriberId(7), Date{0}, Date{200});
  ASSERT_EQ(days.size(), 3u);
  EXPECT_EQ(days.front().day, 103);
  EXPECT_EQ(days.back().usage_events, 105);
  index.DropBefore(Date{105});
  EXPECT_EQ(index.day_rows(), 1u);
}

// Loaded from the store at start, the index holds what commits built up while running.
TEST_F(MetricsWorldTest, TheSubscriberIndexLoadsWhatCommitsBuilt) {
  const SubscriberUsageIndex* live = store_->pipeline().subscriber_index();
  ASSERT_NE(live, nullptr);
  SubscriberUsageIndex loaded(400);
  ASSERT_TRUE(
      store_->pipeline().RunExclusive([&](EventStore& store) { return loaded.Load(store); }).ok());
  EXPECT_EQ(loaded.day_rows(), live->day_rows());
  EXPECT_GT(live->day_rows(), 10000u);
  const Date from{DaysFromCivil(2024, 7, 1)}, to{DaysFromCivil(2024, 8, 29)};
  for (int64_t id = 1; id <= 450; ++id) {
    auto a = live->Days(SubscriberId(id), from, to), b = loaded.Days(SubscriberId(id), from, to);
    ASSERT_EQ(a.size(), b.size()) << id;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].day, b[i].day);
      EXPECT_EQ(a[i].usage_events, b[i].usage_events);
      EXPECT_EQ(a[i].data_bytes, b[i].data_bytes);
      EXPECT_EQ(a[i].recharge_minor, b[i].recharge_minor);
    }
  }
}

}  // namespace
}  // namespace tally
