#pragma once
// The front door of `tally serve`: every request passes through ApiGateway, which
//   1. finds the route (404, or 405 with Allow, when there is none);
//   2. authenticates the caller: an API key or an embed token, as `Authorization: Bearer ...`,
//      `X-Api-Key: ...` or, for GET only, `?access_token=...` (401 with WWW-Authenticate);
//   3. checks the route's roles (403), and that an embed token only reads;
//   4. takes a token from the caller's rate-limit bucket (429 with Retry-After);
//   5. runs the route's handler as the caller's Principal;
//   6. writes an audit line, an access-log line and the Prometheus counters.
// Public routes (/healthz, /readyz, /metrics, /openapi.json) skip steps 2 to 4. docs/security.md
// and docs/api.md describe the policy; ApiRoutes() is the table it is read from.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "api/http_server.h"

namespace tally {

class AccessLog;
class AuditLog;
class EmbedTokens;
class KeyStore;
class RateLimiter;
class ServerMetrics;

//! A set of roles, one bit per Role.
using RoleSet = uint8_t;
constexpr RoleSet RoleBit(Role r) {
  return static_cast<RoleSet>(1u << static_cast<unsigned>(r));
}
constexpr RoleSet kAllRoles = RoleBit(Role::kAdmin) | RoleBit(Role::kAnalyst) |
                              RoleBit(Role::kAgent) | RoleBit(Role::kPartner) |
                              RoleBit(Role::kSubscriber);

//! One route of the API and who may call it.
struct ApiRoute {
  std::string_view method;   // "GET" (which also answers HEAD) or "POST"
  std::string_view pattern;  // "/v1/subscribers/{id}/usage": {name} matches one path segment
  RoleSet roles = 0;         // 0: public, no credential needed
  // The dashboards (pages) that read it: an embed token that opens one of them, or "*", may
  // call it. 0: no embed token may (writes, and routes no embeddable page needs).
  DashboardSet embed = 0;
  std::string_view summary;  // one line, as in the OpenAPI document
};

//! Every route `tally serve` answers, in matching order. The OpenAPI document lists the same
//! routes (a test checks both ways).
const std::vector<ApiRoute>& ApiRoutes();

//! The route `method` and `path` resolve to; nullptr when none does. `path_known` is set when
//! some route has the path with another method (a 405 rather than a 404).
const ApiRoute* MatchRoute(std::string_view method, std::string_view path, bool* path_known);

//! The credential a request carries, if any: the Bearer token, X-Api-Key, or (GET/HEAD only)
//! the access_token query parameter.
std::string_view CredentialOf(const HttpRequest& request);

//! Runs one authorised request: the principal is null on public routes. Returns nullopt when
//! the route has no handler after all (answered 404).
using RouteHandler =
    std::function<std::optional<HttpResponse>(const HttpRequest&, const Principal*)>;

class ApiGateway {
 public:
  struct Options {
    //! false runs every request as an admin without a credential: local development only.
    bool require_auth = true;
    //! Failed authentications per client address before 429 (a bucket per address).
    double auth_failures_per_second = 5;
    double auth_failure_burst = 20;
    //! The wall clock tokens are checked against; replaced in tests.
    std::function<Timestamp()> now = [] { return WallClock(); };
  };

  //! None of the pointers is owned. `tokens`, `audit`, `access` and `metrics` may be null (no
  //! embed tokens, no audit, no access log, no counters); `keys` and `limiter` may be null only
  //! when auth is off.
  struct Parts {
    KeyStore* keys = nullptr;
    const EmbedTokens* tokens = nullptr;
    RateLimiter* limiter = nullptr;
    AuditLog* audit = nullptr;
    AccessLog* access = nullptr;
    ServerMetrics* metrics = nullptr;
  };

  ApiGateway(Parts parts, Options options, RouteHandler handler);
  ~ApiGateway();
  ApiGateway(const ApiGateway&) = delete;
  ApiGateway& operator=(const ApiGateway&) = delete;

  //! Answers one request (any thread).
  HttpResponse Handle(const HttpRequest& request);

 private:
  struct Caller;
  Result<Caller> Authenticate(const HttpRequest& request);

  Parts parts_;
  Options options_;
  RouteHandler handler_;
  std::unique_ptr<RateLimiter> failures_;  // per client address, for failed authentications
};

//! What the audit log records as a request's "query": the GET parameters (access_token
//! removed), or a JSON body of up to 2 KiB, or the body's size and type.
std::string AuditSummary(const HttpRequest& request);

}  // namespace tally
