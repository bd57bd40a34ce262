#pragma once
// The metric catalogue: named measures and dimensions (src/metrics/catalogue.toml, compiled in).
// A query names these; the compiler (compiler.h) turns them into SQL. Nothing else in tally
// writes analytic SQL.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/enums.h"

namespace tally {

//! The rollup tables a query can read instead of raw events (src/store/rollup.h).
//! The first three hold additive counters (aggregated with sum); kSubscriberMonth is the activity
//! rollup (a bitmap of active days per subscriber and month), read only by measures that name it.
enum class RollupTable : uint8_t { kSegmentDay, kSegment5m, kSubscriberDay, kSubscriberMonth };
inline constexpr int kRollupTableCount = 4;
std::string_view Name(RollupTable t);
//! The table's name in the store ("rollup_segment_day", ...).
std::string_view StoreTable(RollupTable t);

struct MeasureDef {
  std::string name, title, description, unit;
  //! An aggregate over rollup columns (r.<col>), valid on `rollup_tables`; empty: none.
  std::string rollup;
  std::vector<RollupTable> rollup_tables;
  //! (table, aggregate): on that rollup table this aggregate is used (and the measure exists
  //! there even when `rollup_tables` does not list it).
  std::vector<std::pair<RollupTable, std::string>> rollup_when;
  //! An aggregate over one family's raw columns (e.<col>); empty family: none.
  std::optional<EventFamily> family;
  std::string sql;
  //! A ratio of two other measures (numerator, denominator); then the above are empty.
  std::vector<std::string> ratio;

  bool is_ratio() const { return !ratio.empty(); }
  bool OnRollup(RollupTable t) const;
  //! The aggregate on rollup table `t` (OnRollup(t) must hold).
  const std::string& RollupOn(RollupTable t) const;
};

struct DimensionDef {
  std::string name, title;
  bool numeric = false;  // type = "number" (else "string")
  std::string rollup;    // expression on rollup rows; empty: not on rollups
  std::vector<RollupTable> rollup_tables;
  //! (table, expression): on that rollup table the expression is used (and the dimension exists
  //! there even when `rollup_tables` does not list it).
  std::vector<std::pair<RollupTable, std::string>> rollup_when;
  std::string raw;  // expression on raw events; empty: not on raw events
  //! (family, expression): on that family's events the expression replaces `raw` (the event's
  //! own plan or region where the rollups take it from the event).
  std::vector<std::pair<EventFamily, std::string>> raw_when;
  std::vector<EventFamily> families;  // raw families it exists on; empty: all

  bool OnRollup(RollupTable t) const;
  bool OnFamily(EventFamily f) const;
};

class MetricCatalogue {
 public:
  //! Parses and checks a catalogue; errors name the entry and the key.
  static Result<MetricCatalogue> Parse(std::string_view toml_text, std::string_view source);
  //! The catalogue compiled into the binary (parsed once).
  static const MetricCatalogue& Builtin();

  const MeasureDef* FindMeasure(std::string_view name) const;
  const DimensionDef* FindDimension(std::string_view name) const;
  const std::vector<MeasureDef>& measures() const { return measures_; }
  const std::vector<DimensionDef>& dimensions() const { return dimensions_; }

  //! The catalogue as JSON (names, titles, units, descriptions, where each can be answered).
  std::string ToJson() const;

 private:
  std::vector<MeasureDef> measures_;
  std::vector<DimensionDef> dimensions_;
  std::map<std::string, size_t, std::less<>> measure_index_, dimension_index_;
};

//! Time granularities of the `time` dimension, finest first.
enum class Granularity : uint8_t { kMinute, kFiveMinutes, kHour, kDay, kWeek, kMonth, kYear };
std::string_view Name(Granularity g);
std::optional<Granularity> GranularityNamed(std::string_view name);

}  // namespace tally
