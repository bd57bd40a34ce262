#pragma once
// The data-quality report of one load, in the spirit of dbt tests: not_null, unique,
// accepted_values, relationships (event -> subscriber) and a reconciliation of the counts
// (read = accepted + late + duplicate + rejected), plus checks for format, types, ranges, line
// length and encoding. `tally load` prints it, the HTTP endpoint returns it, and the store keeps it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/time.h"
#include "ingest/batch_decoder.h"
#include "ingest/ingest_request.h"
#include "store/event_store.h"

namespace tally {

//! One test of the report.
struct QualityCheck {
  std::string name;      // not_null, unique, accepted_values, relationships, reconciliation, ...
  std::string field;     // the column tested; empty for whole-row checks
  std::string status;    // pass, warn or fail
  int64_t failures = 0;  // rows that failed it
  std::string detail;
};

//! Counts, checks and sample rejections of one load.
struct QualityReport {
  std::string load_id;
  std::string source;
  std::string table;  // event family or reference table
  Timestamp started;
  Timestamp finished;
  IngestCounts counts;
  int64_t unknown_subscribers_flagged = 0;  // stored, but their subscriber is unknown
  std::map<std::pair<std::string, std::string>, int64_t> rejected_by;  // (check, field) -> rows
  std::vector<RejectedRow> samples;  // the first rejections, for the reader
  std::string quarantine_file;       // relative to the data directory; empty when nothing was rejected

  static constexpr size_t kMaxSamples = 20;

  void AddRejects(const std::vector<RejectedRow>& rejects);
  //! Adds another report's counts (for totals over many files).
  void Merge(const QualityReport& other);
  std::vector<QualityCheck> Checks() const;
  bool passed() const;
  std::string ToJson() const;
  //! Plain text for terminals.
  std::string ToText() const;
  LoadRecord ToRecord() const;
};

//! A new load id: time-ordered and unique within a data directory.
std::string NewLoadId();

}  // namespace tally
