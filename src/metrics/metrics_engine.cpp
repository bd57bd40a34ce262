#include "metrics/metrics_engine.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

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

// DuckDB's "2024-06-01 00:00:00" as "2024-06-01T00:00:00Z".
std::string IsoTime(const std::string& text) {
  if (text.size() < 19 || text[10] != ' ') return text;
  std::string out = text;
  out[10] = 'T';
  return out + "Z";
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

Result<CompiledQuery> MetricsEngine::Compile(EventStore& store, const SemanticQuery& query,
                                             const SecurityScope& scope,
                                             const CompileOptions& options) {
  RelationFn relation = [&store](EventFamily f, TimeRange r) { return store.Relation(f, r); };
  return CompileQuery(catalogue_, query, scope, relation, DuckDbDialect(), options);
}

Result<CompiledQuery> MetricsEngine::Explain(const SemanticQuery& query, const SecurityScope& scope,
                                             const CompileOptions& options) {
  Result<CompiledQuery> out = Status::Internal("not run");
  TALLY_RETURN_IF_ERROR(pipeline_->RunExclusive([&](EventStore& store) -> Status {
    out = Compile(store, query, scope, options);
    return Status::Ok();
  }));
  return out;
}

Result<MetricsResult> MetricsEngine::Run(const SemanticQuery& query, const SecurityScope& scope,
                                         const CompileOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const std::string key = QueryKey(query, scope, options);
  const uint64_t version = pipeline_->data_version();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      if (it->second->version == version) {
        lru_.splice(lru_.begin(), lru_, it->second);
        ++hits_;
        MetricsResult out = *it->second->result;
        out.cached = true;
        out.millis = elapsed();
        return out;
      }
      lru_.erase(it->second);  // stale: the data changed since
      index_.erase(it);
    }
    ++misses_;
  }
  MetricsResult result;
  auto run = [&](EventStore& store) -> Status {
    TALLY_ASSIGN_OR_RETURN(CompiledQuery compiled, Compile(store, query, scope, options));
    TALLY_ASSIGN_OR_RETURN(TextTable table, store.Query(compiled.sql, compiled.params));
    result.columns = compiled.columns;
    result.source = compiled.source;
    result.uses_rollup = compiled.uses_rollup;
    result.rows = std::move(table.rows);
    return Status::Ok();
  };
  if (options_.query_timeout.count() > 0) {
    Status st = pipeline_->RunExclusive(run, t0 + options_.query_timeout);
    if (st.code() == Status::Code::kDeadlineExceeded) return st.WithContext("query timed out");
    TALLY_RETURN_IF_ERROR(st);
  } else {
    TALLY_RETURN_IF_ERROR(pipeline_->RunExclusive(run));
  }
  for (const std::string& c : result.columns) {
    const DimensionDef* d = catalogue_.FindDimension(c);
    result.numeric.push_back(c != "time" && (!d || d->numeric));
  }
  if (!result.columns.empty() && result.columns[0] == "time") {
    for (auto& row : result.rows) {
      if (row[0]) *row[0] = IsoTime(*row[0]);
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

int64_t MetricsEngine::cache_hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

int64_t MetricsEngine::cache_misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

}  // namespace tally
