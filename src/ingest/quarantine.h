#pragma once
// The quarantine: every rejected row, with its load, line, field, check, reason and raw text,
// appended as NDJSON to DIR/quarantine/<YYYY-MM-DD>/<load_id>.ndjson (the day it was received).
// Raw text that is not valid UTF-8 is kept byte for byte as "raw_base64" instead of "raw".

#include <string>
#include <vector>

#include "core/status.h"
#include "ingest/batch_decoder.h"

namespace tally {

//! Writes quarantine files under one data directory. Stateless and thread-safe.
class Quarantine {
 public:
  explicit Quarantine(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  //! Appends `rejects` to the load's file and syncs it; returns the file's path relative to the
  //! data directory ("" when there is nothing to write).
  Result<std::string> Write(const std::string& load_id, const std::string& source, const std::string& table,
                            const std::vector<RejectedRow>& rejects) const;

 private:
  std::string data_dir_;
};

}  // namespace tally
