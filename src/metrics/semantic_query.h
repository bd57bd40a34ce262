#pragma once
// A semantic query: measures and dimensions by name (catalogue.h), filters, a time range, a time
// granularity, order and limit. Its JSON form follows Cube's REST query (docs/metrics.md):
//
//   {"measures": ["data_gb", "revenue"], "dimensions": ["region"],
//    "timeDimensions": [{"dimension": "time", "granularity": "day",
//                        "dateRange": ["2024-06-01", "2024-06-30"]}],
//    "filters": [{"member": "partner", "operator": "equals", "values": ["3"]}],
//    "order": {"revenue": "desc"}, "limit": 100}

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "metrics/catalogue.h"

namespace tally {

enum class FilterOp : uint8_t { kEquals, kNotEquals, kGt, kGte, kLt, kLte, kSet, kNotSet };
std::string_view Name(FilterOp op);

struct QueryFilter {
  std::string member;  // a dimension name
  FilterOp op = FilterOp::kEquals;
  std::vector<std::string> values;  // as given (numbers as their JSON text)
};

struct QueryOrder {
  std::string member;  // a measure, a dimension, or "time"
  bool descending = false;
};

inline constexpr int64_t kDefaultQueryLimit = 10'000;
inline constexpr int64_t kMaxQueryLimit = 100'000;
inline constexpr int64_t kMaxQueryDays = 800;

struct SemanticQuery {
  std::vector<std::string> measures;
  std::vector<std::string> dimensions;
  std::optional<Granularity> granularity;  // group by time; none: one row per group
  Timestamp from, to;                      // [from, to)
  std::vector<QueryFilter> filters;
  std::vector<QueryOrder> order;
  int64_t limit = kDefaultQueryLimit;
};

//! Parses the JSON form. Errors name the field ("filters[1].operator: ...").
//! dateRange takes dates (the end date included) or ISO timestamps (the end excluded).
Result<SemanticQuery> ParseSemanticQuery(std::string_view json);

}  // namespace tally
