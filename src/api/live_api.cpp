#include "api/live_api.h"

#include <charconv>
#include <memory>

#include "api/responses.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"

namespace tally {

namespace {

constexpr std::pair<const char*, Measure> kSecondMeasures[] = {
    {"sessions", Measure::k_app_sessions},     {"errors", Measure::k_app_errors},
    {"conversions", Measure::k_conversions},   {"signups", Measure::k_signups},
    {"usage_events", Measure::k_usage_events}, {"data_sessions", Measure::k_data_sessions},
    {"recharges", Measure::k_recharges},       {"call_drops", Measure::k_call_drops},
};

std::string Event(std::string_view name, std::string_view data) {
  std::string out;
  out.reserve(data.size() + name.size() + 16);
  out.append("event: ").append(name).append("\ndata: ").append(data).append("\n\n");
  return out;
}

std::optional<int64_t> IntParam(const HttpRequest& r, const char* name, int64_t fallback,
                                int64_t lo, int64_t hi, std::string* error) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc() || p != it->second.data() + it->second.size() || v < lo || v > hi) {
    *error = "?" + std::string(name) + ": expected an integer in " + std::to_string(lo) + ".." +
             std::to_string(hi);
    return std::nullopt;
  }
  return v;
}

// What one open stream remembers between ticks.
struct StreamState {
  Principal caller;
  SecurityScope scope;               // the caller's, narrowed by ?partner=
  std::optional<PartnerId> partner;  // scope.partner, for the per-second counters
  int64_t next_second = 0;           // the next second to send
  int64_t window_minutes = 60;
  uint64_t data_version = 0;
  int64_t last_five_minute = 0;      // when it was last sent (Unix seconds)
  int64_t ends_at = 0;               // Unix seconds
  std::vector<QueryFilter> filters;  // ?plan=, ?region= on the 5-minute query
};

// The dashboards' plan and region filters: each one the request names becomes an equals filter
// of the 5-minute query (bound by the metrics layer like any query's values). The per-second
// counters are kept per partner only, so these do not reach them.
std::vector<QueryFilter> LiveFilters(const HttpRequest& r) {
  std::vector<QueryFilter> out;
  for (const char* member : {"plan", "region"}) {
    auto it = r.query.find(member);
    if (it == r.query.end() || it->second.empty()) continue;
    QueryFilter f;
    f.member = member;
    f.values = {it->second};
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string LiveSecondJson(const LiveSecond& s) {
  TextBuffer out(256);
  out.Put("{\"ts\":\"");
  out.PutTimestamp(Timestamp::FromSeconds(s.second));
  out.Put('"');
  for (const auto& [name, measure] : kSecondMeasures) {
    out.Put(",\"");
    out.Put(name);
    out.Put("\":");
    out.PutInt(s.m[measure]);
  }
  out.Put(",\"ingest_rows\":");
  if (s.rows < 0) {
    out.Put("null");
  } else {
    out.PutInt(s.rows);
  }
  out.Put('}');
  return std::string(out.view());
}

std::optional<HttpResponse> LiveApi::Handle(const HttpRequest& request, const Principal& caller) {
  if (request.path != "/v1/live") return std::nullopt;
  if (request.method != "GET" && request.method != "HEAD") return JsonError(405, "use GET");
  if (caller.role == Role::kSubscriber) {
    return JsonError(403, "the live stream is for internal roles and partners");
  }
  std::string error;
  const auto history = IntParam(request, "history", 60, 0, LiveFeed::kSeconds, &error);
  const auto window = history ? IntParam(request, "window", 60, 5, 1440, &error) : std::nullopt;
  if (!history || !window) return JsonError(400, error);

  auto p = request.query.find("partner");
  auto scope = NarrowToPartner(ScopeOf(caller), p == request.query.end() ? "" : p->second);
  if (!scope.ok()) return JsonError(400, scope.status().message());

  auto state = std::make_shared<StreamState>();
  state->caller = caller;
  state->scope = *scope;
  if (scope->partner) state->partner = PartnerId(*scope->partner);
  state->filters = LiveFilters(request);
  const int64_t now = WallClock().seconds();
  state->next_second = now;
  state->window_minutes = *window;
  state->ends_at = now + kMaxStreamSeconds;
  if (caller.expires != kNeverExpires) {
    state->ends_at = std::min(state->ends_at, caller.expires.seconds());
  }

  MetricsEngine* engine = engine_;
  IngestPipeline* pipeline = pipeline_;
  // The 5-minute aggregates: the last `window` minutes up to the newest stored event.
  auto five_minute = [engine, pipeline, state]() -> std::string {
    state->data_version = pipeline->data_version();
    state->last_five_minute = WallClock().seconds();
    const std::optional<Timestamp> newest = pipeline->watermark();
    SemanticQuery q;
    q.measures = {"sessions",     "app_errors", "conversions",
                  "usage_events", "call_drops", "recharges"};
    q.granularity = Granularity::kFiveMinutes;
    const int64_t end =
        newest ? newest->micros / kFiveMinutes * kFiveMinutes + kFiveMinutes : WallClock().micros;
    q.to = Timestamp{end};
    q.from = Timestamp{end - state->window_minutes * kMicrosPerMinute};
    q.filters = state->filters;
    auto r = engine->Run(q, state->scope);
    if (!r.ok()) return Event("error", "{\"error\":\"five-minute aggregates failed\"}");
    std::string json = r->ToJson();
    return Event("five_minute", json);
  };

  HttpResponse res;
  res.content_type = "text/event-stream; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Accel-Buffering", "no");
  res.body = "retry: 2000\n\n";
  std::string hist = "[";
  const auto seconds = pipeline_->live().Range(now - *history, now, state->partner);
  for (size_t i = 0; i < seconds.size(); ++i) {
    if (i) hist += ',';
    hist += LiveSecondJson(seconds[i]);
  }
  hist += ']';
  res.body += Event("history", hist);
  res.body += five_minute();
  res.stream_interval = std::chrono::milliseconds(1000);
  res.next = [state, pipeline, five_minute]() -> std::optional<std::string> {
    const int64_t now = WallClock().seconds();
    if (state->next_second < 0) return std::nullopt;  // "end" was sent
    if (now >= state->ends_at) {
      state->next_second = -1;
      return Event("end", now >= state->caller.expires.seconds()
                              ? "{\"reason\":\"the credential expired\"}"
                              : "{\"reason\":\"reconnect to continue\"}");
    }
    std::string out;
    for (const LiveSecond& s : pipeline->live().Range(state->next_second, now, state->partner)) {
      out += Event("second", LiveSecondJson(s));
    }
    state->next_second = std::max(state->next_second, now);
    if (pipeline->data_version() != state->data_version && now - state->last_five_minute >= 5) {
      out += five_minute();
    }
    if (out.empty()) out = ": keep-alive\n\n";
    return out;
  };
  return res;
}

}  // namespace tally
