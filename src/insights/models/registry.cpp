#include "insights/models/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tally {

namespace fs = std::filesystem;

namespace {

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> SplitCsv(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ',') {
      out.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

double ParseDouble(std::string_view s) {
  if (s.empty()) return std::nan("");
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : std::nan("");
}

int64_t ParseInt(std::string_view s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::string_view ModelName(ModelKind kind) {
  return kind == ModelKind::kChurn ? "churn" : "ltv";
}

Result<ModelKind> ParseModelKind(std::string_view name) {
  if (name == "churn") return ModelKind::kChurn;
  if (name == "ltv") return ModelKind::kLtv;
  return Status::InvalidArgument("model: '" + std::string(name.substr(0, 32)) +
                                 "' is not a model (churn or ltv)");
}

ModelRegistry::ModelRegistry(std::string data_dir)
    : root_((fs::path(data_dir) / "models").string()) {}

Result<std::string> ModelRegistry::Directory(ModelKind kind) const {
  const fs::path dir = fs::path(root_) / ModelName(kind);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir.string() + ": " + ec.message());
  return dir.string();
}

std::string ModelRegistry::PathOf(ModelKind kind, int version, std::string_view file) const {
  return (fs::path(root_) / ModelName(kind) /
          ("v" + std::to_string(version) + "." + std::string(file)))
      .string();
}

Result<std::vector<int>> ModelRegistry::Versions(ModelKind kind) const {
  std::vector<int> out;
  const fs::path dir = fs::path(root_) / ModelName(kind);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kSuffix = ".meta.json";
    if (name.size() <= kSuffix.size() + 1 || name[0] != 'v' || !name.ends_with(kSuffix)) continue;
    const std::string_view digits =
        std::string_view(name).substr(1, name.size() - 1 - kSuffix.size());
    int v = 0;
    auto [p, e] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (e == std::errc() && p == digits.data() + digits.size() && v > 0) out.push_back(v);
  }
  if (ec) return Status::IOError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::optional<int>> ModelRegistry::Active(ModelKind kind) const {
  TALLY_ASSIGN_OR_RETURN(std::vector<int> versions, Versions(kind));
  if (versions.empty()) return std::optional<int>();
  auto text = ReadText((fs::path(root_) / ModelName(kind) / "ACTIVE").string());
  if (text.ok()) {
    const int v = static_cast<int>(ParseInt(*text));
    if (std::find(versions.begin(), versions.end(), v) != versions.end()) return std::optional(v);
  }
  return std::optional(versions.back());
}

Status ModelRegistry::Activate(ModelKind kind, int version) {
  TALLY_ASSIGN_OR_RETURN(std::vector<int> versions, Versions(kind));
  if (std::find(versions.begin(), versions.end(), version) == versions.end()) {
    return Status::NotFound("version: " + std::string(ModelName(kind)) + " has no version " +
                            std::to_string(version));
  }
  return WriteAtomically((fs::path(root_) / ModelName(kind) / "ACTIVE").string(),
                         std::to_string(version) + "\n");
}

Result<int> ModelRegistry::NextVersion(ModelKind kind) const {
  TALLY_ASSIGN_OR_RETURN(std::vector<int> versions, Versions(kind));
  return versions.empty() ? 1 : versions.back() + 1;
}

Status ModelRegistry::WriteAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> ModelRegistry::Metadata(ModelKind kind, int version) const {
  auto text = ReadText(PathOf(kind, version, "meta.json"));
  if (!text.ok()) {
    return Status::NotFound(std::string(ModelName(kind)) + " has no version " +
                            std::to_string(version));
  }
  return text;
}

Result<ScoreTable> ModelRegistry::Scores(ModelKind kind, int version) const {
  const std::string path = PathOf(kind, version, "scores.csv");
  TALLY_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  // Lines: "# scored_at=...", the header "subscriber_id,partner_id,prediction,margin,base_value,
  // <feature>...,shap_<feature>...", then one row per subscriber.
  ScoreTable t;
  std::istringstream in(text);
  std::string line;
  size_t nf = 0;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.starts_with("# scored_at=")) {
      t.scored_at = line.substr(12);
      continue;
    }
    const auto cells = SplitCsv(line);
    if (t.features.empty()) {
      if (cells.size() < 5 || (cells.size() - 5) % 2 != 0) {
        return Status::Corruption(path + ": line " + std::to_string(line_no) + ": bad header");
      }
      nf = (cells.size() - 5) / 2;
      for (size_t i = 0; i < nf; ++i) t.features.emplace_back(cells[5 + i]);
      continue;
    }
    if (cells.size() != 5 + 2 * nf) {
      return Status::Corruption(path + ": line " + std::to_string(line_no) + ": " +
                                std::to_string(cells.size()) + " cells, expected " +
                                std::to_string(5 + 2 * nf));
    }
    SubscriberScore s;
    s.subscriber_id = ParseInt(cells[0]);
    s.partner_id = ParseInt(cells[1]);
    s.prediction = ParseDouble(cells[2]);
    s.margin = ParseDouble(cells[3]);
    s.base_value = ParseDouble(cells[4]);
    for (size_t i = 0; i < nf; ++i) s.values.push_back(ParseDouble(cells[5 + i]));
    for (size_t i = 0; i < nf; ++i) s.contributions.push_back(ParseDouble(cells[5 + nf + i]));
    t.rows.emplace(s.subscriber_id, std::move(s));
  }
  return t;
}

}  // namespace tally
