#pragma once
// `tally load`: batch loads of CSV, NDJSON and Parquet files through the ingest pipeline.
//
// A file is read in chunks of whole lines and each chunk is submitted as one batch, so memory
// stays bounded whatever the file size; up to two chunks are in flight, so decoding the next
// chunk overlaps the commit of the previous one. All chunks of a file share one load id, one
// quarantine file and one stored data-quality report. Lateness is judged against the
// watermark at the start of the load, so a backfill is not reported late against itself.
//
// Which table a file feeds is told by its folder or name, as `tally generate` writes them:
// <family>/part-*.csv, subscribers/part-*, partners.csv, plans.csv, cities.csv, towers.csv,
// seed/pricing_elasticity.csv, seed/funnel_data.csv and truth/... (imported as truth_* tables).
// A directory is loaded reference tables first, then events, then ground truth.

#include <string>
#include <variant>
#include <vector>

#include "ingest/pipeline.h"

namespace tally {

struct FileLoadOptions {
  size_t chunk_bytes = size_t{16} << 20;
  int in_flight = 2;
  std::string table;        // force every file into this table (family or reference table name)
  std::string scratch_dir;  // where Parquet files are converted; default: the system temp dir
};

//! The outcome of one file.
struct FileLoadResult {
  std::string path;
  std::string table;
  Status status;          // not ok: the file stopped loading here (rows committed before stay)
  QualityReport report;   // empty for ground-truth imports
};

struct LoadSummary {
  std::vector<FileLoadResult> files;
  std::vector<std::string> skipped;  // files in directories that belong to no table
  QualityReport total;
  bool ok() const {
    for (const auto& f : files) {
      if (!f.status.ok()) return false;
    }
    return true;
  }
};

//! Loads files into the pipeline's store. Not thread-safe; one load at a time.
class FileLoader {
 public:
  FileLoader(IngestPipeline* pipeline, FileLoadOptions options) : pipeline_(pipeline), options_(options) {}

  //! Loads files and directories. Fails before loading anything when a named file is missing or
  //! its table or format cannot be told; per-file failures are in the summary.
  Result<LoadSummary> Load(const std::vector<std::string>& paths);

 private:
  struct Target {
    enum class Kind { kEvents, kReference, kTruth } kind = Kind::kEvents;
    EventFamily family = EventFamily::kUsage;
    ReferenceTable reference = ReferenceTable::kPartners;
    std::string truth_table;
    int order() const;
    std::string name() const;
  };
  struct Input {
    std::string path;
    Target target;
    BodyFormat format = BodyFormat::kCsv;
    bool parquet = false;
  };
  Result<Input> Classify(const std::string& path, bool strict) const;
  FileLoadResult LoadText(const Input& input, const std::string& text_path, int64_t first_line,
                          std::optional<Timestamp> reference);
  FileLoadResult LoadOne(const Input& input, std::optional<Timestamp> reference);

  IngestPipeline* pipeline_;
  FileLoadOptions options_;
};

}  // namespace tally
