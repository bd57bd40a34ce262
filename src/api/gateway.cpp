#include "api/gateway.h"

#include <algorithm>
#include <cmath>

#include "api/access_log.h"
#include "api/audit_log.h"
#include "api/embed_token.h"
#include "api/key_store.h"
#include "api/rate_limiter.h"
#include "api/responses.h"
#include "api/server_metrics.h"

namespace tally {

namespace {

constexpr RoleSet kInternal =
    RoleBit(Role::kAdmin) | RoleBit(Role::kAnalyst) | RoleBit(Role::kAgent);
constexpr RoleSet kAdmin = RoleBit(Role::kAdmin);
constexpr RoleSet kCare = RoleBit(Role::kAdmin) | RoleBit(Role::kAgent);
constexpr RoleSet kTenantWrite = kCare | RoleBit(Role::kPartner);

// Which pages read which routes (web/src/views/*.ts), for the embed-token check.
constexpr DashboardSet Pages(std::initializer_list<Dashboard> pages) {
  DashboardSet s = 0;
  for (Dashboard d : pages) s |= DashboardBit(d);
  return s;
}
using D = Dashboard;
constexpr DashboardSet kEveryPage =
    Pages({D::kOverview, D::kRealtime, D::kFunnel, D::kPricing, D::kAbtest, D::kMl, D::kGeo,
           D::kSubscriber, D::kPartner, D::kAgent});
// Pages that chart semantic queries (and so may also use GraphQL, which answers the same).
constexpr DashboardSet kQueryPages =
    Pages({D::kOverview, D::kRealtime, D::kFunnel, D::kPricing, D::kAbtest, D::kGeo, D::kPartner});
// Pages that show one subscriber.
constexpr DashboardSet kSubscriberPages = Pages({D::kSubscriber, D::kAgent, D::kPartner, D::kMl});
constexpr DashboardSet kNoEmbed = 0;

// True when `path` has the segments of `pattern`, where a `{name}` segment matches any
// non-empty one. "/a/b/" has three segments, the last one empty, so it does not match "/a/b".
bool PathMatches(std::string_view pattern, std::string_view path) {
  if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
  size_t i = 1, j = 1;
  for (;;) {
    const size_t pi = std::min(pattern.find('/', i), pattern.size());
    const size_t pj = std::min(path.find('/', j), path.size());
    const std::string_view want = pattern.substr(i, pi - i), got = path.substr(j, pj - j);
    if (want.starts_with('{') ? got.empty() : want != got) return false;
    const bool pattern_done = pi == pattern.size(), path_done = pj == path.size();
    if (pattern_done || path_done) return pattern_done && path_done;
    i = pi + 1;
    j = pj + 1;
  }
}

std::string_view Trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsRead(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

HttpResponse Unauthorized(std::string_view message, bool invalid_token) {
  HttpResponse r = JsonError(401, message);
  r.headers.emplace_back("WWW-Authenticate", invalid_token
                                                 ? "Bearer realm=\"tally\", error=\"invalid_token\""
                                                 : "Bearer realm=\"tally\"");
  return r;
}

std::string DashboardList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

HttpResponse TooMany(const RateLimiter::Decision& d, std::string_view what) {
  HttpResponse r =
      JsonError(429, std::string(what) + ": retry in " + std::to_string(d.retry_after_s) + " s");
  r.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
  return r;
}

}  // namespace

const std::vector<ApiRoute>& ApiRoutes() {
  static const std::vector<ApiRoute> kRoutes = {
      {"GET", "/healthz", 0, kNoEmbed, "Liveness: the process answers"},
      {"GET", "/readyz", 0, kNoEmbed, "Readiness: the store and the ledger answer"},
      {"GET", "/metrics", 0, kNoEmbed, "Prometheus metrics"},
      {"GET", "/openapi.json", 0, kNoEmbed, "This API as an OpenAPI 3 document"},
      {"GET", "/", 0, kNoEmbed, "The dashboards (web/): the page that loads them"},
      {"GET", "/ui/{file}", 0, kNoEmbed, "The dashboards' script, styles and map data"},
      {"GET", "/embed.js", 0, kNoEmbed,
       "One-line embedding: a script that adds a dashboard iframe"},
      {"POST", "/v1/ingest/{family}", kAdmin, kNoEmbed, "Ingest NDJSON or CSV events"},
      {"GET", "/v1/loads", kInternal, kNoEmbed, "Data-quality reports of recent loads"},
      {"GET", "/v1/partitions", kInternal, kNoEmbed, "Stored day partitions per family"},
      {"GET", "/v1/me", kAllRoles, kEveryPage, "Who the credential is: role, scope, dashboards"},
      {"GET", "/v1/metrics", kAllRoles, kEveryPage, "The metric catalogue"},
      {"GET", "/v1/query", kAllRoles, kQueryPages, "Run a semantic query given in ?q="},
      {"POST", "/v1/query", kAllRoles, kQueryPages, "Run a semantic query given in the body"},
      {"GET", "/v1/live", kInternal | RoleBit(Role::kPartner), Pages({D::kRealtime, D::kPartner}),
       "Live aggregates as server-sent events"},
      {"GET", "/v1/subscribers", kInternal | RoleBit(Role::kPartner), Pages({D::kAgent}),
       "Search subscribers by id, MSISDN or name"},
      {"POST", "/v1/subscribers", kTenantWrite, kNoEmbed, "Activate a subscriber account"},
      {"GET", "/v1/subscribers/{id}", kAllRoles, kSubscriberPages,
       "A subscriber's profile, masked by role"},
      {"GET", "/v1/subscribers/{id}/usage", kAllRoles, kSubscriberPages,
       "A subscriber's usage series"},
      {"GET", "/v1/subscribers/{id}/summary", kAllRoles, kSubscriberPages,
       "A subscriber's usage totals"},
      {"GET", "/v1/subscribers/{id}/activity", kAllRoles, Pages({D::kAgent}),
       "Recent sessions (live ones marked), dropped calls, complaints and recharges"},
      {"GET", "/v1/subscribers/{id}/balance", kAllRoles, kSubscriberPages,
       "Balance, cycle and bundles"},
      {"GET", "/v1/subscribers/{id}/invoices", kAllRoles, kSubscriberPages, "Postpaid invoices"},
      {"POST", "/v1/subscribers/{id}/plan", kTenantWrite | RoleBit(Role::kSubscriber), kNoEmbed,
       "Change plan, prorated"},
      {"POST", "/v1/subscribers/{id}/status", kTenantWrite, kNoEmbed,
       "Suspend, resume or deactivate"},
      {"POST", "/v1/recharges", kTenantWrite | RoleBit(Role::kSubscriber), kNoEmbed,
       "Credit a prepaid balance (idempotent)"},
      {"POST", "/v1/recharges/{id}/refund", kCare, kNoEmbed, "Refund a recharge"},
      {"POST", "/v1/recharges/{id}/reversal", kCare, kNoEmbed, "Reverse a recharge (chargeback)"},
      {"GET", "/v1/insights/kpis", kInternal | RoleBit(Role::kPartner),
       Pages({D::kOverview, D::kPartner}),
       "Monthly KPIs with colour-coded status, by plan, tier, region or partner"},
      {"GET", "/v1/insights/funnel", kInternal | RoleBit(Role::kPartner),
       Pages({D::kFunnel, D::kPartner}),
       "Cohort funnel: counts, step and overall conversion, drop-off"},
      {"GET", "/v1/insights/pricing", kInternal | RoleBit(Role::kPartner),
       Pages({D::kPricing, D::kPartner}),
       "Price elasticities with intervals, ARPU by tier, plan spread"},
      {"GET", "/v1/insights/experiments", kInternal | RoleBit(Role::kPartner),
       Pages({D::kAbtest, D::kPartner}), "Experiments with exposures"},
      {"GET", "/v1/insights/experiments/{key}", kInternal | RoleBit(Role::kPartner),
       Pages({D::kAbtest, D::kPartner}), "One experiment's A/B report"},
      {"GET", "/v1/insights/anomalies", kInternal | RoleBit(Role::kPartner),
       Pages({D::kOverview, D::kPartner, D::kAgent}),
       "Unusual charges (bill shock) with their cause"},
      {"GET", "/v1/insights/plans", kInternal | RoleBit(Role::kPartner),
       Pages({D::kPricing, D::kPartner}),
       "Plan recommendations: cheaper plans, bigger bundles, upsells, switches ahead of growth"},
      {"GET", "/v1/insights/geo", kInternal | RoleBit(Role::kPartner),
       Pages({D::kGeo, D::kPartner}), "Measures by region and city with coordinates, for maps"},
      {"GET", "/v1/insights/power", kInternal | RoleBit(Role::kPartner), Pages({D::kAbtest}),
       "Sample size and power for an A/B test"},
      {"GET", "/v1/subscribers/{id}/anomalies", kAllRoles, kSubscriberPages,
       "A subscriber's unusual charges with their cause"},
      {"GET", "/v1/subscribers/{id}/plan-advice", kAllRoles, kSubscriberPages,
       "A subscriber's last billing cycles priced under every plan, and the plan advice"},
      {"GET", "/v1/insights/models", RoleBit(Role::kAdmin) | RoleBit(Role::kAnalyst), kNoEmbed,
       "Churn and LTV model versions, their holdout metrics and which is active"},
      {"GET", "/v1/insights/models/{model}/importance",
       RoleBit(Role::kAdmin) | RoleBit(Role::kAnalyst), kNoEmbed,
       "Global importance (mean |SHAP|) of a model's active version"},
      {"GET", "/v1/insights/models/{model}/scores",
       RoleBit(Role::kAdmin) | RoleBit(Role::kAnalyst), kNoEmbed,
       "The active version's highest (or lowest) predictions, per subscriber"},
      {"GET", "/v1/subscribers/{id}/churn", kAllRoles, kSubscriberPages,
       "A subscriber's churn probability and LTV with SHAP contributions"},
      {"GET", "/graphql", kAllRoles, kQueryPages,
       "GraphQL query in ?query= (or the schema with ?sdl)"},
      {"POST", "/graphql", kAllRoles, kQueryPages, "GraphQL query in a JSON body"},
  };
  return kRoutes;
}

const ApiRoute* MatchRoute(std::string_view method, std::string_view path, bool* path_known) {
  if (path_known) *path_known = false;
  const std::string_view want = method == "HEAD" ? std::string_view("GET") : method;
  for (const ApiRoute& r : ApiRoutes()) {
    if (!PathMatches(r.pattern, path)) continue;
    if (r.method == want) return &r;
    if (path_known) *path_known = true;
  }
  return nullptr;
}

std::string_view CredentialOf(const HttpRequest& request) {
  auto auth = request.headers.find("authorization");
  if (auth != request.headers.end()) {
    std::string_view v = Trimmed(auth->second);
    constexpr std::string_view kBearer = "bearer ";
    if (v.size() > kBearer.size()) {
      bool bearer = true;
      for (size_t i = 0; i < kBearer.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(v[i])) != kBearer[i]) bearer = false;
      }
      if (bearer) return Trimmed(v.substr(kBearer.size()));
    }
    return {};  // another scheme (Basic, ...): no credential we accept
  }
  auto key = request.headers.find("x-api-key");
  if (key != request.headers.end()) return Trimmed(key->second);
  if (IsRead(request.method)) {
    auto token = request.query.find("access_token");
    if (token != request.query.end()) return token->second;
  }
  return {};
}

std::string AuditSummary(const HttpRequest& request) {
  if (IsRead(request.method)) {
    std::string out;
    for (const auto& [name, value] : request.query) {
      if (name == "access_token") continue;
      if (!out.empty()) out += '&';
      out += name;
      out += '=';
      out += value.substr(0, 2048);
    }
    return out;
  }
  const std::string type = request.Header("content-type");
  if (type.starts_with("application/json") && request.body.size() <= 2048) return request.body;
  return std::to_string(request.body.size()) + " bytes" + (type.empty() ? "" : " of " + type);
}

struct ApiGateway::Caller {
  Principal principal;
  bool via_token = false;
};

ApiGateway::ApiGateway(Parts parts, Options options, RouteHandler handler)
    : parts_(parts), options_(std::move(options)), handler_(std::move(handler)) {
  RateLimiter::Options o;
  o.rate_per_second = options_.auth_failures_per_second;
  o.burst = options_.auth_failure_burst;
  auto limiter = RateLimiter::Create(o);
  if (limiter.ok()) failures_ = std::move(*limiter);
}

ApiGateway::~ApiGateway() = default;

Result<ApiGateway::Caller> ApiGateway::Authenticate(const HttpRequest& request) {
  Caller c;
  if (!options_.require_auth) {
    c.principal.role = Role::kAdmin;
    c.principal.key_id = "anonymous";
    return c;
  }
  const std::string_view credential = CredentialOf(request);
  if (credential.empty()) {
    return Status::NotFound(
        "authentication required: send an API key or an embed token as "
        "'Authorization: Bearer ...'");
  }
  if (credential.starts_with("tly_")) {
    if (parts_.keys == nullptr) return Status::InvalidArgument("API keys are not enabled");
    TALLY_ASSIGN_OR_RETURN(c.principal, parts_.keys->Verify(credential));
    return c;
  }
  if (parts_.tokens == nullptr) return Status::InvalidArgument("embed tokens are not enabled");
  auto claims = parts_.tokens->Verify(credential, options_.now());
  if (!claims.ok()) return claims.status().WithContext("embed token");
  c.principal = claims->ToPrincipal();
  c.via_token = true;
  return c;
}

HttpResponse ApiGateway::Handle(const HttpRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const Timestamp arrived = options_.now();
  bool path_known = false;
  const ApiRoute* route = MatchRoute(request.method, request.path, &path_known);
  std::optional<Caller> caller;
  HttpResponse response;

  if (route == nullptr) {
    if (path_known) {
      std::string allow;
      for (const ApiRoute& r : ApiRoutes()) {
        if (!PathMatches(r.pattern, request.path)) continue;
        if (!allow.empty()) allow += ", ";
        allow += r.method;
        if (r.method == "GET") allow += ", HEAD";
      }
      response = JsonError(405, request.method + " is not allowed on " + request.path);
      response.headers.emplace_back("Allow", allow);
    } else {
      response = JsonError(404, "no route for " + request.method + " " + request.path);
    }
  } else if (route->roles == 0) {
    auto r = handler_(request, nullptr);
    response = r ? std::move(*r) : JsonError(404, "no route for " + request.path);
  } else if (auto auth = Authenticate(request); !auth.ok()) {
    if (parts_.metrics) parts_.metrics->CountAuthFailure();
    RateLimiter::Decision d;
    if (failures_) {
      d = failures_->Take("addr:" + request.remote_address, std::chrono::steady_clock::now());
    }
    if (!d.allowed) {
      if (parts_.metrics) parts_.metrics->CountRateLimited();
      response = TooMany(d, "too many failed authentications from " + request.remote_address);
    } else {
      const bool missing = auth.status().code() == Status::Code::kNotFound;
      response = Unauthorized(auth.status().message(), !missing);
    }
  } else {
    caller = std::move(*auth);
    const Principal& p = caller->principal;
    RateLimiter::Decision d;
    if (!(route->roles & RoleBit(p.role))) {
      response = JsonError(403, "role " + std::string(Name(p.role)) + " may not call " +
                                    std::string(route->method) + " " + std::string(route->pattern));
    } else if (caller->via_token && !route->embed) {
      response = JsonError(403, "an embed token may not call " + std::string(route->method) + " " +
                                    std::string(route->pattern) + "; use an API key");
    } else if (caller->via_token && !p.OpensAny(route->embed)) {
      response = JsonError(403, "this embed token opens no dashboard that reads " +
                                    std::string(route->method) + " " + std::string(route->pattern) +
                                    " (it opens " + DashboardList(p.dashboards) + ")");
    } else if (parts_.limiter && !(d = parts_.limiter->Take(
                                       caller->via_token ? "scope:" + p.Scope() : "key:" + p.key_id,
                                       std::chrono::steady_clock::now()))
                                      .allowed) {
      if (parts_.metrics) parts_.metrics->CountRateLimited();
      response = TooMany(d, "rate limit of " + (caller->via_token ? p.Scope() : "key " + p.key_id));
    } else {
      // Handlers never see the credential: an access_token parameter is taken out of the query
      // (so that no handler mistakes it for one of its own parameters, or echoes it).
      std::optional<HttpRequest> without_token;
      if (request.query.count("access_token")) {
        without_token = request;
        without_token->query.erase("access_token");
      }
      auto r = handler_(without_token ? *without_token : request, &p);
      response = r ? std::move(*r) : JsonError(404, "no route for " + request.path);
      if (parts_.limiter)
        response.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
    }
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double millis = std::round(seconds * 1e6) / 1e3;  // logs keep whole microseconds
  const std::string_view route_name = route ? route->pattern : std::string_view("unmatched");
  if (parts_.metrics) parts_.metrics->Observe(request.method, route_name, response.status, seconds);
  if (parts_.audit && route && route->roles != 0) {
    AuditEntry e;
    e.time = arrived;
    if (caller) {
      (caller->via_token ? e.token_id : e.key_id) = caller->principal.key_id;
      e.role = caller->principal.role;
      e.scope = caller->principal.Scope();
    }
    e.method = request.method;
    e.route = request.path;
    e.query = AuditSummary(request);
    e.status = response.status;
    for (const auto& [name, value] : response.headers) {
      if (name == "X-Tally-Rows") e.rows = std::strtoll(value.c_str(), nullptr, 10);
    }
    e.duration_ms = millis;
    parts_.audit->Record(e);
  }
  if (parts_.access) {
    AccessEntry e;
    e.time = arrived;
    e.remote = request.remote_address;
    e.method = request.method;
    e.path = request.path;
    e.route = std::string(route_name);
    e.status = response.status;
    e.bytes = response.body.size();
    e.duration_ms = millis;
    if (caller) {
      e.key_id = caller->principal.key_id;
      e.role = std::string(Name(caller->principal.role));
    }
    e.user_agent = request.Header("user-agent");
    parts_.access->Record(e);
  }
  return response;
}

}  // namespace tally
