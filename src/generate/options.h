#pragma once
// What `tally generate` is asked to make. Defaults are the demo world.

#include <cstdint>
#include <string>

#include "core/time.h"

namespace tally {

enum class OutputFormat { kCsv, kNdjson, kParquet };

//! Parameters of a synthetic operator. Same options and seed: same bytes.
struct GeneratorOptions {
  std::string out_dir;
  int64_t subscribers = 5000;     // base at the start date (the funnel adds more)
  int32_t days = 182;
  Date start = Date{DaysFromCivil(2024, 7, 1)};
  uint64_t seed = 42;
  OutputFormat format = OutputFormat::kCsv;
  double dirty = 0;               // fraction of rows that get a dirty companion row
  int32_t partners = 5;           // MVNO/reseller brands besides the operator's own (partner 0)
  double visitors_per_subscriber = 0.05;  // funnel visitors per day, per base subscriber
  int64_t visitors_per_day = 0;   // overrides the ratio when > 0
  int32_t price_change_days = 61; // a plan's regional price changes this often
  int64_t chunk_subscribers = 250'000;  // subscribers per output part file
  int threads = 0;                // 0: one per core
  bool quiet = false;

  Date end() const { return Date{start.days + days}; }  // exclusive
  int64_t VisitorsPerDay() const {
    if (visitors_per_day > 0) return visitors_per_day;
    int64_t v = static_cast<int64_t>(static_cast<double>(subscribers) * visitors_per_subscriber);
    return v < 50 ? 50 : v;
  }
};

}  // namespace tally
