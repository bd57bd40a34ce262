#pragma once
// Streaming writers for generated files. Rows are encoded straight into a buffer that is flushed
// to disk by a writer thread about every 1 MiB, so the generator's memory stays flat whatever the
// world's size.
// Parquet is produced at the end by converting each finished CSV file with DuckDB.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "generate/io_queue.h"
#include "generate/options.h"
#include "generate/truth.h"
#include "model/record_codec.h"

namespace tally {

//! A buffered output file that counts its lines. Not thread safe.
//!
//! Rows are formatted into buffer(); every ~1 MiB the filled buffer is handed to an IoQueue (when
//! one is given) and formatting continues in a second buffer. The file is opened with O_DIRECT
//! where the file system allows it, so full 4 KiB blocks go from the buffer to the device without
//! the kernel copying them into the page cache; the last partial block is written normally. Write
//! errors are kept and returned by Close().
class LineFile {
 public:
  LineFile() = default;
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile();

  //! Creates `path`. With `io`, writes happen on its thread; without, in Commit()/Close().
  Status Open(const std::string& path, IoQueue* io = nullptr);
  TextBuffer& buffer() { return active_; }
  //! Call after appending `lines` complete lines to buffer().
  void Commit(int64_t lines) {
    lines_ += lines;
    if (active_.size() >= kFlushBytes) Flush();
  }
  int64_t lines() const { return lines_; }
  const std::string& path() const { return path_; }
  Status Close();

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  static constexpr size_t kBlock = 4096;  // O_DIRECT alignment of addresses, sizes and offsets
  void Flush();
  void Wait();
  Status WriteAll(const char* data, size_t n);

  int fd_ = -1;
  bool direct_ = false;
  IoQueue* io_ = nullptr;
  std::string path_;
  TextBuffer active_{kFlushBytes + (1 << 16), kBlock};
  TextBuffer writing_{kFlushBytes + (1 << 16), kBlock};  // owned by the pending write, if any
  std::future<void> pending_;
  int64_t lines_ = 0;
  Status status_;  // first write error; set by the writer, read after Wait()
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

  Status Open(const std::string& out_dir, IoQueue* io = nullptr) {
    TALLY_RETURN_IF_ERROR(file_.Open(out_dir + "/" + StagingPath(), io));
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
