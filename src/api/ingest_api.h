#pragma once
// The ingest endpoints of `tally serve`:
//   POST /v1/ingest/{family or table}   NDJSON (application/x-ndjson) or CSV (text/csv) body,
//                                       gzip accepted; 200 with the data-quality report once the
//                                       accepted rows are durable
//   GET  /v1/loads?limit=N              stored data-quality reports, newest first
//   GET  /v1/partitions                 day partitions per family
//   GET  /healthz                       liveness
// The API issue adds authentication in front of these; until then `tally serve` listens on
// 127.0.0.1 only.

#include <optional>

#include "api/http_server.h"
#include "ingest/pipeline.h"

namespace tally {

//! Routes ingest requests to the pipeline. Thread-safe (the pipeline is).
class IngestApi {
 public:
  explicit IngestApi(IngestPipeline* pipeline) : pipeline_(pipeline) {}

  //! The response for `request`, or nullopt when the path is not an ingest route.
  std::optional<HttpResponse> Handle(const HttpRequest& request);

  static constexpr size_t kMaxRejectsInResponse = 1000;

 private:
  HttpResponse Ingest(const HttpRequest& request, std::string_view name);
  HttpResponse Loads(const HttpRequest& request);
  HttpResponse Partitions();

  IngestPipeline* pipeline_;
};

}  // namespace tally
