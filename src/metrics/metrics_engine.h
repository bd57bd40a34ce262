#pragma once
// Runs semantic queries: compiles them (compiler.h) under the caller's security scope, executes
// them on the store between ingest commits, and caches results until the stored data changes.

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "ingest/pipeline.h"
#include "metrics/analyses.h"
#include "metrics/compiler.h"

namespace tally {

struct MetricsResult {
  std::vector<std::string> columns;  // "time" (if grouped by time), dimensions, measures
  std::vector<bool> numeric;         // per column: a number (measures, numeric dimensions)
  std::vector<std::vector<std::optional<std::string>>> rows;  // as text; time as ISO 8601 UTC
  std::string source;  // the rollup table or the event families read
  bool uses_rollup = false;
  bool cached = false;  // answered from the cache
  double millis = 0;    // time to answer, cache included

  //! {"columns": [...], "rows": [[...]], "source": ..., "cached": ...}; numbers stay numbers.
  std::string ToJson() const;
  //! CSV with a header row (RFC 4180 quoting).
  std::string ToCsv() const;
};

struct MetricsEngineOptions {
  size_t cache_entries = 4096;  // least recently used results are dropped beyond this
  //! A query not answered within this time (queued behind ingest, or running) is stopped and
  //! fails with DeadlineExceeded; 0 means no limit.
  std::chrono::milliseconds query_timeout{0};
};

class MetricsEngine {
 public:
  MetricsEngine(const MetricCatalogue& catalogue, IngestPipeline* pipeline,
                MetricsEngineOptions options = {});

  //! Whether Run may answer from the cache. kRefresh runs the SQL and caches the fresh answer
  //! (an HTTP client's `Cache-Control: no-cache`).
  enum class CachePolicy : uint8_t { kUse, kRefresh };

  //! Runs `query` as seen by `scope`. Errors name the query field at fault.
  Result<MetricsResult> Run(const SemanticQuery& query, const SecurityScope& scope,
                            const CompileOptions& options = {},
                            CachePolicy cache = CachePolicy::kUse);
  //! Runs a fixed analysis (analyses.h) as seen by `scope`, cached like Run.
  Result<MetricsResult> RunAnalysis(const Analysis& analysis, const SecurityScope& scope,
                                    CachePolicy cache = CachePolicy::kUse);

  //! `query` for one subscriber answered from the pipeline's in-memory SubscriberUsageIndex,
  //! without the store: the same rows Run gives with the subscriber's scope. nullopt when the
  //! index cannot answer it (no index; dimensions, filters or an order other than by time; a
  //! granularity under a day; a range not in whole days or older than the index; a measure
  //! whose catalogue rollup is not `sum(r.<column the index holds>)` [/ constant]). Thread-safe;
  //! runs on the caller's thread.
  std::optional<MetricsResult> FromSubscriberIndex(const SemanticQuery& query,
                                                   SubscriberId subscriber) const;

  //! The SQL and values `query` compiles to, without running it.
  Result<CompiledQuery> Explain(const SemanticQuery& query, const SecurityScope& scope,
                                const CompileOptions& options = {});

  const MetricCatalogue& catalogue() const { return catalogue_; }
  //! The newest event time committed to the store, if any.
  std::optional<Timestamp> Watermark() const { return pipeline_->watermark(); }
  int64_t cache_hits() const;
  int64_t cache_misses() const;

 private:
  struct Entry {
    std::string key;
    uint64_t version = 0;
    std::shared_ptr<const MetricsResult> result;
  };
  // Answers from the cache under `key`, or compiles, runs on the store and caches.
  Result<MetricsResult> Cached(const std::string& key, CachePolicy cache,
                               const std::function<Result<CompiledQuery>(StoreReader&)>& compile);
  Result<CompiledQuery> Compile(StoreReader& store, const SemanticQuery& query,
                                const SecurityScope& scope, const CompileOptions& options);

  const MetricCatalogue& catalogue_;
  IngestPipeline* pipeline_;
  MetricsEngineOptions options_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace tally
