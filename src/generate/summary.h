#pragma once
// A readable summary of a generated world, computed by querying its files with DuckDB.

#include <string>

#include "core/status.h"

namespace tally {

//! Returns a multi-line text summary of the world in `dir` (the output of `tally generate`).
Result<std::string> SummarizeWorld(const std::string& dir);

}  // namespace tally
