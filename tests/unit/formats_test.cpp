// Output formats and dirty data: every clean row the generator writes decodes with the schema
// codecs and re-encodes to the same bytes; every dirty row is listed in truth/dirty with a defect
// that is really there; parquet holds the same data as CSV.

#include <concepts>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/utf8.h"
#include "generate/output.h"
#include "model/data_dictionary.h"
#include "model/events.h"
#include "model/record_json.h"
#include "world_fixture.h"

namespace tally {
namespace {

using testing::MustGenerate;
using testing::ReadFile;
using testing::SmallWorld;
using testing::TempDir;

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

struct DirtyRow {
  std::string defect;
  std::string event_id;
};

// file -> line -> defect
std::map<std::string, std::map<int64_t, DirtyRow>> ReadDirtyTruth(const std::string& dir) {
  std::map<std::string, std::map<int64_t, DirtyRow>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/truth/dirty")) {
    CsvRecordReader<DirtyTruth> r;
    auto lines = Lines(e.path().string());
    EXPECT_TRUE(r.ReadHeader(lines[0]).ok());
    for (size_t i = 1; i < lines.size(); ++i) {
      auto t = r.Parse(lines[i]);
      EXPECT_TRUE(t.ok()) << t.status().ToString();
      out[t->file][t->line] = {t->defect, t->event_id};
    }
  }
  return out;
}

// Checks one family's files: clean rows round-trip byte for byte, dirty rows fail or carry their
// defect. Adds the number of clean rows to *clean_rows.
template <typename Rec>
void CheckFamily(const std::string& dir, const std::string& family, bool json,
                 const std::map<std::string, std::map<int64_t, DirtyRow>>& dirty,
                 std::map<std::string, int>* defects_seen, const std::set<int64_t>& subscribers,
                 Date end, int64_t* clean_rows) {
  for (const auto& e : std::filesystem::directory_iterator(dir + "/" + family)) {
    std::string rel = family + "/" + e.path().filename().string();
    auto lines = Lines(e.path().string());
    auto it = dirty.find(rel);
    const std::map<int64_t, DirtyRow> none;
    const auto& bad = it == dirty.end() ? none : it->second;
    CsvRecordReader<Rec> csv;
    JsonRecordReader<Rec> js;
    size_t first = 0;
    if (!json) {
      EXPECT_TRUE(csv.ReadHeader(lines[0]).ok()) << rel;
      first = 1;
    }
    std::set<std::string> seen_ids;
    for (size_t i = first; i < lines.size(); ++i) {
      const int64_t line_no = static_cast<int64_t>(i) + 1;
      Result<Rec> rec = json ? js.Parse(lines[i]) : csv.Parse(lines[i]);
      auto d = bad.find(line_no);
      if (d == bad.end()) {
        ASSERT_TRUE(rec.ok()) << rel << ":" << line_no << ": " << rec.status().ToString();
        TextBuffer again;
        if (json) {
          WriteJsonRow(again, *rec);
        } else {
          WriteCsvRow(again, *rec);
        }
        ASSERT_EQ(std::string(again.view()), lines[i] + "\n") << rel << ":" << line_no;
        EXPECT_TRUE(seen_ids.insert(rec->event_id).second) << "clean duplicate id at " << rel << ":" << line_no;
        ++*clean_rows;
        continue;
      }
      const std::string& defect = d->second.defect;
      ++(*defects_seen)[defect];
      const std::string where = rel + ":" + std::to_string(line_no) + " (" + defect + ")";
      if (defect == "duplicate") {
        ASSERT_TRUE(rec.ok()) << where;
        EXPECT_EQ(rec->event_id, d->second.event_id) << where;
        EXPECT_TRUE(seen_ids.count(rec->event_id)) << where << ": redelivers a row seen earlier";
      } else if (defect == "future_timestamp") {
        ASSERT_TRUE(rec.ok()) << where;
        EXPECT_GT(rec->ts.date().days, end.days + 3650) << where;
      } else if (defect == "negative_duration") {
        ASSERT_TRUE(rec.ok()) << where;
        if constexpr (requires { rec->duration_s.value(); }) {
          ASSERT_TRUE(rec->duration_s.has_value()) << where;
          EXPECT_LT(*rec->duration_s, 0) << where;
        }
      } else if (defect == "unknown_subscriber") {
        ASSERT_TRUE(rec.ok()) << where;
        if constexpr (requires(Rec r) { { r.subscriber_id } -> std::same_as<SubscriberId&>; }) {
          EXPECT_FALSE(subscribers.count(rec->subscriber_id.value())) << where;
        }
      } else if (defect == "invalid_utf8") {
        EXPECT_NE(FindInvalidUtf8(lines[i]), std::string_view::npos) << where;
        if (json) {
          EXPECT_FALSE(rec.ok()) << where << ": the JSON parser rejects invalid UTF-8";
        }
      } else if (defect == "overlong_line") {
        EXPECT_GT(lines[i].size(), size_t{1} << 20) << where;
      } else {
        EXPECT_FALSE(rec.ok()) << where << " decoded although it is " << defect;
      }
    }
  }
}

void CheckDirtyWorld(OutputFormat format) {
  GeneratorOptions o = SmallWorld(TempDir(format == OutputFormat::kCsv ? "dirty_csv" : "dirty_json"));
  o.format = format;
  o.days = 21;
  o.dirty = 0.01;
  GenerateReport report = MustGenerate(o);
  bool json = format == OutputFormat::kNdjson;
  auto dirty = ReadDirtyTruth(o.out_dir);
  std::set<int64_t> subs;
  {
    // Subscribers come in the world's format too.
    JsonRecordReader<Subscriber> js;
    CsvRecordReader<Subscriber> csv;
    for (const auto& e : std::filesystem::directory_iterator(o.out_dir + "/subscribers")) {
      auto lines = Lines(e.path().string());
      size_t first = json ? 0 : 1;
      if (!json) {
        ASSERT_TRUE(csv.ReadHeader(lines[0]).ok());
      }
      for (size_t i = first; i < lines.size(); ++i) {
        auto s = json ? js.Parse(lines[i]) : csv.Parse(lines[i]);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        subs.insert(s->subscriber_id.value());
      }
    }
  }
  std::map<std::string, int> seen;
  const Date end = o.end();
  int64_t clean = 0;
  CheckFamily<UsageEvent>(o.out_dir, "usage", json, dirty, &seen, subs, end, &clean);
  CheckFamily<RechargeEvent>(o.out_dir, "recharge", json, dirty, &seen, subs, end, &clean);
  CheckFamily<LifecycleEvent>(o.out_dir, "lifecycle", json, dirty, &seen, subs, end, &clean);
  CheckFamily<NetworkEvent>(o.out_dir, "network", json, dirty, &seen, subs, end, &clean);
  CheckFamily<RoamingEvent>(o.out_dir, "roaming", json, dirty, &seen, subs, end, &clean);
  CheckFamily<ComplaintEvent>(o.out_dir, "complaint", json, dirty, &seen, subs, end, &clean);
  CheckFamily<AppEvent>(o.out_dir, "app", json, dirty, &seen, subs, end, &clean);
  CheckFamily<ExperimentEvent>(o.out_dir, "experiment", json, dirty, &seen, subs, end, &clean);
  EXPECT_EQ(clean, report.total_events()) << "clean rows are exactly the manifest's events";
  int64_t listed = 0;
  for (const auto& [file, rows] : dirty) listed += static_cast<int64_t>(rows.size());
  EXPECT_EQ(listed, report.stats.dirty_rows);
  EXPECT_NEAR(static_cast<double>(listed) / static_cast<double>(clean), o.dirty, o.dirty * 0.2);
  for (const char* kind : {"duplicate", "future_timestamp", "negative_duration", "unknown_subscriber",
                           "unknown_enum", "wrong_type", "malformed", "invalid_utf8", "missing_field"}) {
    EXPECT_GT(seen[kind], 0) << kind << " never produced";
  }
  std::filesystem::remove_all(o.out_dir);
}

TEST(Formats, CsvCleanRowsRoundTripAndDirtyRowsAreListed) { CheckDirtyWorld(OutputFormat::kCsv); }
TEST(Formats, NdjsonCleanRowsRoundTripAndDirtyRowsAreListed) { CheckDirtyWorld(OutputFormat::kNdjson); }

TEST(Formats, ParquetHoldsTheSameDataAsCsv) {
  GeneratorOptions csv = SmallWorld(TempDir("pq_csv"));
  csv.days = 14;
  GeneratorOptions pq = csv;
  pq.out_dir = TempDir("pq_parquet");
  pq.format = OutputFormat::kParquet;
  MustGenerate(csv);
  MustGenerate(pq);
  auto db = DuckDb::Open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Execute("SET TimeZone='UTC'").ok());
  for (const char* f : {"usage", "recharge", "lifecycle", "network", "app", "experiment", "subscribers"}) {
    std::string a = "SELECT count(*), count(DISTINCT event_id), min(ts::TIMESTAMP), max(ts::TIMESTAMP) FROM ";
    if (std::string(f) == "subscribers") a = "SELECT count(*), count(DISTINCT msisdn), min(activation_date), max(activation_date) FROM ";
    auto x = db->Query(a + "read_csv('" + csv.out_dir + "/" + f + "/part-*.csv', header=true)");
    auto y = db->Query(a + "read_parquet('" + pq.out_dir + "/" + f + "/part-*.parquet')");
    ASSERT_TRUE(x.ok() && y.ok()) << f << x.status().ToString() << y.status().ToString();
    EXPECT_EQ(x->rows, y->rows) << f;
    EXPECT_FALSE(std::filesystem::exists(pq.out_dir + "/" + f + "/part-00000.parquet.staging.csv"));
  }
  auto types = db->Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('" +
                         pq.out_dir + "/usage/part-00000.parquet')) WHERE column_name IN ('ts', 'bytes', 'roaming')");
  ASSERT_TRUE(types.ok());
  std::map<std::string, std::string> t;
  for (const auto& r : types->rows) t[*r[0]] = *r[1];
  EXPECT_EQ(t["ts"], "TIMESTAMP");
  EXPECT_EQ(t["bytes"], "BIGINT");
  EXPECT_EQ(t["roaming"], "BOOLEAN");
  std::filesystem::remove_all(csv.out_dir);
  std::filesystem::remove_all(pq.out_dir);
}

TEST(Docs, DataDictionaryIsUpToDate) {
  std::string doc = ReadFile(std::string(TALLY_SOURCE_DIR) + "/docs/data-dictionary.md");
  EXPECT_TRUE(doc == DataDictionaryMarkdown())
      << "docs/data-dictionary.md is stale: regenerate it with `./build/tally schema > docs/data-dictionary.md`";
}

TEST(Utf8, ValidatorFindsTheFirstBadByte) {
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("S\xC3\xA3o Paulo"), std::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("ab\xC3\x28"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("x\xED\xA0\x80"), 1u);     // a UTF-16 surrogate
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xE2\x82"), 0u);          // truncated
}

}  // namespace
}  // namespace tally
