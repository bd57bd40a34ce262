#include "insights/funnel.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

#include "ingest/csv_file.h"
#include "insights/json_out.h"
#include "model/enums.h"
#include "model/seed.h"

namespace tally {

namespace {

// Columns of the stored seed_funnel_data table, as SeedStoredAnalysis reads them.
Result<std::vector<SeedFunnelRow>> SeedRowsOf(const MetricsResult& r) {
  std::vector<SeedFunnelRow> rows;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    if (row.size() < 6) return Status::Internal("seed_funnel_data: unexpected columns");
    SeedFunnelRow f;
    f.step = row[0].value_or("");
    f.count = row[1] ? std::stoll(*row[1]) : 0;
    f.step_order = row[2] ? std::stoi(*row[2]) : 0;
    TALLY_ASSIGN_OR_RETURN(f.region, ParseEnum<Region>(row[3].value_or("")));
    TALLY_ASSIGN_OR_RETURN(f.plan, ParseEnum<Tier>(row[4].value_or("")));
    f.year = row[5] ? std::stoi(*row[5]) : 0;
    rows.push_back(std::move(f));
  }
  return rows;
}

}  // namespace

const std::vector<std::string>& DefaultFunnelSteps() {
  static const std::vector<std::string> k = {"visit", "signup", "trial_start", "paid_conversion"};
  return k;
}

std::vector<FunnelStepResult> FunnelSteps(const std::vector<std::string>& steps,
                                          const std::vector<int64_t>& counts) {
  std::vector<FunnelStepResult> out;
  for (size_t i = 0; i < steps.size() && i < counts.size(); ++i) {
    FunnelStepResult s;
    s.step = steps[i];
    s.count = counts[i];
    auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };
    if (i == 0) {
      s.step_conversion = counts[0] > 0 ? 1 : 0;
      s.overall_conversion = s.step_conversion;
    } else {
      s.step_conversion = ratio(counts[i], counts[i - 1]);
      s.overall_conversion = ratio(counts[i], counts[0]);
      s.drop_off = counts[i - 1] - counts[i];
      s.drop_off_rate = ratio(s.drop_off, counts[i - 1]);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<FunnelReport> FunnelFromEvents(MetricsEngine& engine, const FunnelAnalysisSpec& spec,
                                      const SecurityScope& scope,
                                      MetricsEngine::CachePolicy cache) {
  TALLY_ASSIGN_OR_RETURN(Analysis analysis, FunnelAnalysis(spec));
  TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.RunAnalysis(analysis, scope, cache));
  FunnelReport report;
  report.steps = spec.steps;
  report.segment_by = spec.segments;
  report.source = r.source;
  report.cached = r.cached;
  const size_t k = spec.segments.size();
  for (const auto& row : r.rows) {
    FunnelSegmentResult seg;
    for (size_t i = 0; i < k; ++i) seg.keys.push_back(row[i].value_or(""));
    std::vector<int64_t> counts;
    for (size_t i = k; i < row.size(); ++i) counts.push_back(row[i] ? std::stoll(*row[i]) : 0);
    seg.steps = FunnelSteps(spec.steps, counts);
    report.segments.push_back(std::move(seg));
  }
  if (k == 0 && report.segments.empty()) {
    report.segments.push_back(
        {{}, FunnelSteps(spec.steps, std::vector<int64_t>(spec.steps.size()))});
  }
  return report;
}

Result<FunnelReport> FunnelFromSeedCsv(const std::string& path,
                                       const std::vector<std::string>& segment_by) {
  TALLY_ASSIGN_OR_RETURN(auto rows, ReadCsvFile<SeedFunnelRow>(path));
  return FunnelFromSeedRows(rows, segment_by, path, path);
}

Result<FunnelReport> FunnelFromStoredSeed(MetricsEngine& engine,
                                          const std::vector<std::string>& segment_by,
                                          const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult r,
                         engine.RunAnalysis(SeedTableAnalysis(ReferenceTable::kSeedFunnel), scope));
  TALLY_ASSIGN_OR_RETURN(auto rows, SeedRowsOf(r));
  TALLY_ASSIGN_OR_RETURN(
      FunnelReport report,
      FunnelFromSeedRows(rows, segment_by, "seed_funnel_data", "seed_funnel_data"));
  report.cached = r.cached;
  return report;
}

Result<FunnelReport> FunnelFromSeedRows(const std::vector<SeedFunnelRow>& rows,
                                        const std::vector<std::string>& segment_by,
                                        const std::string& origin, const std::string& source) {
  for (size_t i = 0; i < segment_by.size(); ++i) {
    const std::string& s = segment_by[i];
    if (s != "region" && s != "tier" && s != "year") {
      return Status::InvalidArgument("segments[" + std::to_string(i) + "]: '" + s +
                                     "' is not in the seed file (region, tier or year)");
    }
  }
  // Steps by order; each order must keep one name.
  std::map<int32_t, std::string> names;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SeedFunnelRow& r = rows[i];
    const std::string where = origin + ":" + std::to_string(i + 2);
    if (r.step_order < 1) return Status::InvalidArgument(where + ": step_order must be >= 1");
    if (r.count < 0) return Status::InvalidArgument(where + ": count must be >= 0");
    auto [it, fresh] = names.emplace(r.step_order, r.step);
    if (!fresh && it->second != r.step) {
      return Status::InvalidArgument(where + ": step '" + r.step + "' has step_order " +
                                     std::to_string(r.step_order) + ", which is also '" +
                                     it->second + "'");
    }
  }
  if (names.size() < 2) {
    return Status::InvalidArgument(origin + ": a funnel needs at least 2 steps");
  }
  std::vector<int32_t> orders;
  FunnelReport report;
  for (const auto& [order, name] : names) {
    orders.push_back(order);
    report.steps.push_back(name);
  }
  report.segment_by = segment_by;
  report.source = source;
  std::map<std::vector<std::string>, std::vector<int64_t>> groups;
  for (const SeedFunnelRow& r : rows) {
    std::vector<std::string> key;
    for (const std::string& s : segment_by) {
      if (s == "region") key.emplace_back(Name(r.region));
      if (s == "tier") key.emplace_back(Name(r.plan));
      if (s == "year") key.push_back(std::to_string(r.year));
    }
    auto& counts = groups[key];
    counts.resize(orders.size());
    const size_t at = std::lower_bound(orders.begin(), orders.end(), r.step_order) - orders.begin();
    counts[at] += r.count;
  }
  for (auto& [key, counts] : groups) {
    report.segments.push_back({key, FunnelSteps(report.steps, counts)});
  }
  return report;
}

std::string FunnelReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("steps");
  j.Strings(steps);
  j.Key("segment_by");
  j.Strings(segment_by);
  j.Key("segments");
  j.w.StartArray();
  for (const auto& seg : segments) {
    j.w.StartObject();
    j.Key("segment");
    j.w.StartObject();
    for (size_t i = 0; i < segment_by.size() && i < seg.keys.size(); ++i) {
      j.Key(segment_by[i]);
      j.String(seg.keys[i]);
    }
    j.w.EndObject();
    j.Key("steps");
    j.w.StartArray();
    for (const auto& s : seg.steps) {
      j.w.StartObject();
      j.Key("step");
      j.String(s.step);
      j.Key("count");
      j.w.Int64(s.count);
      j.Key("step_conversion");
      j.Number(s.step_conversion);
      j.Key("overall_conversion");
      j.Number(s.overall_conversion);
      j.Key("drop_off");
      j.w.Int64(s.drop_off);
      j.Key("drop_off_rate");
      j.Number(s.drop_off_rate);
      j.w.EndObject();
    }
    j.w.EndArray();
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("source");
  j.String(source);
  j.Key("cached");
  j.w.Bool(cached);
  j.w.EndObject();
  return j.Take();
}

std::string FunnelReport::ToCsv() const {
  CsvOut c;
  for (const auto& s : segment_by) c.Field(s);
  c.Header({"step", "step_order", "count", "step_conversion", "overall_conversion", "drop_off",
            "drop_off_rate"});
  for (const auto& seg : segments) {
    for (size_t i = 0; i < seg.steps.size(); ++i) {
      const FunnelStepResult& s = seg.steps[i];
      for (const auto& k : seg.keys) c.Field(k);
      c.Field(s.step);
      c.Field(std::to_string(i + 1));
      c.Field(std::to_string(s.count));
      c.Number(s.step_conversion);
      c.Number(s.overall_conversion);
      c.Field(std::to_string(s.drop_off));
      c.Number(s.drop_off_rate);
      c.EndRow();
    }
  }
  return c.Take();
}

}  // namespace tally
