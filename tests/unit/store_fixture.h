#pragma once
// A data directory opened for a test: the embedded store and its ingest pipeline, with helpers
// to load files and count stored rows.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ingest/file_loader.h"
#include "ingest/pipeline.h"
#include "store/duckdb/duckdb_event_store.h"
#include "world_fixture.h"

namespace tally::testing {

class StoreFixture {
 public:
  explicit StoreFixture(std::string dir, PipelineOptions options = {}) : dir_(std::move(dir)), options_(options) {
    Open();
  }
  ~StoreFixture() { Close(); }

  void Open() {
    DuckDbStoreOptions so;
    so.data_dir = dir_;
    auto s = DuckDbEventStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auto p = IngestPipeline::Start(store_.get(), store_->data_dir(), options_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    pipeline_ = std::move(*p);
  }
  void Close() {
    pipeline_.reset();
    store_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  LoadSummary Load(const std::vector<std::string>& paths, FileLoadOptions lo = {}) {
    FileLoader loader(pipeline_.get(), lo);
    auto s = loader.Load(paths);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return {};
    for (const auto& f : s->files) EXPECT_TRUE(f.status.ok()) << f.path << ": " << f.status.ToString();
    return *s;
  }

  IngestResult Ingest(EventFamily family, BodyFormat format, std::string body, SubmitOptions o = {}) {
    IngestRequest r;
    r.family = family;
    r.format = format;
    r.body = std::move(body);
    r.source = "test";
    return pipeline_->Submit(std::move(r), o).get();
  }

  //! Runs SQL on the store (on the pipeline's writer thread) and returns the single value.
  std::string Scalar(const std::string& sql) {
    std::string out;
    Status st = pipeline_->RunExclusive([&](EventStore& s) -> Status {
      TALLY_ASSIGN_OR_RETURN(TextTable t, s.Query(sql));
      if (t.rows.size() != 1 || t.rows[0].size() != 1) return Status::Internal("not one value: " + sql);
      out = t.rows[0][0].value_or("NULL");
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  //! The text of EXPLAIN for `sql`.
  std::string Plan(const std::string& sql) {
    std::string out;
    Status st = pipeline_->RunExclusive([&](EventStore& s) -> Status {
      TALLY_ASSIGN_OR_RETURN(TextTable t, s.Query("EXPLAIN " + sql));
      for (const auto& row : t.rows) {
        for (const auto& cell : row) out += cell.value_or("") + "\n";
      }
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  int64_t Int(const std::string& sql) {
    std::string s = Scalar(sql);
    return s == "NULL" || s.empty() ? -1 : std::stoll(s);
  }
  EventRelation Relation(EventFamily f, TimeRange range) {
    EventRelation rel;
    Status st = pipeline_->RunExclusive([&](EventStore& s) -> Status {
      TALLY_ASSIGN_OR_RETURN(rel, s.Relation(f, range));
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return rel;
  }
  //! Stored rows of a family over all time.
  int64_t Rows(EventFamily f) {
    EventRelation rel = Relation(f, TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})});
    return Int("SELECT count(*) FROM (" + rel.sql + ")");
  }
  int64_t DistinctIds(EventFamily f) {
    EventRelation rel = Relation(f, TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})});
    return Int("SELECT count(DISTINCT event_id) FROM (" + rel.sql + ")");
  }

  IngestPipeline& pipeline() { return *pipeline_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  PipelineOptions options_;
  std::unique_ptr<DuckDbEventStore> store_;
  std::unique_ptr<IngestPipeline> pipeline_;
};

//! Non-empty lines of a file, header excluded for CSV.
inline int64_t DataLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int64_t n = 0;
  bool first = true;
  const bool csv = path.size() > 4 && path.substr(path.size() - 4) == ".csv";
  while (std::getline(in, line)) {
    if (first && csv) {
      first = false;
      continue;
    }
    first = false;
    if (!line.empty()) ++n;
  }
  return n;
}

//! Data lines of every part file of a family folder.
inline int64_t FamilyLines(const std::string& world, const std::string& family) {
  int64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(world + "/" + family)) n += DataLines(e.path().string());
  return n;
}

}  // namespace tally::testing
