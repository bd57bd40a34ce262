#pragma once
// Reading a whole CSV file of one record type, all or nothing (for reference files such as
// plans.csv and partners.csv, which are imported whole or not at all).

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ingest/batch_decoder.h"

namespace tally {

// The rows of a CSV file with a header, as `tally generate` writes them. All or nothing: the
// first bad line fails the whole file, so an import never half happens.
template <typename Rec>
Result<std::vector<Rec>> ReadCsvFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string body = text.str();
  BatchDecoder<Rec> decoder;
  DecodedBatch<Rec> batch;
  TALLY_RETURN_IF_ERROR(decoder.Decode(BodyFormat::kCsv, body, {}, &batch).WithContext(path));
  if (!batch.rejects.empty()) {
    const RejectedRow& bad = batch.rejects.front();
    std::string more;
    if (batch.rejects.size() > 1) {
      more = " (and " + std::to_string(batch.rejects.size() - 1) + " more bad lines)";
    }
    return Status::InvalidArgument(path + ":" + std::to_string(bad.line) + ": " + bad.reason +
                                   more + "; nothing imported");
  }
  return std::move(batch.rows);
}

}  // namespace tally
