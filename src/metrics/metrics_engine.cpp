#include "metrics/metrics_engine.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "metrics/result_cells.h"

namespace tally {

namespace {

// A canonical text of everything that decides a query's answer, for the cache.
std::string QueryKey(const SemanticQuery& q, const SecurityScope& scope,
                     const CompileOptions& options) {
  std::string k;
  auto add = [&](std::string_view s) {
    k += std::to_string(s.size());
    k += ':';
    k += s;
  };
  k += "m";
  for (const auto& m : q.measures) add(m);
  k += "d";
  for (const auto& d : q.dimensions) add(d);
  k += "g" + std::to_string(q.granularity ? static_cast<int>(*q.granularity) : -1);
  k += "t" + std::to_string(q.from.micros) + "," + std::to_string(q.to.micros);
  for (const auto& f : q.filters) {
    k += "f";
    add(f.member);
    k += std::to_string(static_cast<int>(f.op));
    for (const auto& v : f.values) add(v);
  }
  for (const auto& o : q.order) {
    k += "o";
    add(o.member);
    k += o.descending ? "d" : "a";
  }
  k += "l" + std::to_string(q.limit);
  k += "p" + (scope.partner ? std::to_string(*scope.partner) : std::string("-"));
  k += "s" + (scope.subscriber ? std::to_string(*scope.subscriber) : std::string("-"));
  k += options.force_raw ? "r" : "";
  return k;
}


}  // namespace

std::string MetricsResult::ToJson() const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("columns");
  w.StartArray();
  for (const auto& c : columns) w.String(c.c_str());
  w.EndArray();
  w.Key("rows");
  w.StartArray();
  for (const auto& row : rows) {
    w.StartArray();
    for (size_t i = 0; i < row.size(); ++i) {
      if (!row[i]) {
        w.Null();
        continue;
      }
      const std::string& v = *row[i];
      if (numeric[i]) {
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (end == v.c_str() + v.size() && std::isfinite(x)) {
          w.RawValue(v.c_str(), v.size(), rapidjson::kNumberType);
          continue;
        }
        if (!std::isfinite(x)) {
          w.Null();  // NaN or infinity has no JSON form
          continue;
        }
      }
      w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.EndArray();
  }
  w.EndArray();
  w.Key("source");
  w.String(source.c_str());
  w.Key("cached");
  w.Bool(cached);
  w.Key("ms");
  w.Double(std::round(millis * 1000) / 1000);
  w.EndObject();
  return sb.GetString();
}

std::string MetricsResult::ToCsv() const {
  std::string out;
  auto field = [&](const std::string& v) {
    if (v.find_first_of(",\"\r\n") == std::string::npos) {
      out += v;
      return;
    }
    out += '"';
    for (char c : v) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  };
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ',';
    field(columns[i]);
  }
  out += "\r\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) out += ',';
      if (row[i]) field(*row[i]);
    }
    out += "\r\n";
  }
  return out;
}

MetricsEngine::MetricsEngine(const MetricCatalogue& catalogue, IngestPipeline* pipeline,
                             MetricsEngineOptions options)
    : catalogue_(catalogue), pipeline_(pipeline), options_(options) {}

Result<CompiledQuery> MetricsEngine::Compile(StoreReader& store, const SemanticQuery& query,
                                             const SecurityScope& scope,
                                             const CompileOptions& options) {
  RelationFn relation = [&store](EventFamily f, TimeRange r) { return store.Relation(f, r); };
  return CompileQuery(catalogue_, query, scope, relation, *DialectFor(store), options);
}

Result<CompiledQuery> MetricsEngine::Explain(const SemanticQuery& query, const SecurityScope& scope,
                                             const CompileOptions& options) {
  Result<CompiledQuery> out = Status::Internal("not run");
  TALLY_RETURN_IF_ERROR(pipeline_->RunRead([&](StoreReader& store) -> Status {
    out = Compile(store, query, scope, options);
    return Status::Ok();
  }));
  return out;
}

Result<MetricsResult> MetricsEngine::Run(const SemanticQuery& query, const SecurityScope& scope,
                                         const CompileOptions& options, CachePolicy cache) {
  return Cached(QueryKey(query, scope, options), cache, [&](StoreReader& store) {
    return Compile(store, query, scope, options);
  });
}

Result<MetricsResult> MetricsEngine::RunAnalysis(const Analysis& analysis,
                                                 const SecurityScope& scope, CachePolicy cache) {
  std::string key = "A" + std::to_string(analysis.key.size()) + ":" + analysis.key;
  key += "p" + (scope.partner ? std::to_string(*scope.partner) : std::string("-"));
  key += "s" + (scope.subscriber ? std::to_string(*scope.subscriber) : std::string("-"));
  return Cached(key, cache, [&](StoreReader& store) {
    RelationFn relation = [&store](EventFamily f, TimeRange r) { return store.Relation(f, r); };
    return analysis.compile(relation, *DialectFor(store), scope);
  });
}

Result<MetricsResult> MetricsEngine::Cached(
    const std::string& key, CachePolicy cache,
    const std::function<Result<CompiledQuery>(StoreReader&)>& compile) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const uint64_t version = pipeline_->data_version();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      if (it->second->version == version && cache == CachePolicy::kUse) {
        lru_.splice(lru_.begin(), lru_, it->second);
        ++hits_;
        MetricsResult out = *it->second->result;
        out.cached = true;
        out.millis = elapsed();
        return out;
      }
      lru_.erase(it->second);  // stale (the data changed since), or to be refreshed
      index_.erase(it);
    }
    ++misses_;
  }
  MetricsResult result;
  auto run = [&](StoreReader& store) -> Status {
    TALLY_ASSIGN_OR_RETURN(CompiledQuery compiled, compile(store));
    TALLY_ASSIGN_OR_RETURN(TextTable table, store.Query(compiled.sql, compiled.params));
    result.columns = compiled.columns;
    result.source = compiled.source;
    result.uses_rollup = compiled.uses_rollup;
    result.rows = std::move(table.rows);
    return Status::Ok();
  };
  if (options_.query_timeout.count() > 0) {
    Status st = pipeline_->RunRead(run, t0 + options_.query_timeout);
    if (st.code() == Status::Code::kDeadlineExceeded) return st.WithContext("query timed out");
    TALLY_RETURN_IF_ERROR(st);
  } else {
    TALLY_RETURN_IF_ERROR(pipeline_->RunRead(run));
  }
  for (const std::string& c : result.columns) {
    const DimensionDef* d = catalogue_.FindDimension(c);
    result.numeric.push_back(c != "time" && (!d || d->numeric));
  }
  if (!result.columns.empty() && result.columns[0] == "time") {
    for (auto& row : result.rows) {
      if (row[0]) *row[0] = IsoTimeText(std::move(*row[0]));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!index_.count(key)) {
      lru_.push_front({key, version, std::make_shared<const MetricsResult>(result)});
      index_[key] = lru_.begin();
      while (lru_.size() > options_.cache_entries) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
      }
    }
  }
  result.millis = elapsed();
  return result;
}

namespace {

// The index's columns, by rollup column name.
std::optional<int64_t SubscriberDayUsage::*> IndexColumn(std::string_view col) {
  if (col == "voice_seconds") return &SubscriberDayUsage::voice_seconds;
  if (col == "data_bytes") return &SubscriberDayUsage::data_bytes;
  if (col == "recharge_minor") return &SubscriberDayUsage::recharge_minor;
  if (col == "charge_minor") return &SubscriberDayUsage::charge_minor;
  return std::nullopt;
}
std::optional<int32_t SubscriberDayUsage::*> IndexCount(std::string_view col) {
  if (col == "usage_events") return &SubscriberDayUsage::usage_events;
  if (col == "sms") return &SubscriberDayUsage::sms;
  if (col == "roaming_usage") return &SubscriberDayUsage::roaming_usage;
  if (col == "recharges") return &SubscriberDayUsage::recharges;
  return std::nullopt;
}

// A measure the index can compute: sum(column), divided by `divisor` when it has one.
struct IndexMeasure {
  std::string column;
  std::optional<double> divisor;
};

// Reads "sum(r.<col>)" or "sum(r.<col>) / <number>".
std::optional<IndexMeasure> ParseIndexMeasure(std::string_view rollup) {
  constexpr std::string_view kSum = "sum(r.";
  if (!rollup.starts_with(kSum)) return std::nullopt;
  const size_t close = rollup.find(')');
  if (close == std::string_view::npos) return std::nullopt;
  IndexMeasure m;
  m.column = std::string(rollup.substr(kSum.size(), close - kSum.size()));
  std::string_view rest = rollup.substr(close + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return m;
  if (rest.front() != '/') return std::nullopt;
  rest.remove_prefix(1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (ec != std::errc() || p != rest.data() + rest.size() || v == 0) return std::nullopt;
  m.divisor = v;
  return m;
}

// A double as DuckDB prints one: the shortest text that reads back the same, with ".0" on a
// whole number.
std::string DoubleText(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, ec == std::errc() ? p : buf);
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";
  return s;
}

// The first day of the bucket `day` falls in.
int32_t BucketStart(int32_t day, Granularity g) {
  switch (g) {
    case Granularity::kWeek:
      return day - (((day + 3) % 7) + 7) % 7;  // 1970-01-01 was a Thursday; weeks start Monday
    case Granularity::kMonth: {
      const CivilDate c = CivilFromDays(day);
      return DaysFromCivil(c.year, static_cast<unsigned>(c.month), 1);
    }
    case Granularity::kYear:
      return DaysFromCivil(CivilFromDays(day).year, 1, 1);
    default:
      return day;
  }
}

}  // namespace

std::optional<MetricsResult> MetricsEngine::FromSubscriberIndex(const SemanticQuery& query,
                                                                SubscriberId subscriber) const {
  const auto t0 = std::chrono::steady_clock::now();
  const SubscriberUsageIndex* index = pipeline_ ? pipeline_->subscriber_index() : nullptr;
  if (index == nullptr || !query.dimensions.empty() || !query.filters.empty()) return std::nullopt;
  if (query.granularity && *query.granularity != Granularity::kDay &&
      *query.granularity != Granularity::kWeek && *query.granularity != Granularity::kMonth &&
      *query.granularity != Granularity::kYear) {
    return std::nullopt;
  }
  for (const QueryOrder& o : query.order) {
    if (o.member != "time" || o.descending) return std::nullopt;
  }
  if (query.from.micros % kMicrosPerDay != 0 || query.to.micros % kMicrosPerDay != 0 ||
      query.to.micros <= query.from.micros) {
    return std::nullopt;
  }
  const Date from = query.from.date(), last = Date{query.to.date().days - 1};
  if (from.days < index->first_day().days) return std::nullopt;
  std::vector<IndexMeasure> measures;
  for (const std::string& name : query.measures) {
    const MeasureDef* def = catalogue_.FindMeasure(name);
    if (def == nullptr || def->rollup.empty()) return std::nullopt;
    if (!def->rollup_tables.empty() &&
        std::find(def->rollup_tables.begin(), def->rollup_tables.end(),
                  RollupTable::kSubscriberDay) == def->rollup_tables.end()) {
      return std::nullopt;
    }
    auto m = ParseIndexMeasure(def->rollup);
    if (!m || (!IndexColumn(m->column) && !IndexCount(m->column))) return std::nullopt;
    measures.push_back(*m);
  }
  // Sum the days into buckets (one bucket without a granularity).
  std::vector<std::pair<int32_t, std::vector<int64_t>>> buckets;
  for (const SubscriberDayUsage& d : index->Days(subscriber, from, last)) {
    const int32_t start = query.granularity ? BucketStart(d.day, *query.granularity) : 0;
    if (buckets.empty() || buckets.back().first != start) {
      buckets.emplace_back(start, std::vector<int64_t>(measures.size(), 0));
    }
    for (size_t i = 0; i < measures.size(); ++i) {
      if (auto col = IndexColumn(measures[i].column)) {
        buckets.back().second[i] += d.*(*col);
      } else {
        buckets.back().second[i] += d.*(*IndexCount(measures[i].column));
      }
    }
  }
  MetricsResult r;
  r.source = "memory:subscriber_day";
  r.uses_rollup = true;
  if (query.granularity) {
    r.columns.push_back("time");
    r.numeric.push_back(false);
  } else if (buckets.empty()) {
    buckets.emplace_back(0, std::vector<int64_t>(measures.size(), 0));  // totals of nothing: 0
  }
  for (const std::string& name : query.measures) {
    r.columns.push_back(name);
    r.numeric.push_back(true);
  }
  for (const auto& [start, sums] : buckets) {
    // Groups whose measures are all zero are dropped, as the compiled SQL drops them.
    if (query.granularity &&
        std::all_of(sums.begin(), sums.end(), [](int64_t v) { return v == 0; })) {
      continue;
    }
    if (static_cast<int64_t>(r.rows.size()) >= query.limit) break;
    std::vector<std::optional<std::string>> row;
    if (query.granularity) row.emplace_back(FormatTimestamp(StartOfDay(Date{start})));
    for (size_t i = 0; i < measures.size(); ++i) {
      row.emplace_back(measures[i].divisor
                           ? DoubleText(static_cast<double>(sums[i]) / *measures[i].divisor)
                           : std::to_string(sums[i]));
    }
    r.rows.push_back(std::move(row));
  }
  r.millis =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

int64_t MetricsEngine::cache_hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

int64_t MetricsEngine::cache_misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

}  // namespace tally
