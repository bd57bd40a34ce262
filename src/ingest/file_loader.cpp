#include "ingest/file_loader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>

#include "store/duckdb/duckdb_handle.h"

namespace tally {

namespace fs = std::filesystem;

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<EventFamily> FamilyNamed(std::string_view name) {
  auto f = ParseEnum<EventFamily>(name);
  return f.ok() ? std::optional<EventFamily>(*f) : std::nullopt;
}

// Seed files keep the names the dashboard seed gives them.
std::optional<ReferenceTable> ReferenceForStem(std::string_view stem) {
  if (stem == "pricing_elasticity") return ReferenceTable::kSeedPricingElasticity;
  if (stem == "funnel_data") return ReferenceTable::kSeedFunnel;
  return ReferenceTableNamed(stem);
}

}  // namespace

int FileLoader::Target::order() const {
  switch (kind) {
    case Kind::kReference: return static_cast<int>(reference);
    case Kind::kEvents: return 100 + static_cast<int>(family);
    case Kind::kTruth: return 200;
  }
  return 300;
}

std::string FileLoader::Target::name() const {
  switch (kind) {
    case Kind::kReference:
      return VisitReference(reference, [](auto t) { return std::string(decltype(t)::type::kTable); });
    case Kind::kEvents: return std::string(Name(family));
    case Kind::kTruth: return truth_table;
  }
  return "";
}

Result<FileLoader::Input> FileLoader::Classify(const std::string& path, bool strict) const {
  Input in;
  in.path = path;
  const fs::path p(path);
  const std::string file = p.filename().string();
  std::string stem;
  if (EndsWith(file, ".csv")) {
    in.format = BodyFormat::kCsv;
    stem = file.substr(0, file.size() - 4);
  } else if (EndsWith(file, ".ndjson") || EndsWith(file, ".jsonl")) {
    in.format = BodyFormat::kNdjson;
    stem = file.substr(0, file.rfind('.'));
  } else if (EndsWith(file, ".parquet")) {
    in.format = BodyFormat::kCsv;  // converted to CSV first
    in.parquet = true;
    stem = file.substr(0, file.size() - 8);
  } else {
    return Status::InvalidArgument(path + ": cannot tell the format (expected .csv, .ndjson, .jsonl or .parquet)");
  }
  if (!options_.table.empty()) {
    if (auto f = FamilyNamed(options_.table)) {
      in.target.kind = Target::Kind::kEvents;
      in.target.family = *f;
    } else if (auto r = ReferenceForStem(options_.table)) {
      in.target.kind = Target::Kind::kReference;
      in.target.reference = *r;
    } else {
      return Status::InvalidArgument("--table: '" + options_.table + "' is neither an event family nor a table");
    }
    return in;
  }
  // Ground truth written by `tally generate`: truth/<name>.csv or truth/<name>/part-*.csv.
  const fs::path parent = p.parent_path();
  const std::string parent_name = parent.filename().string();
  if (parent_name == "truth" || parent.parent_path().filename() == "truth") {
    in.target.kind = Target::Kind::kTruth;
    in.target.truth_table = "truth_" + (parent_name == "truth" ? stem : parent_name);
    if (in.format != BodyFormat::kCsv || in.parquet) return Status::InvalidArgument(path + ": truth files are CSV");
    return in;
  }
  if (auto f = FamilyNamed(parent_name)) {
    in.target.kind = Target::Kind::kEvents;
    in.target.family = *f;
    return in;
  }
  if (auto r = ReferenceForStem(parent_name)) {
    in.target.kind = Target::Kind::kReference;
    in.target.reference = *r;
    return in;
  }
  if (auto f = FamilyNamed(stem)) {
    in.target.kind = Target::Kind::kEvents;
    in.target.family = *f;
    return in;
  }
  if (auto r = ReferenceForStem(stem)) {
    in.target.kind = Target::Kind::kReference;
    in.target.reference = *r;
    return in;
  }
  (void)strict;
  return Status::InvalidArgument(path +
                                 ": cannot tell which table it belongs to; name it after an event family or "
                                 "table (usage.csv, subscribers/part-0.csv, ...) or pass --table");
}

Result<LoadSummary> FileLoader::Load(const std::vector<std::string>& paths) {
  std::vector<Input> inputs;
  LoadSummary summary;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> files;
      for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
        if (e.is_regular_file()) files.push_back(e.path().string());
      }
      if (ec) return Status::IOError("cannot list " + path + ": " + ec.message());
      std::sort(files.begin(), files.end());
      for (const std::string& f : files) {
        auto in = Classify(f, false);
        if (in.ok()) {
          inputs.push_back(*in);
        } else {
          summary.skipped.push_back(f);
        }
      }
    } else if (fs::is_regular_file(path, ec)) {
      TALLY_ASSIGN_OR_RETURN(Input in, Classify(path, true));
      inputs.push_back(in);
    } else {
      return Status::NotFound(path + ": no such file or directory");
    }
  }
  std::stable_sort(inputs.begin(), inputs.end(),
                   [](const Input& a, const Input& b) { return a.target.order() < b.target.order(); });
  const std::optional<Timestamp> reference = pipeline_->watermark();
  summary.total.table = "all";
  summary.total.source = "tally load";
  std::map<std::string, std::vector<std::string>> truth;
  for (const Input& in : inputs) {
    if (in.target.kind == Target::Kind::kTruth) {
      truth[in.target.truth_table].push_back(in.path);
      continue;
    }
    FileLoadResult r = LoadOne(in, reference);
    summary.total.Merge(r.report);
    summary.files.push_back(std::move(r));
  }
  for (const auto& [table, files] : truth) {
    FileLoadResult r;
    r.path = files.size() == 1 ? files[0] : fs::path(files[0]).parent_path().string();
    r.table = table;
    r.status = pipeline_->ImportCsvTable(table, files);
    summary.files.push_back(std::move(r));
  }
  return summary;
}

FileLoadResult FileLoader::LoadOne(const Input& input, std::optional<Timestamp> reference) {
  if (!input.parquet) return LoadText(input, input.path, 1, reference);
  // Parquet: a transient in-memory DuckDB writes it out as CSV, which the pipeline then decodes
  // like any other file, so Parquet rows pass the same validation. Rows are numbered from 1.
  FileLoadResult r;
  r.path = input.path;
  r.table = input.target.name();
  const fs::path dir = options_.scratch_dir.empty() ? fs::temp_directory_path() : fs::path(options_.scratch_dir);
  const fs::path csv = dir / ("tally-load-" + std::to_string(::getpid()) + "-" + fs::path(input.path).stem().string() +
                              ".csv");
  auto db = DuckDb::Open(":memory:");
  if (!db.ok()) {
    r.status = db.status();
    return r;
  }
  r.status = db->Execute("SET TimeZone = 'UTC'; COPY (SELECT * FROM read_parquet(" + SqlQuote(input.path) + ")) TO " +
                         SqlQuote(csv.string()) + " (FORMAT csv, HEADER true)");
  if (!r.status.ok()) {
    r.status = r.status.WithContext(input.path);
    return r;
  }
  r = LoadText(input, csv.string(), 0, reference);
  r.path = input.path;
  std::error_code ec;
  fs::remove(csv, ec);
  return r;
}

FileLoadResult FileLoader::LoadText(const Input& input, const std::string& text_path, int64_t first_line,
                                    std::optional<Timestamp> reference) {
  FileLoadResult result;
  result.path = input.path;
  result.table = input.target.name();
  QualityReport& total = result.report;
  total.load_id = NewLoadId();
  total.source = input.path;
  total.table = result.table;
  int fd = ::open(text_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    result.status = Status::IOError("cannot open " + text_path);
    return result;
  }
  std::deque<std::future<IngestResult>> in_flight;
  auto settle = [&](std::future<IngestResult>& f) {
    IngestResult r = f.get();
    if (!r.ack.status.ok()) {
      if (result.status.ok()) result.status = r.ack.status.WithContext(input.path);
      return;
    }
    total.Merge(r.report);
    if (total.quarantine_file.empty()) total.quarantine_file = r.report.quarantine_file;
  };
  std::string carry;
  std::optional<std::string> header;
  int64_t next_line = first_line;
  bool eof = false;
  std::string buf;
  while (!eof && result.status.ok()) {
    buf = std::move(carry);
    carry.clear();
    size_t want = std::max(options_.chunk_bytes, buf.size() * 2);
    size_t have = buf.size();
    buf.resize(want);
    while (have < want) {
      ssize_t n = ::read(fd, buf.data() + have, want - have);
      if (n < 0) {
        result.status = Status::IOError("cannot read " + text_path);
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      have += static_cast<size_t>(n);
    }
    if (!result.status.ok()) break;
    buf.resize(have);
    size_t cut = eof ? buf.size() : buf.rfind('\n');
    if (cut == std::string::npos) {  // a line longer than the chunk: read more before cutting
      carry = std::move(buf);
      continue;
    }
    if (!eof) {
      ++cut;
      carry.assign(buf, cut, std::string::npos);
      buf.resize(cut);
    }
    if (buf.empty()) continue;
    const int64_t lines_in_chunk = std::count(buf.begin(), buf.end(), '\n') + (buf.back() == '\n' ? 0 : 1);
    SubmitOptions opts;
    opts.reference = reference;
    opts.first_line = next_line;
    opts.load_id = total.load_id;
    opts.store_report = false;
    if (input.format == BodyFormat::kCsv && header) opts.csv_header = header;
    if (input.format == BodyFormat::kCsv && !header) {
      std::string_view first(buf);
      first = first.substr(0, first.find('\n'));
      if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
      header = std::string(first);
    }
    next_line += lines_in_chunk;
    if (in_flight.size() >= static_cast<size_t>(std::max(1, options_.in_flight))) {
      settle(in_flight.front());
      in_flight.pop_front();
    }
    if (input.target.kind == Target::Kind::kEvents) {
      IngestRequest req;
      req.family = input.target.family;
      req.format = input.format;
      req.body = std::move(buf);
      req.source = input.path;
      in_flight.push_back(pipeline_->Submit(std::move(req), opts));
    } else {
      in_flight.push_back(
          pipeline_->SubmitReference(input.target.reference, input.format, std::move(buf), input.path, opts));
    }
    buf = std::string();
  }
  ::close(fd);
  while (!in_flight.empty()) {
    settle(in_flight.front());
    in_flight.pop_front();
  }
  total.load_id = result.report.load_id;
  if (result.status.ok()) result.status = pipeline_->StoreReport(total);
  return result;
}

}  // namespace tally
