#pragma once
// Reading the cells of a MetricsResult (text, NULL as an empty optional) as numbers and times.
// One place for the conversions every insight needs, so they agree.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/status.h"
#include "core/time.h"

namespace tally {

using ResultCell = std::optional<std::string>;

//! The number in a cell; empty for NULL, text that is not a number, and non-finite values.
inline std::optional<double> CellNumber(const ResultCell& v) {
  if (!v) return std::nullopt;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || !std::isfinite(x)) return std::nullopt;
  return x;
}
//! The number in a cell, 0 when there is none.
inline double CellDouble(const ResultCell& v) { return CellNumber(v).value_or(0.0); }
//! The number in a cell rounded to an integer (sums come back as DECIMAL or DOUBLE), 0 when none.
inline int64_t CellInt(const ResultCell& v) {
  return static_cast<int64_t>(std::llround(CellDouble(v)));
}

//! A SQL engine's "2024-06-01 00:00:00[.ffffff]" as ISO 8601 UTC ("2024-06-01T00:00:00Z");
//! other text unchanged.
inline std::string IsoTimeText(std::string text) {
  if (text.size() >= 19 && text[10] == ' ') {
    text[10] = 'T';
    text += 'Z';
  }
  return text;
}

//! A time cell (engine text or ISO 8601) as a Timestamp.
inline Result<Timestamp> CellTime(const ResultCell& v) {
  return ParseTimestamp(IsoTimeText(v.value_or("")));
}

}  // namespace tally
