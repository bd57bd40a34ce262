#pragma once
// What `tally serve` exposes at GET /metrics in the Prometheus text format (docs/operations.md):
//   tally_http_requests_total{method,route,code}          requests answered
//   tally_http_request_duration_seconds{method,route}     latency histogram per route
//   tally_http_auth_failures_total                         refused credentials (401)
//   tally_http_rate_limited_total                          requests answered 429
//   tally_uptime_seconds                                   since the server started
// plus gauges that other parts set when the page is rendered (cache hits, ingest counters).
// Built on prometheus-cpp's core library; the page is served by tally's own HTTP server.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tally {

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  //! One answered request. `route` is the route pattern ("/v1/subscribers/{id}/usage") or
  //! "unmatched", so label values stay few whatever paths clients send. Thread-safe.
  void Observe(std::string_view method, std::string_view route, int status, double seconds);
  void CountAuthFailure();
  void CountRateLimited();

  //! A gauge `name` (with `help`) whose value `read` returns each time the page is rendered.
  //! Call before the server starts.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> read);

  //! The exposition page (text format 0.0.4).
  std::string Render();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
