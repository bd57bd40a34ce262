#pragma once
// Streaming writers for generated files. Rows are encoded straight into a buffer that is flushed
// to disk in 1 MiB writes, so the generator's memory stays flat whatever the world's size.
// Parquet is produced at the end by converting each finished CSV file with DuckDB.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "generate/options.h"
#include "generate/truth.h"
#include "model/record_codec.h"

namespace tally {

//! A buffered output file that counts its lines. Not thread safe.
class LineFile {
 public:
  LineFile() = default;
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile();

  Status Open(const std::string& path);
  TextBuffer& buffer() { return buf_; }
  //! Call after appending `lines` complete lines to buffer().
  void Commit(int64_t lines) {
    lines_ += lines;
    if (buf_.size() >= (1 << 20)) Flush();
  }
  int64_t lines() const { return lines_; }
  const std::string& path() const { return path_; }
  Status Close();

 private:
  void Flush();
  std::FILE* f_ = nullptr;
  std::string path_;
  TextBuffer buf_{(1 << 20) + (1 << 16)};
  int64_t lines_ = 0;
  Status status_;
};

//! The defects --dirty mixes in. Parquet files only get the ones a typed column can hold.
enum class Defect : uint8_t {
  kDuplicate, kFutureTimestamp, kNegativeDuration, kUnknownSubscriber, kUnknownEnum,
  kWrongType, kMalformed, kInvalidUtf8, kMissingField, kOverlongLine
};
std::string_view DefectName(Defect d);

//! Decides which rows get a dirty companion and writes it, recording each in the truth file.
class DirtyInjector {
 public:
  DirtyInjector(double fraction, OutputFormat format, uint64_t seed, LineFile* truth);
  bool enabled() const { return fraction_ > 0; }

  //! Called after `clean` (one line with its newline) was appended to `file`.
  template <typename Rec>
  void AfterRow(const Rec& rec, std::string_view clean, LineFile* file, const std::string& rel_path);

 private:
  Defect PickDefect(bool has_duration, bool has_subscriber);
  void Record(const std::string& rel_path, int64_t line, Defect d, const std::string& event_id);
  //! Replaces the value of column `index` (named `name`) in a clean line, CSV or JSON.
  std::string ReplaceValue(std::string_view clean, size_t index, std::string_view name,
                           std::string_view csv_value, std::string_view json_value) const;
  std::string DropValue(std::string_view clean, std::string_view name) const;

  double fraction_;
  OutputFormat format_;
  Rng rng_;
  LineFile* truth_;
  std::vector<std::string> recent_;  // recent clean lines, for redelivery
  bool overlong_done_ = false;
  int64_t serial_ = 0;
};

//! Writes records of one type to one file, CSV or NDJSON (the parquet path writes CSV first).
template <typename Rec>
class RecordWriter {
 public:
  RecordWriter(OutputFormat format, std::string rel_path, DirtyInjector* dirty)
      : format_(format), rel_path_(std::move(rel_path)), dirty_(dirty) {}

  Status Open(const std::string& out_dir) {
    TALLY_RETURN_IF_ERROR(file_.Open(out_dir + "/" + StagingPath()));
    if (format_ != OutputFormat::kNdjson) {
      WriteCsvHeader<Rec>(file_.buffer());
      file_.Commit(1);
    }
    return Status::Ok();
  }
  void Write(const Rec& rec) {
    TextBuffer& out = file_.buffer();
    size_t begin = out.size();
    if (format_ == OutputFormat::kNdjson) WriteJsonRow(out, rec); else WriteCsvRow(out, rec);
    ++rows_;
    if constexpr (requires { Rec::kFamily; }) {
      if (dirty_ && dirty_->enabled()) {
        std::string clean(out.view().substr(begin));
        file_.Commit(1);
        dirty_->AfterRow(rec, clean, &file_, rel_path_);
        return;
      }
    }
    file_.Commit(1);
  }
  Status Close() { return file_.Close(); }
  int64_t rows() const { return rows_; }
  //! Path relative to the output directory of the final file.
  const std::string& rel_path() const { return rel_path_; }
  //! Where rows are written first: the final file, or a CSV staging file for parquet.
  std::string StagingPath() const {
    return format_ == OutputFormat::kParquet ? rel_path_ + ".staging.csv" : rel_path_;
  }

 private:
  OutputFormat format_;
  std::string rel_path_;
  DirtyInjector* dirty_;
  LineFile file_;
  int64_t rows_ = 0;
};

//! File extension of a format: csv, ndjson or parquet.
std::string_view Extension(OutputFormat f);

//! Converts a staged CSV of `columns` to parquet at `parquet_path` and deletes the CSV.
Status ConvertToParquet(const std::string& csv_path, const std::string& parquet_path,
                        const std::vector<FieldInfo>& columns);

//! Creates a directory and its parents.
Status MakeDirs(const std::string& path);

}  // namespace tally

#include "generate/dirty_impl.h"
