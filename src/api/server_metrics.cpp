#include "api/server_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <vector>

namespace tally {

namespace {

// From 0.25 ms to 10 s: the per-subscriber SLA is in milliseconds, slow analytical queries in
// seconds.
const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

}  // namespace

struct ServerMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("tally_http_requests_total")
          .Help("HTTP requests answered, by method, route and status code")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& durations =
      prometheus::BuildHistogram()
          .Name("tally_http_request_duration_seconds")
          .Help("Time from a complete request to its response, by method and route")
          .Register(*registry);
  prometheus::Counter& auth_failures = prometheus::BuildCounter()
                                           .Name("tally_http_auth_failures_total")
                                           .Help("Requests refused for a missing or bad credential")
                                           .Register(*registry)
                                           .Add({});
  prometheus::Counter& rate_limited = prometheus::BuildCounter()
                                          .Name("tally_http_rate_limited_total")
                                          .Help("Requests answered 429 by a rate limit")
                                          .Register(*registry)
                                          .Add({});
  prometheus::Gauge& uptime = prometheus::BuildGauge()
                                  .Name("tally_uptime_seconds")
                                  .Help("Seconds since the server started")
                                  .Register(*registry)
                                  .Add({});
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  struct Series {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
  };
  // (method, route, status) -> its series; looked up under a shared lock, so the hot path does not
  // take prometheus-cpp's family mutex.
  std::shared_mutex mu;
  std::map<std::string, Series, std::less<>> series;
  std::vector<std::pair<prometheus::Gauge*, std::function<double()>>> gauges;
};

ServerMetrics::ServerMetrics() : impl_(std::make_unique<Impl>()) {}
ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::Observe(std::string_view method, std::string_view route, int status,
                            double seconds) {
  std::string key;
  key.reserve(method.size() + route.size() + 8);
  key.append(method).append(" ").append(route).append(" ").append(std::to_string(status));
  Impl::Series s{};
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->series.find(key);
    if (it != impl_->series.end()) s = it->second;
  }
  if (s.count == nullptr) {
    std::unique_lock lock(impl_->mu);
    auto it = impl_->series.find(key);
    if (it == impl_->series.end()) {
      const prometheus::Labels labels = {{"method", std::string(method)},
                                         {"route", std::string(route)}};
      prometheus::Labels with_code = labels;
      with_code.emplace("code", std::to_string(status));
      it = impl_->series
               .emplace(key, Impl::Series{&impl_->requests.Add(with_code),
                                          &impl_->durations.Add(labels, Buckets())})
               .first;
    }
    s = it->second;
  }
  s.count->Increment();
  s.latency->Observe(seconds);
}

void ServerMetrics::CountAuthFailure() {
  impl_->auth_failures.Increment();
}
void ServerMetrics::CountRateLimited() {
  impl_->rate_limited.Increment();
}

void ServerMetrics::AddGauge(const std::string& name, const std::string& help,
                             std::function<double()> read) {
  auto& gauge = prometheus::BuildGauge().Name(name).Help(help).Register(*impl_->registry).Add({});
  std::unique_lock lock(impl_->mu);
  impl_->gauges.emplace_back(&gauge, std::move(read));
}

std::string ServerMetrics::Render() {
  impl_->uptime.Set(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - impl_->started).count());
  {
    std::shared_lock lock(impl_->mu);
    for (auto& [gauge, read] : impl_->gauges) gauge->Set(read());
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry->Collect());
  return out.str();
}

}  // namespace tally
