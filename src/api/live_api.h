#pragma once
// The live stream of the real-time dashboard (docs/api.md), as server-sent events:
//   GET /v1/live?history=60&window=60
// Events:
//   history      at connect: the last `history` seconds (default 60, at most 900), per second
//   second       every second: the second that just ended
//   five_minute  at connect, then whenever stored data changed (checked every 5 s): the last
//                `window` minutes (default 60, at most 1440) up to the newest event, by 5-minute
//                bucket, from the metrics layer
//   end          the stream is over (the credential expired, or 15 minutes passed: EventSource
//                reconnects, and the credential is checked again)
// Per-second counters are sessions, errors, conversions, signups, usage_events,
// data_sessions, recharges, call_drops and ingest_rows (events accepted; internal roles only,
// null for a partner). A partner sees its own partner's counters only; the 5-minute query runs
// under its row-level security. Subscribers have no live stream.

#include <optional>

#include "api/auth.h"
#include "api/http_server.h"
#include "ingest/pipeline.h"
#include "metrics/metrics_engine.h"

namespace tally {

class LiveApi {
 public:
  LiveApi(MetricsEngine* engine, IngestPipeline* pipeline) : engine_(engine), pipeline_(pipeline) {}

  //! The stream for `request` made by `caller`, or nullopt when the path is not /v1/live.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

  static constexpr int64_t kMaxStreamSeconds = 15 * 60;

 private:
  MetricsEngine* engine_;
  IngestPipeline* pipeline_;
};

//! One per-second event's JSON, without the SSE framing.
std::string LiveSecondJson(const LiveSecond& s);

}  // namespace tally
