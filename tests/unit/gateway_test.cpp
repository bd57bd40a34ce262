// The API gateway (api/gateway.h) with its real parts: a key store on disk, HS256 embed tokens,
// token-bucket rate limits and the audit log. The route handler behind it is a recorder, since
// what is under test here is who gets through and what is written down; the routes themselves
// are tested end to end in tenant_matrix_test.cpp.

#include "api/gateway.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "api/audit_log.h"
#include "api/embed_token.h"
#include "api/key_store.h"
#include "api/openapi.h"
#include "api/rate_limiter.h"
#include "api/server_metrics.h"
#include "world_fixture.h"

namespace tally {
namespace {

namespace fs = std::filesystem;

HttpRequest Req(std::string method, std::string path, std::string credential = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = path;
  r.remote_address = "127.0.0.9";
  if (!credential.empty()) r.headers["authorization"] = "Bearer " + credential;
  return r;
}

std::string HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(Routes, PatternsMatchWholeSegmentsAndHeadIsGet) {
  bool known = false;
  const ApiRoute* r = MatchRoute("GET", "/v1/subscribers/42/usage", &known);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->pattern, "/v1/subscribers/{id}/usage");
  EXPECT_EQ(MatchRoute("HEAD", "/v1/subscribers/42/usage", nullptr), r);
  EXPECT_EQ(MatchRoute("GET", "/v1/subscribers/42/usage/", &known), nullptr);
  EXPECT_FALSE(known);
  EXPECT_EQ(MatchRoute("GET", "/v1/subscribers//usage", &known), nullptr);
  EXPECT_EQ(MatchRoute("GET", "/v1/subscriberss", &known), nullptr);
  EXPECT_EQ(MatchRoute("DELETE", "/v1/query", &known), nullptr);
  EXPECT_TRUE(known);  // a 405, not a 404
  ASSERT_NE(MatchRoute("POST", "/v1/subscribers", nullptr), nullptr);
  EXPECT_EQ(MatchRoute("GET", "/v1/subscribers", nullptr)->summary,
            "Search subscribers by id, MSISDN or name");
}

TEST(Routes, CredentialsComeFromBearerApiKeyHeaderOrAGetsAccessToken) {
  HttpRequest r = Req("GET", "/v1/metrics");
  EXPECT_EQ(CredentialOf(r), "");
  r.headers["authorization"] = "bEaReR   tly_abc ";
  EXPECT_EQ(CredentialOf(r), "tly_abc");
  r.headers["authorization"] = "Basic dXNlcjpwYXNz";
  EXPECT_EQ(CredentialOf(r), "");  // another scheme is not a credential we take
  r.headers.erase("authorization");
  r.headers["x-api-key"] = "tly_xyz";
  EXPECT_EQ(CredentialOf(r), "tly_xyz");
  r.headers.erase("x-api-key");
  r.query["access_token"] = "eyJ...";
  EXPECT_EQ(CredentialOf(r), "eyJ...");
  r.method = "POST";  // a token in a URL is for EventSource and iframes: reads only
  EXPECT_EQ(CredentialOf(r), "");
}

TEST(Routes, TheAuditSummaryNeverHoldsTheAccessToken) {
  HttpRequest r = Req("GET", "/v1/subscribers/1/usage");
  r.query = {{"access_token", "secret.token.here"}, {"from", "2024-07-01"}};
  EXPECT_EQ(AuditSummary(r), "from=2024-07-01");
  HttpRequest post = Req("POST", "/v1/query");
  post.headers["content-type"] = "application/json";
  post.body = R"({"measures":["revenue"]})";
  EXPECT_EQ(AuditSummary(post), post.body);
  post.body = std::string(5000, ' ');
  EXPECT_EQ(AuditSummary(post), "5000 bytes of application/json");
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("gateway");
    keys_ = std::move(KeyStore::Open(dir_).value());
    tokens_.emplace(std::move(EmbedTokens::Create(std::string(40, 'k')).value()));
    RateLimiter::Options ro;
    ro.rate_per_second = 0.001;  // no refill within a test
    ro.burst = 3;
    limiter_ = std::move(RateLimiter::Create(ro).value());
    audit_ = std::move(AuditLog::Open(dir_).value());
    admin_ = keys_->Create({Role::kAdmin, std::nullopt, std::nullopt, "a"}, Now())->key;
    partner_ = keys_->Create({Role::kPartner, PartnerId(3), std::nullopt, "p"}, Now())->key;
    Make(true);
  }
  void TearDown() override {
    gateway_.reset();
    audit_.reset();
    fs::remove_all(dir_);
  }
  void Make(bool auth) {
    ApiGateway::Options o;
    o.require_auth = auth;
    o.auth_failure_burst = 4;
    o.auth_failures_per_second = 0.001;
    o.now = [this] { return now_; };
    gateway_ = std::make_unique<ApiGateway>(
        ApiGateway::Parts{keys_.get(), &*tokens_, limiter_.get(), audit_.get(), nullptr, &metrics_},
        o, [this](const HttpRequest& req, const Principal* who) -> std::optional<HttpResponse> {
          ++calls_;
          seen_ = who ? std::optional<Principal>(*who) : std::nullopt;
          seen_query_ = req.query;
          HttpResponse r;
          r.body = "{}";
          r.headers.emplace_back("X-Tally-Rows", "7");
          if (req.path == "/v1/partitions") return std::nullopt;  // a route with no handler
          return r;
        });
  }
  static Timestamp Now() { return Timestamp::FromSeconds(1'760'000'000); }
  std::string Token(int64_t lifetime_s, std::optional<SubscriberId> subscriber = std::nullopt) {
    EmbedClaims c;
    if (subscriber) {
      c.role = Role::kSubscriber;
      c.subscriber = subscriber;
      c.sub = "subscriber:" + std::to_string(subscriber->value());
    } else {
      c.role = Role::kPartner;
      c.partner = PartnerId(3);
      c.sub = "partner:3";
    }
    c.dashboards = dashboards_;
    c.iat = now_;
    c.exp = Timestamp::FromSeconds(now_.seconds() + lifetime_s);
    c.jti = "tok-1";
    return tokens_->Sign(c).value();
  }
  std::vector<std::string> AuditLines() {
    EXPECT_TRUE(audit_->Flush().ok());
    std::string text = testing::ReadFile(audit_->PathFor(now_.date()));
    std::vector<std::string> lines;
    for (size_t at = 0; at < text.size();) {
      const size_t nl = text.find('\n', at);
      lines.push_back(text.substr(at, nl - at));
      at = nl + 1;
    }
    return lines;
  }

  std::string dir_;
  std::unique_ptr<KeyStore> keys_;
  std::optional<EmbedTokens> tokens_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<AuditLog> audit_;
  ServerMetrics metrics_;
  std::unique_ptr<ApiGateway> gateway_;
  std::string admin_, partner_;
  std::vector<std::string> dashboards_ = {"subscriber"};  // the dashboards Token() opens
  Timestamp now_ = Now();
  int calls_ = 0;
  std::optional<Principal> seen_;
  std::map<std::string, std::string> seen_query_;
};

TEST_F(GatewayTest, PublicRoutesNeedNoCredentialAndUnknownOnesAre404Or405) {
  EXPECT_EQ(gateway_->Handle(Req("GET", "/healthz")).status, 200);
  EXPECT_EQ(calls_, 1);
  EXPECT_FALSE(seen_.has_value());
  EXPECT_EQ(gateway_->Handle(Req("GET", "/nope")).status, 404);
  HttpResponse r = gateway_->Handle(Req("PUT", "/v1/query", admin_));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, HEAD, POST");
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/partitions", admin_)).status, 404);
}

TEST_F(GatewayTest, MissingBadAndRevokedKeysAre401AndNeverReachTheHandler) {
  HttpResponse none = gateway_->Handle(Req("GET", "/v1/metrics"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(HeaderOf(none, "WWW-Authenticate"), "Bearer realm=\"tally\"");
  HttpResponse bad = gateway_->Handle(Req("GET", "/v1/metrics", admin_.substr(0, 20) + "x"));
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(HeaderOf(bad, "WWW-Authenticate").find("invalid_token"), std::string::npos);
  EXPECT_EQ(bad.body.find(admin_.substr(13)), std::string::npos) << "never echo a secret";
  ASSERT_TRUE(keys_->Revoke(partner_.substr(4, 8), Now()).ok());
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", partner_)).status, 401);
  EXPECT_EQ(calls_, 0);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", admin_)).status, 200);
  ASSERT_TRUE(seen_.has_value());
  EXPECT_EQ(seen_->role, Role::kAdmin);
}

TEST_F(GatewayTest, RolesAreCheckedPerRoute) {
  HttpResponse r = gateway_->Handle(Req("POST", "/v1/ingest/usage", partner_));
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("role partner may not call POST /v1/ingest/{family}"), std::string::npos);
  EXPECT_EQ(gateway_->Handle(Req("POST", "/v1/recharges/1/refund", partner_)).status, 403);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/loads", partner_)).status, 403);
  EXPECT_EQ(calls_, 0);
  EXPECT_EQ(gateway_->Handle(Req("POST", "/v1/recharges", partner_)).status, 200);
  ASSERT_TRUE(seen_.has_value());
  EXPECT_EQ(seen_->partner, PartnerId(3));
}

TEST_F(GatewayTest, EmbedTokensReadTheirScopeOnlyAndExpiredOrTamperedOnesAre401) {
  const std::string token = Token(600, SubscriberId(77));
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/subscribers/77/usage", token)).status, 200);
  ASSERT_TRUE(seen_.has_value());
  EXPECT_EQ(seen_->role, Role::kSubscriber);
  EXPECT_EQ(seen_->subscriber, SubscriberId(77));
  HttpResponse write = gateway_->Handle(Req("POST", "/v1/recharges", token));
  EXPECT_EQ(write.status, 403);
  EXPECT_NE(write.body.find("embed token"), std::string::npos);

  HttpRequest by_url = Req("GET", "/v1/subscribers/77/usage");
  by_url.query["access_token"] = token;
  by_url.query["from"] = "2024-07-01";
  EXPECT_EQ(gateway_->Handle(by_url).status, 200);
  // The handler gets the query without the credential.
  EXPECT_EQ(seen_query_, (std::map<std::string, std::string>{{"from", "2024-07-01"}}));

  std::string tampered = token;
  tampered[tampered.find('.') + 3] ^= 1;  // one bit of the claims
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", tampered)).status, 401);
  const std::string expired = Token(60);
  now_ = Timestamp::FromSeconds(now_.seconds() + 61);
  HttpResponse late = gateway_->Handle(Req("GET", "/v1/metrics", expired));
  EXPECT_EQ(late.status, 401);
  EXPECT_NE(late.body.find("expired"), std::string::npos) << late.body;
  auto other = EmbedTokens::Create(std::string(40, 'z')).value();
  EmbedClaims c;
  c.role = Role::kPartner;
  c.partner = PartnerId(3);
  c.sub = "partner:3";
  c.dashboards = {"*"};
  c.exp = Timestamp::FromSeconds(now_.seconds() + 60);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", other.Sign(c).value())).status, 401);
  EXPECT_EQ(calls_, 2);
}

TEST_F(GatewayTest, AnEmbedTokenReadsOnlyTheRoutesOfTheDashboardsItOpens) {
  // The Superset hole: a chart data API not limited to the token's dashboards.
  const std::string subscriber_page = Token(600, SubscriberId(77));
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/subscribers/77/usage", subscriber_page)).status, 200);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/me", subscriber_page)).status, 200);
  HttpResponse query = gateway_->Handle(Req("GET", "/v1/query", subscriber_page));
  EXPECT_EQ(query.status, 403);
  EXPECT_NE(query.body.find("opens no dashboard that reads GET /v1/query (it opens subscriber)"),
            std::string::npos)
      << query.body;
  EXPECT_EQ(gateway_->Handle(Req("POST", "/graphql", subscriber_page)).status, 403);

  dashboards_ = {"overview"};
  const std::string overview = Token(600);  // partner 3
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/insights/kpis", overview)).status, 200);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/query", overview)).status, 200);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/insights/funnel", overview)).status, 403);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/live", overview)).status, 403);

  dashboards_ = {"no-such-page"};  // a name that is no dashboard opens nothing
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", Token(600))).status, 403);
  dashboards_ = {"*"};
  const std::string every = Token(600);
  RateLimiter::Options ro;
  ro.burst = 1000;  // every route below gets its answer, not a 429
  limiter_ = std::move(RateLimiter::Create(ro).value());
  Make(true);
  for (const ApiRoute& r : ApiRoutes()) {
    if (!r.embed || r.pattern.find('{') != std::string_view::npos) continue;
    EXPECT_EQ(gateway_->Handle(Req(std::string(r.method), std::string(r.pattern), every)).status,
              200)
        << r.method << " " << r.pattern;
  }
}

TEST(GatewayRoutes, EmbedTokensOnlyReadAndOnlyTenantRoutesAreEmbeddable) {
  for (const ApiRoute& r : ApiRoutes()) {
    if (!r.embed) continue;
    // An embed token never writes: it reads, or POSTs a query (a read with a body).
    EXPECT_TRUE(r.method == "GET" || r.pattern == "/v1/query" || r.pattern == "/graphql")
        << r.method << " " << r.pattern;
    EXPECT_NE(r.roles, 0) << r.pattern << ": public routes need no token";
    EXPECT_TRUE(r.roles & (RoleBit(Role::kPartner) | RoleBit(Role::kSubscriber))) << r.pattern;
  }
}

TEST_F(GatewayTest, EachKeyHasItsOwnBucketAnd429CarriesRetryAfter) {
  for (int i = 0; i < 3; ++i) {
    HttpResponse ok = gateway_->Handle(Req("GET", "/v1/metrics", partner_));
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(HeaderOf(ok, "X-RateLimit-Remaining"), std::to_string(2 - i));
  }
  HttpResponse limited = gateway_->Handle(Req("GET", "/v1/metrics", partner_));
  EXPECT_EQ(limited.status, 429);
  EXPECT_GE(std::atoi(HeaderOf(limited, "Retry-After").c_str()), 1);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", admin_)).status, 200);
  // Tokens of one scope share a bucket, however many are minted.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", Token(100 + i))).status, 200);
  }
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", Token(200))).status, 429);
  EXPECT_NE(metrics_.Render().find("tally_http_rate_limited_total 2"), std::string::npos);
}

TEST_F(GatewayTest, RepeatedFailedAuthenticationsFromOneAddressAre429) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", "tly_guess")).status, 401);
  }
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", "tly_guess")).status, 429);
  EXPECT_EQ(gateway_->Handle(Req("GET", "/v1/metrics", admin_)).status, 200);
}

TEST_F(GatewayTest, TheAuditLogRecordsWhoAskedWhatAndTheAnswer) {
  gateway_->Handle(Req("GET", "/v1/metrics"));
  HttpRequest q = Req("POST", "/v1/query", partner_);
  q.headers["content-type"] = "application/json";
  q.body = R"({"measures":["revenue"]})";
  gateway_->Handle(q);
  gateway_->Handle(Req("GET", "/v1/subscribers/77/usage", Token(600, SubscriberId(77))));
  gateway_->Handle(Req("GET", "/healthz"));  // public routes are not audited
  std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser parser;
  simdjson::dom::element anon = parser.parse(lines[0]);
  EXPECT_EQ(int64_t(anon["status"]), 401);
  EXPECT_TRUE(anon["role"].is_null());
  simdjson::dom::element partner = parser.parse(lines[1]);
  EXPECT_EQ(std::string_view(partner["key_id"]), partner_.substr(4, 8));
  EXPECT_EQ(std::string_view(partner["scope"]), "partner:3");
  EXPECT_EQ(std::string_view(partner["query"]), q.body);
  EXPECT_EQ(int64_t(partner["rows"]), 7);
  simdjson::dom::element token = parser.parse(lines[2]);
  EXPECT_EQ(std::string_view(token["token_id"]), "tok-1");
  EXPECT_TRUE(token["key_id"].is_null());
  EXPECT_EQ(std::string_view(token["route"]), "/v1/subscribers/77/usage");
}

TEST_F(GatewayTest, WithAuthOffEveryRequestIsAnAdmin) {
  Make(false);
  EXPECT_EQ(gateway_->Handle(Req("POST", "/v1/ingest/usage")).status, 200);
  ASSERT_TRUE(seen_.has_value());
  EXPECT_EQ(seen_->role, Role::kAdmin);
}

TEST_F(GatewayTest, PrometheusPageCountsRequestsPerRoute) {
  gateway_->Handle(Req("GET", "/v1/subscribers/1/usage", admin_));
  gateway_->Handle(Req("GET", "/v1/subscribers/2/usage", admin_));
  gateway_->Handle(Req("GET", "/secret-probe"));
  const std::string page = metrics_.Render();
  EXPECT_NE(
      page.find(
          R"(tally_http_requests_total{code="200",method="GET",route="/v1/subscribers/{id}/usage"} 2)"),
      std::string::npos)
      << page;
  EXPECT_NE(page.find(R"(route="unmatched")"), std::string::npos);
  EXPECT_EQ(page.find("secret-probe"), std::string::npos) << "paths never become label values";
  EXPECT_NE(page.find("tally_http_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(page.find("tally_uptime_seconds"), std::string::npos);
}

// The served OpenAPI document lists exactly the gateway's routes, and swagger-parser (from npm,
// installed by scripts/setup into tests/js) finds it valid.
TEST(OpenApi, TheDocumentIsValidAndListsExactlyTheRoutes) {
  simdjson::dom::parser parser;
  simdjson::padded_string text(OpenApiJson());
  simdjson::dom::element doc = parser.parse(text);
  std::set<std::string> documented, routed;
  for (auto [path, item] : simdjson::dom::object(doc["paths"])) {
    for (auto [method, op] : simdjson::dom::object(item)) {
      std::string m(method);
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(m + " " + std::string(path));
      const bool is_public = op["security"].error() == simdjson::SUCCESS;
      const ApiRoute* r = MatchRoute(m, std::string(path), nullptr);
      if (r != nullptr) {
        EXPECT_EQ(is_public, r->roles == 0) << m << " " << path << ": security differs";
      }
    }
  }
  for (const ApiRoute& r : ApiRoutes()) {
    routed.insert(std::string(r.method) + " " + std::string(r.pattern));
  }
  EXPECT_EQ(documented, routed);

  const std::string file = testing::TempDir("openapi") + ".json";
  {
    std::ofstream out(file);
    out << OpenApiJson();
  }
  testing::TallyRun run{};
  const std::string cmd =
      "node " TALLY_SOURCE_DIR "/tests/js/validate_openapi.mjs " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) run.out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 0) << run.out;
  EXPECT_NE(run.out.find("valid: tally API"), std::string::npos) << run.out;
  fs::remove(file);
}

}  // namespace
}  // namespace tally
