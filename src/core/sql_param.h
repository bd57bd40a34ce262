#pragma once
// A value bound to a `?` placeholder of a SQL statement, never spliced into its text.

#include <cstdint>
#include <string>
#include <variant>

#include "core/time.h"

namespace tally {

using SqlParam = std::variant<int64_t, double, std::string, Timestamp, Date>;

}  // namespace tally
