#pragma once
// `tally generate`: writes a deterministic synthetic operator with its ground truth.
//
// Layout of the output directory:
//   manifest.json                 options, files and row counts
//   partners.*, plans.*, cities.*, towers.*     reference tables
//   subscribers/part-NNNNN.*      subscribers as of the end of the data
//   <family>/part-NNNNN.*         events, one folder per family; the funnel writes part-funnel
//   truth/...                     ground truth (always CSV)
//   seed/pricing_elasticity.csv, seed/funnel_data.csv    the dashboard seed's two files
//
// The world is split into chunks of subscribers that run in parallel; each chunk's bytes depend
// only on the options and seed, never on the number of threads.

#include <functional>
#include <string>
#include <string_view>

#include "generate/chunk_files.h"
#include "generate/options.h"

namespace tally {

//! What was generated, for the summary and the manifest.
struct GenerateReport {
  ChunkStats stats;
  int64_t base_subscribers = 0;
  int64_t acquired_subscribers = 0;
  int64_t visitors = 0;
  int64_t plan_versions = 0;
  int64_t towers = 0;
  double seconds = 0;
  int64_t total_events() const {
    int64_t n = 0;
    for (auto v : stats.family_rows) n += v;
    return n;
  }
};

//! Names a setting in error messages, e.g. "days" -> "--days" (the default) or
//! "generate.days (from env TALLY_GENERATE_DAYS)".
using OptionLabel = std::function<std::string(std::string_view setting)>;

//! Validates options; the error names the bad setting through `label` and gives its range.
Status ValidateOptions(const GeneratorOptions& o, const OptionLabel& label = {});

//! Generates the world into o.out_dir (created if missing; existing files are overwritten).
Result<GenerateReport> Generate(const GeneratorOptions& o);

}  // namespace tally
