#pragma once
// The hand-off between an ingest source (HTTP, Kafka, files) and the ingest pipeline.
//
// A source turns what it received into IngestRequests: one family, one body of NDJSON or CSV text
// (already gunzipped), and a label saying where it came from. The pipeline decodes, validates,
// dedups and appends the rows, and answers only once the accepted rows are durable. A source may
// acknowledge its own client (an HTTP 2xx, a Kafka offset commit) exactly when Ingest() returns an
// ok status, and must not before.

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/enums.h"

namespace tally {

//! How the body of a request is encoded.
enum class BodyFormat : uint8_t {
  kNdjson,  // one JSON object per line
  kCsv,     // RFC 4180 with a header line naming the columns
};

//! One batch of rows of one event family, as a source received it.
struct IngestRequest {
  EventFamily family = EventFamily::kUsage;
  BodyFormat format = BodyFormat::kNdjson;
  std::string body;    // the rows; a last line without a newline is still a row
  std::string source;  // where it came from, for reports: "http", "kafka:topic/2@1200", a file path
};

//! What became of the rows of a request. read = accepted + late + duplicate + rejected.
struct IngestCounts {
  int64_t read = 0;       // rows (lines) seen, header excluded
  int64_t accepted = 0;   // new rows inside the dedup window, now stored
  int64_t late = 0;       // new rows older than the dedup window, checked against storage and stored
  int64_t duplicate = 0;  // rows whose event id was stored before (or earlier in the same batch)
  int64_t rejected = 0;   // rows that failed decoding or validation, copied to quarantine

  IngestCounts& operator+=(const IngestCounts& o) {
    read += o.read;
    accepted += o.accepted;
    late += o.late;
    duplicate += o.duplicate;
    rejected += o.rejected;
    return *this;
  }
};

//! The answer to one IngestRequest.
struct IngestAck {
  Status status;        // ok: every accepted and late row is durable; otherwise nothing was stored
  IngestCounts counts;  // meaningful when status is ok
  std::string load_id;  // id of the stored data-quality report of this request
};

//! Where sources deliver their batches. Implementations are thread-safe: many sources may call
//! Ingest() at once, and each call blocks until its rows are durable (or have failed).
class IngestSink {
 public:
  virtual ~IngestSink() = default;
  virtual IngestAck Ingest(IngestRequest request) = 0;
};

}  // namespace tally
