#include "generate/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/duckdb/duckdb_handle.h"

namespace tally {

LineFile::~LineFile() {
  Wait();
  if (fd_ >= 0) ::close(fd_);
}

Status LineFile::Open(const std::string& path, IoQueue* io) {
  path_ = path;
  io_ = io;
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  fd_ = ::open(path.c_str(), flags | O_DIRECT, 0644);
  direct_ = fd_ >= 0;
  if (fd_ < 0 && errno == EINVAL) fd_ = ::open(path.c_str(), flags, 0644);  // e.g. tmpfs
  if (fd_ < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

void LineFile::Wait() {
  if (pending_.valid()) pending_.get();
}

Status LineFile::WriteAll(const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && direct_) {
      // The file system refused this direct write after all: carry on through the page cache.
      direct_ = false;
      ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_DIRECT);
      continue;
    }
    if (w <= 0) return Status::IOError("cannot write " + path_ + ": " + std::strerror(errno));
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

void LineFile::Flush() {
  if (fd_ < 0) return;
  Wait();  // the previous write is done with writing_
  // Direct writes take whole blocks; the tail stays behind for the next flush or Close().
  const size_t n = direct_ ? active_.size() / kBlock * kBlock : active_.size();
  if (n == 0) return;
  std::swap(active_, writing_);
  active_.Clear();
  active_.Put(writing_.view().substr(n));
  auto job = [this, n] {
    if (!status_.ok()) return;
    status_ = WriteAll(writing_.data(), n);
  };
  if (io_) {
    pending_ = io_->Submit(job);
  } else {
    job();
  }
}

Status LineFile::Close() {
  if (fd_ < 0) return status_;
  Flush();
  Wait();
  if (status_.ok() && !active_.empty()) {
    // The last partial block: a direct write cannot take it, so write it through the page cache.
    if (direct_) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_DIRECT);
    status_ = WriteAll(active_.data(), active_.size());
    active_.Clear();
  }
  if (::close(fd_) != 0 && status_.ok()) {
    status_ = Status::IOError("cannot close " + path_ + ": " + std::strerror(errno));
  }
  fd_ = -1;
  return status_;
}

std::string_view DefectName(Defect d) {
  switch (d) {
    case Defect::kDuplicate: return "duplicate";
    case Defect::kFutureTimestamp: return "future_timestamp";
    case Defect::kNegativeDuration: return "negative_duration";
    case Defect::kUnknownSubscriber: return "unknown_subscriber";
    case Defect::kUnknownEnum: return "unknown_enum";
    case Defect::kWrongType: return "wrong_type";
    case Defect::kMalformed: return "malformed";
    case Defect::kInvalidUtf8: return "invalid_utf8";
    case Defect::kMissingField: return "missing_field";
    case Defect::kOverlongLine: return "overlong_line";
  }
  return "?";
}

DirtyInjector::DirtyInjector(double fraction, OutputFormat format, uint64_t seed, LineFile* truth)
    : fraction_(fraction), format_(format), rng_(seed), truth_(truth) {}

Defect DirtyInjector::PickDefect(bool has_duration, bool has_subscriber) {
  // Redeliveries are the most common dirt in real feeds; the rest are spread evenly.
  if (rng_.Bernoulli(0.3)) return Defect::kDuplicate;
  std::vector<Defect> options = {Defect::kFutureTimestamp, Defect::kUnknownEnum};
  if (has_duration) options.push_back(Defect::kNegativeDuration);
  if (has_subscriber) options.push_back(Defect::kUnknownSubscriber);
  if (format_ != OutputFormat::kParquet) {
    // Typed parquet columns cannot hold these; they exist only in text formats.
    for (Defect d : {Defect::kWrongType, Defect::kMalformed, Defect::kInvalidUtf8, Defect::kMissingField}) {
      options.push_back(d);
    }
    if (rng_.Bernoulli(0.01)) return Defect::kOverlongLine;
  }
  return options[rng_.Below(options.size())];
}

void DirtyInjector::Record(const std::string& rel_path, int64_t line, Defect d,
                           const std::string& event_id) {
  DirtyTruth t;
  t.file = rel_path;
  // Parquet has no header line: report the 1-based row number.
  t.line = format_ == OutputFormat::kParquet ? line - 1 : line;
  t.defect = std::string(DefectName(d));
  t.event_id = event_id;
  WriteCsvRow(truth_->buffer(), t);
  truth_->Commit(1);
}

std::string DirtyInjector::ReplaceValue(std::string_view clean, size_t index, std::string_view name,
                                        std::string_view csv_value,
                                        std::string_view json_value) const {
  if (!clean.empty() && clean.back() == '\n') clean.remove_suffix(1);
  if (format_ == OutputFormat::kNdjson) {
    std::string key = "\"" + std::string(name) + "\":";
    size_t p = clean.find(key);
    if (p == std::string_view::npos) return std::string(clean) + "\n";
    size_t v = p + key.size();
    size_t e = v;
    if (e < clean.size() && clean[e] == '"') {
      for (++e; e < clean.size() && clean[e] != '"'; ++e) {
        if (clean[e] == '\\') ++e;
      }
      ++e;
    } else {
      while (e < clean.size() && clean[e] != ',' && clean[e] != '}') ++e;
    }
    return std::string(clean.substr(0, v)) + std::string(json_value) +
           std::string(clean.substr(e)) + "\n";
  }
  std::vector<std::string_view> fields;
  std::vector<std::string> scratch;
  if (!SplitCsvLine(clean, &fields, &scratch).ok() || index >= fields.size()) {
    return std::string(clean) + "\n";
  }
  TextBuffer out(clean.size() + 32);
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out.Put(',');
    out.PutCsvString(i == index ? csv_value : fields[i]);
  }
  out.Put('\n');
  return std::string(out.view());
}

std::string DirtyInjector::DropValue(std::string_view clean, std::string_view name) const {
  if (!clean.empty() && clean.back() == '\n') clean.remove_suffix(1);
  if (format_ == OutputFormat::kNdjson) {
    std::string key = ",\"" + std::string(name) + "\":";
    size_t p = clean.find(key);
    if (p == std::string_view::npos) return std::string(clean) + "\n";
    size_t e = p + key.size();
    if (e < clean.size() && clean[e] == '"') {
      e = clean.find('"', e + 1) + 1;
    } else {
      while (e < clean.size() && clean[e] != ',' && clean[e] != '}') ++e;
    }
    return std::string(clean.substr(0, p)) + std::string(clean.substr(e)) + "\n";
  }
  // CSV: a row one column short.
  return std::string(clean.substr(0, clean.rfind(','))) + "\n";
}

std::string_view Extension(OutputFormat f) {
  switch (f) {
    case OutputFormat::kCsv: return "csv";
    case OutputFormat::kNdjson: return "ndjson";
    case OutputFormat::kParquet: return "parquet";
  }
  return "csv";
}

Status ConvertToParquet(const std::string& csv_path, const std::string& parquet_path,
                        const std::vector<FieldInfo>& columns) {
  TALLY_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open(":memory:"));
  std::string cols;
  for (const auto& c : columns) {
    if (!cols.empty()) cols += ", ";
    cols += SqlQuote(c.name) + ": " + SqlQuote(c.sql_type == "TIMESTAMP" ? "TIMESTAMPTZ" : c.sql_type);
  }
  // Timestamps are read as TIMESTAMPTZ (the text ends in 'Z') and stored as UTC TIMESTAMP.
  std::string select;
  for (const auto& c : columns) {
    if (!select.empty()) select += ", ";
    std::string q = "\"" + c.name + "\"";
    select += c.sql_type == "TIMESTAMP" ? "timezone('UTC', " + q + ") AS " + q : q;
  }
  std::string sql = "SET TimeZone='UTC'; COPY (SELECT " + select + " FROM read_csv(" + SqlQuote(csv_path) +
                    ", header=true, auto_detect=false, quote='\"', escape='\"', columns={" + cols +
                    "})) TO " + SqlQuote(parquet_path) + " (FORMAT parquet, COMPRESSION zstd)";
  TALLY_RETURN_IF_ERROR(db.Execute(sql).WithContext(csv_path));
  std::error_code ec;
  std::filesystem::remove(csv_path, ec);
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IOError("cannot create directory " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace tally
