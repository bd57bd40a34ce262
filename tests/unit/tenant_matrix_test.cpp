// The cross-tenant matrix: `tally serve` on a generated world loaded through the ledger, called
// over HTTP by every role, with API keys and with embed tokens, on every route, for its own
// tenant and for another one. No answer may hold a row of another tenant: every subscriber or
// partner id anywhere in a JSON or CSV answer is checked against the caller's scope, every
// cross-tenant request must fail, every tenant-scoped aggregate must equal the admin's answer
// filtered to that tenant, and cross-tenant writes must change nothing. Expired, tampered,
// foreign and revoked credentials are refused on every route, CSV export included.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "api/gateway.h"
#include "serve_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kRange = R"("dateRange": ["2024-07-01", "2024-07-14"])";

// Who is calling, and what it may see.
struct Caller {
  std::string name;  // for failure messages
  std::string credential;
  Role role = Role::kAdmin;
  std::optional<int64_t> partner;     // partner scope
  std::optional<int64_t> subscriber;  // subscriber scope
  bool token = false;                 // an embed token (reads only)
};

class TenantMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("matrix_world"));
    data_ = new std::string(TempDir("matrix_data"));
    TallyRun gen = RunTally("generate --out " + *world_ +
                            " --subscribers 160 --days 14 --partners 3 --seed 11 --quiet");
    ASSERT_EQ(gen.code, 0) << gen.out;
    TallyRun load = RunTally("load --data " + *data_ + " " + *world_ + " --ledger --quiet");
    ASSERT_EQ(load.code, 0) << load.out;
    // No clock leeway, so a 1 s token expires within the test; failed authentications are
    // many here, so their per-address limit (tested in gateway_test.cpp) is raised.
    server_ = new Server(*data_, FreePort(),
                         {"TALLY_SERVE_EMBED_LEEWAY_S=0", "TALLY_SERVE_AUTH_FAILURE_BURST=1000"});
    server_->Start();
    admin_ = new HttpClient("127.0.0.1", server_->port(), 30s);
    server_->Authorize(*admin_);

    // Which partner each subscriber belongs to, as the admin sees it.
    simdjson::dom::parser parser;
    const std::string q =
        std::string(
            R"({"measures": ["usage_events"], "dimensions": ["subscriber", "partner"], "timeDimensions": [{"dimension": "time", )") +
        kRange + "}]}";
    auto r = admin_->Post("/v1/query", q, "application/json");
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    partner_of_ = new std::map<int64_t, int64_t>();
    for (simdjson::dom::array row : simdjson::dom::array(parser.parse(r->body)["rows"])) {
      (*partner_of_)[int64_t(row.at(0))] = int64_t(row.at(1));
    }
    std::map<int64_t, std::vector<int64_t>> by_partner;
    for (auto [s, p] : *partner_of_) by_partner[p].push_back(s);
    ASSERT_GE(by_partner.size(), 2u);
    // Two partners with subscribers, and one subscriber of each that has a prepaid account.
    auto it = by_partner.begin();
    partner_a_ = it->first;
    partner_b_ = (++it)->first;
    sub_a_ = PrepaidOf(by_partner[partner_a_]);
    sub_b_ = PrepaidOf(by_partner[partner_b_]);
    ASSERT_GT(sub_a_, 0);
    ASSERT_GT(sub_b_, 0);
  }
  static void TearDownTestSuite() {
    delete admin_;
    delete server_;
    fs::remove_all(*world_);
    fs::remove_all(*data_);
    delete world_;
    delete data_;
    delete partner_of_;
  }

  static int64_t PrepaidOf(const std::vector<int64_t>& ids) {
    for (int64_t id : ids) {
      auto r = admin_->Get("/v1/subscribers/" + std::to_string(id) + "/balance");
      if (r.ok() && r->status == 200 && r->body.find("\"prepaid\"") != std::string::npos &&
          r->body.find("\"active\"") != std::string::npos) {
        return id;
      }
    }
    return 0;
  }

  static std::string Token(const std::string& args, const std::string& ttl = "1h") {
    TallyRun run = RunTally("keys token --data " + *data_ + " " + args + " --ttl " + ttl +
                            " --dashboards '*' 2>/dev/null");
    EXPECT_EQ(run.code, 0) << run.out;
    return run.out.substr(0, run.out.find('\n'));
  }

  // The tenant callers: a partner and a subscriber, each by key and by embed token.
  static std::vector<Caller> Tenants() {
    const std::string pa = std::to_string(partner_a_), sa = std::to_string(sub_a_);
    return {
        {"partner key", CreateKey(*data_, "--role partner --partner " + pa), Role::kPartner,
         partner_a_, std::nullopt, false},
        {"partner token", Token("--role partner --partner " + pa), Role::kPartner, partner_a_,
         std::nullopt, true},
        {"subscriber key", CreateKey(*data_, "--role subscriber --subscriber " + sa),
         Role::kSubscriber, std::nullopt, sub_a_, false},
        {"subscriber token", Token("--role subscriber --subscriber " + sa), Role::kSubscriber,
         std::nullopt, sub_a_, true},
    };
  }

  static bool SubscriberInScope(const Caller& c, int64_t id) {
    if (c.subscriber) return id == *c.subscriber;
    if (c.partner) {
      auto it = partner_of_->find(id);
      // Subscribers without usage in the range are absent from the map; the ledger knows them.
      if (it == partner_of_->end()) return PartnerOfByLedger(id) == *c.partner;
      return it->second == *c.partner;
    }
    return true;
  }
  static int64_t PartnerOfByLedger(int64_t id) {
    auto r = admin_->Get("/v1/subscribers/" + std::to_string(id) + "/balance");
    if (!r.ok() || r->status != 200) return -1;
    simdjson::dom::parser p;
    return int64_t(p.parse(r->body)["partner_id"]);
  }
  static bool PartnerInScope(const Caller& c, int64_t partner) {
    if (c.partner) return partner == *c.partner;
    if (c.subscriber) return partner == partner_of_->at(*c.subscriber);
    return true;
  }

  // Every subscriber and partner id in a JSON answer, wherever it is: object members named
  // subscriber_id / partner_id, and the subscriber / partner columns of query results.
  static void CheckJson(const Caller& c, const std::string& what, const std::string& body) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
      ADD_FAILURE() << c.name << " " << what << ": not JSON: " << body.substr(0, 200);
      return;
    }
    Walk(c, what, doc);
    simdjson::dom::array columns, rows;
    if (doc["columns"].get(columns) == simdjson::SUCCESS &&
        doc["rows"].get(rows) == simdjson::SUCCESS) {
      size_t i = 0;
      for (std::string_view col : columns) {
        for (simdjson::dom::array row : rows) {
          simdjson::dom::element v = row.at(i);
          if (v.is_null()) continue;
          if (col == "subscriber") {
            EXPECT_TRUE(SubscriberInScope(c, int64_t(v))) << c.name << " " << what << ": " << v;
          } else if (col == "partner") {
            EXPECT_TRUE(PartnerInScope(c, int64_t(v))) << c.name << " " << what << ": " << v;
          }
        }
        ++i;
      }
    }
  }
  static void Walk(const Caller& c, const std::string& what, simdjson::dom::element e) {
    if (e.is_array()) {
      for (simdjson::dom::element x : simdjson::dom::array(e)) Walk(c, what, x);
    } else if (e.is_object()) {
      for (auto [key, value] : simdjson::dom::object(e)) {
        if (key == "subscriber_id" && value.is_int64()) {
          EXPECT_TRUE(SubscriberInScope(c, int64_t(value)))
              << c.name << " " << what << " holds subscriber " << value;
        } else if (key == "partner_id" && value.is_int64()) {
          EXPECT_TRUE(PartnerInScope(c, int64_t(value)))
              << c.name << " " << what << " holds partner " << value;
        }
        Walk(c, what, value);
      }
    }
  }
  static void CheckCsv(const Caller& c, const std::string& what, const std::string& body) {
    std::istringstream in(body);
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header;
    for (std::istringstream h(line); std::getline(h, line, ',');) header.push_back(line);
    while (std::getline(in, line)) {
      std::istringstream cells(line);
      std::string cell;
      for (size_t i = 0; std::getline(cells, cell, ','); ++i) {
        if (i >= header.size() || cell.empty()) continue;
        if (header[i] == "subscriber" || header[i] == "subscriber_id") {
          EXPECT_TRUE(SubscriberInScope(c, std::stoll(cell))) << c.name << " " << what;
        }
        if (header[i] == "partner" || header[i] == "partner_id") {
          EXPECT_TRUE(PartnerInScope(c, std::stoll(cell))) << c.name << " " << what;
        }
      }
    }
  }

  // Sends a request as `c` and checks whatever comes back for foreign rows.
  static HttpClientResponse Call(HttpClient& http, const Caller& c, const std::string& method,
                                 const std::string& target, const std::string& body = "",
                                 const std::string& idempotency_key = "") {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"}};
    if (!idempotency_key.empty()) headers.emplace_back("Idempotency-Key", idempotency_key);
    auto r = http.Request(method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    const std::string what = method + " " + target;
    if (r->headers["content-type"].starts_with("text/csv")) {
      CheckCsv(c, what, r->body);
    } else {
      CheckJson(c, what, r->body);
    }
    return *r;
  }

  static std::string Query(const std::string& measures, const std::string& dims,
                           const std::string& filters = "[]") {
    return R"({"measures": [)" + measures + R"(], "dimensions": [)" + dims + R"(], "filters": )" +
           filters + R"(, "timeDimensions": [{"dimension": "time", )" + kRange + "}]}";
  }
  static double Total(const HttpClientResponse& r) {
    simdjson::dom::parser p;
    simdjson::dom::array rows = p.parse(r.body)["rows"];
    double sum = 0;
    for (simdjson::dom::array row : rows) {
      simdjson::dom::element v = row.at(0);
      if (!v.is_null()) sum += double(v);
    }
    return sum;
  }

  static std::string* world_;
  static std::string* data_;
  static Server* server_;
  static HttpClient* admin_;
  static std::map<int64_t, int64_t>* partner_of_;
  static int64_t partner_a_, partner_b_, sub_a_, sub_b_;
};

std::string* TenantMatrixTest::world_ = nullptr;
std::string* TenantMatrixTest::data_ = nullptr;
Server* TenantMatrixTest::server_ = nullptr;
HttpClient* TenantMatrixTest::admin_ = nullptr;
std::map<int64_t, int64_t>* TenantMatrixTest::partner_of_ = nullptr;
int64_t TenantMatrixTest::partner_a_ = 0, TenantMatrixTest::partner_b_ = 0,
        TenantMatrixTest::sub_a_ = 0, TenantMatrixTest::sub_b_ = 0;

TEST_F(TenantMatrixTest, NoTenantEverSeesAnotherTenantsRowsOnAnyRoute) {
  const std::string own = std::to_string(sub_a_), other = std::to_string(sub_b_);
  const std::string other_partner = std::to_string(partner_b_);
  auto before = admin_->Get("/v1/subscribers/" + other + "/balance");
  ASSERT_TRUE(before.ok() && before->status == 200);
  int n = 0;
  for (const Caller& c : Tenants()) {
    SCOPED_TRACE(c.name);
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, c.credential);
    const bool partner = c.role == Role::kPartner;

    // Reads of the caller's own tenant answer; the same reads of another tenant are 404s.
    for (const std::string sub :
         {"", "/usage", "/summary", "/balance", "/invoices", "/usage?format=csv",
          "/summary?format=csv", "/anomalies", "/anomalies?format=csv", "/plan-advice",
          "/plan-advice?format=csv", "/activity", "/activity?hours=744&limit=100"}) {
      EXPECT_EQ(Call(http, c, "GET", "/v1/subscribers/" + own + sub).status, 200) << sub;
      EXPECT_EQ(Call(http, c, "GET", "/v1/subscribers/" + other + sub).status, 404) << sub;
    }
    // Semantic queries, grouped by tenant ids, in JSON and CSV, by GET and POST.
    const std::string by_ids = Query(R"("usage_events", "revenue")", R"("subscriber", "partner")");
    EXPECT_EQ(Call(http, c, "POST", "/v1/query", by_ids).status, 200);
    EXPECT_EQ(Call(http, c, "POST", "/v1/query?format=csv", by_ids).status, 200);
    EXPECT_EQ(Call(http, c, "GET", "/v1/query?q=" + UrlEncode(by_ids)).status, 200);
    EXPECT_EQ(Call(http, c, "GET", "/v1/metrics").status, 200);
    // A filter naming another tenant finds nothing, rather than that tenant's rows.
    auto foreign = Call(http, c, "POST", "/v1/query",
                        Query(R"("revenue")", R"("partner")",
                              R"([{"member": "partner", "operator": "equals", "values": [")" +
                                  other_partner + R"("]}])"));
    EXPECT_EQ(foreign.status, 200);
    EXPECT_EQ(Total(foreign), 0) << foreign.body;
    // Aggregates without tenant columns are scoped too: they equal the admin's answer for the
    // caller's tenant alone.
    const std::string scope_filter =
        partner
            ? R"([{"member": "partner", "operator": "equals", "values": [")" +
                  std::to_string(*c.partner) + R"("]}])"
            : R"([{"member": "subscriber", "operator": "equals", "values": [")" + own + R"("]}])";
    const std::string total = Query(R"("usage_events")", "");
    auto mine = Call(http, c, "POST", "/v1/query", total);
    auto admins =
        admin_->Post("/v1/query", Query(R"("usage_events")", "", scope_filter), "application/json");
    ASSERT_TRUE(admins.ok() && admins->status == 200) << admins->body;
    EXPECT_GT(Total(mine), 0);
    EXPECT_EQ(Total(mine), Total(*admins)) << mine.body << " vs " << admins->body;

    // Search (the agent console's): partners find their own subscribers only; subscribers may
    // not search.
    auto found_other = Call(http, c, "GET", "/v1/subscribers?q=" + other);
    auto found_own = Call(http, c, "GET", "/v1/subscribers?q=" + own);
    if (partner) {
      EXPECT_EQ(found_other.status, 200);
      EXPECT_EQ(found_other.body, "{\"subscribers\":[]}");
      EXPECT_NE(found_own.body.find("\"subscriber_id\":" + own), std::string::npos);
    } else {
      EXPECT_EQ(found_other.status, 403);
      EXPECT_EQ(found_own.status, 403);
    }

    // Writes on another tenant's subscriber fail and change nothing.
    const std::string key = "matrix-" + std::to_string(n++);
    EXPECT_NE(Call(http, c, "POST", "/v1/recharges",
                   R"({"subscriber_id": )" + other + R"(, "amount_minor": 500})", key)
                      .status /
                  100,
              2);
    EXPECT_NE(
        Call(http, c, "POST", "/v1/subscribers/" + other + "/plan", R"({"plan_id": 1})").status /
            100,
        2);
    EXPECT_NE(
        Call(http, c, "POST", "/v1/subscribers/" + other + "/status", R"({"action": "suspend"})")
                .status /
            100,
        2);
    EXPECT_NE(Call(http, c, "POST", "/v1/subscribers",
                   R"({"subscriber_id": 990001, "partner_id": )" + other_partner +
                       R"(, "plan_id": 1, "region": "Europe"})")
                      .status /
                  100,
              2);
    for (const char* admin_only :
         {"/v1/recharges/1/refund", "/v1/recharges/1/reversal", "/v1/ingest/usage"}) {
      EXPECT_EQ(Call(http, c, "POST", admin_only, "{}", key + "x").status, 403) << admin_only;
    }
    for (const char* internal : {"/v1/loads", "/v1/partitions"}) {
      EXPECT_EQ(Call(http, c, "GET", internal).status, 403) << internal;
    }
    // An embed token reads; it never writes, even for its own tenant.
    auto own_recharge =
        Call(http, c, "POST", "/v1/recharges",
             R"({"subscriber_id": )" + own + R"(, "amount_minor": 100})", key + "-own");
    EXPECT_EQ(own_recharge.status, c.token ? 403 : 201) << own_recharge.body;
  }
  auto after = admin_->Get("/v1/subscribers/" + other + "/balance");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->body, before->body) << "a cross-tenant write changed the account";
}

// A subscriber token that names a partner the subscriber does not belong to sees nothing: not
// from the in-memory usage index, not from the store.
TEST_F(TenantMatrixTest, ASubscriberTokenNamingAnotherPartnerSeesNothing) {
  const std::string own = std::to_string(sub_a_);
  const std::string token =
      Token("--role subscriber --subscriber " + own + " --partner " + std::to_string(partner_b_));
  Caller c{"mismatched token", token, Role::kSubscriber, partner_b_, sub_a_, true};
  HttpClient http("127.0.0.1", server_->port(), 30s);
  Server::AuthorizeAs(http, token);
  for (const char* sub : {"/usage", "/summary", "/usage?granularity=hour"}) {
    EXPECT_EQ(Call(http, c, "GET", "/v1/subscribers/" + own + sub).status, 404) << sub;
  }
  auto q = Call(http, c, "POST", "/v1/query", Query(R"("usage_events")", ""));
  EXPECT_EQ(q.status, 200);
  EXPECT_EQ(Total(q), 0) << q.body;
}

TEST_F(TenantMatrixTest, PersonalDataIsMaskedByRole) {
  const std::string own = std::to_string(sub_a_);
  std::map<Role, std::string> keys = {
      {Role::kAdmin, server_->admin_key()},
      {Role::kAnalyst, CreateKey(*data_, "--role analyst")},
      {Role::kAgent, CreateKey(*data_, "--role agent")},
      {Role::kPartner, CreateKey(*data_, "--role partner --partner " + std::to_string(partner_a_))},
      {Role::kSubscriber, CreateKey(*data_, "--role subscriber --subscriber " + own)},
  };
  simdjson::dom::parser parser;
  auto full = admin_->Get("/v1/subscribers/" + own);
  ASSERT_TRUE(full.ok() && full->status == 200) << full->body;
  simdjson::dom::element truth = parser.parse(full->body);
  const std::string msisdn{std::string_view(truth["msisdn"])};
  const std::string imsi{std::string_view(truth["imsi"])};
  const std::string name{std::string_view(truth["name"])};
  for (auto [role, key] : keys) {
    SCOPED_TRACE(std::string(Name(role)));
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, key);
    auto r = http.Get("/v1/subscribers/" + own);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "");
    simdjson::dom::parser p;
    simdjson::dom::element got = p.parse(r->body);
    EXPECT_EQ(std::string_view(got["msisdn"]), MaskMsisdn(msisdn, role));
    EXPECT_EQ(std::string_view(got["imsi"]), MaskImsi(imsi, role));
    EXPECT_EQ(std::string_view(got["name"]), MaskName(name, role));
    const bool masked = role == Role::kAnalyst || role == Role::kPartner;
    EXPECT_EQ(std::string_view(got["msisdn"]) == msisdn, !masked);
    EXPECT_EQ(std::string_view(got["imsi"]) == imsi,
              role == Role::kAdmin || role == Role::kSubscriber);
    // A role that sees a field masked cannot search by it either.
    if (role != Role::kSubscriber) {
      auto by_name = http.Get("/v1/subscribers?q=" + UrlEncode(name.substr(0, name.find(' '))));
      ASSERT_TRUE(by_name.ok());
      EXPECT_EQ(by_name->status, masked ? 400 : 200) << by_name->body;
      auto by_number = http.Get("/v1/subscribers?q=" + UrlEncode(msisdn));
      ASSERT_TRUE(by_number.ok());
      EXPECT_EQ(by_number->status, masked ? 400 : 200) << by_number->body;
      if (!masked) {
        EXPECT_NE(by_number->body.find(msisdn), std::string::npos);
      }
    }
  }
}

// The agent console's activity: the newest events first, counted over the whole window (the
// metrics layer's counts), sessions still open at the newest event marked live, and
// the other party's number masked as MSISDNs are for the caller's role.
TEST_F(TenantMatrixTest, ActivityListsTheNewestEventsMaskedByRole) {
  const std::string own = std::to_string(sub_a_);
  // The window ends with the world's last day (other tests write through the ledger, whose
  // events are stamped with today's date and move the newest stored event).
  const std::string target =
      "/v1/subscribers/" + own + "/activity?hours=744&limit=100&to=2024-07-14";
  auto first = admin_->Get(target);
  ASSERT_TRUE(first.ok() && first->status == 200) << (first.ok() ? first->body : "");
  simdjson::dom::parser parser;
  simdjson::dom::element a0 = parser.parse(first->body);
  const std::string as_of{std::string_view(a0["as_of"])};
  EXPECT_EQ(as_of, "2024-07-15T00:00:00Z");
  const Timestamp newest = *ParseTimestamp(as_of);
  // A data session that started 10 s before the window's end and lasts 10 minutes: still open.
  simdjson::dom::array sessions0 = a0["sessions"];
  ASSERT_GT(sessions0.size(), 0u);
  const int64_t tower = int64_t(sessions0.at(0)["tower_id"]);
  const std::string started = FormatTimestamp(Timestamp{newest.micros - 10'000'000});
  const std::string event =
      R"({"event_id": "activity-live-1", "ts": ")" + started +
      R"(", "kind": "data_session", "subscriber_id": )" + own + R"(, "partner_id": )" +
      std::to_string(partner_a_) + R"(, "tower_id": )" + std::to_string(tower) +
      R"(, "duration_s": 600, "bytes": 1000000, "roaming": false, "session_ref": "live-1"})";
  auto ingested = admin_->Post("/v1/ingest/usage", event + "\n", "application/x-ndjson");
  ASSERT_TRUE(ingested.ok() && ingested->status == 200) << (ingested.ok() ? ingested->body : "");

  auto r = admin_->Get(target);
  ASSERT_TRUE(r.ok() && r->status == 200);
  const std::string admin_body = r->body;
  simdjson::dom::element a = parser.parse(admin_body);
  EXPECT_EQ(std::string_view(a["as_of"]), as_of);
  simdjson::dom::array sessions = a["sessions"];
  int live = 0;
  std::string previous = "9999";
  for (simdjson::dom::element x : sessions) {
    const std::string ts{std::string_view(x["ts"])};
    EXPECT_LE(ts, previous) << "not newest first";
    previous = ts;
    const int64_t duration = x["duration_s"].is_null() ? 0 : int64_t(x["duration_s"]);
    const bool open = ParseTimestamp(ts)->micros + duration * 1'000'000 > newest.micros;
    EXPECT_EQ(bool(x["live"]), open) << ts;
    live += open;
  }
  EXPECT_GE(live, 1);
  EXPECT_EQ(std::string_view(sessions.at(0)["ts"]), started);
  EXPECT_TRUE(bool(sessions.at(0)["live"]));
  // The counts are the metrics layer's over the same window.
  const std::string window =
      R"("dateRange": [")" + FormatTimestamp(Timestamp{newest.micros - 744LL * 3600 * 1'000'000}) +
      R"(", ")" + FormatTimestamp(Timestamp{newest.micros + 1'000'000}) + R"("])";
  auto q =
      admin_->Post("/v1/query",
                   R"({"measures": ["usage_events", "recharges", "call_drops", "complaints"],
                            "filters": [{"member": "subscriber", "operator": "equals", "values": [")" +
                       own + R"("]}], "timeDimensions": [{"dimension": "time", )" + window + "}]}",
                   "application/json");
  ASSERT_TRUE(q.ok() && q->status == 200) << (q.ok() ? q->body : "");
  simdjson::dom::parser qp;
  simdjson::dom::array row = qp.parse(q->body)["rows"].at(0);
  EXPECT_EQ(int64_t(a["counts"]["sessions"]), int64_t(double(row.at(0))));
  // (The recharges measure counts succeeded payments; the console lists failed ones too.)
  EXPECT_GE(int64_t(a["counts"]["recharges"]), int64_t(double(row.at(1))));
  EXPECT_EQ(int64_t(a["counts"]["drops"]), int64_t(double(row.at(2))));
  EXPECT_EQ(int64_t(a["counts"]["complaints"]), int64_t(double(row.at(3))));
  EXPECT_LE(sessions.size(), 100u);

  // Roles that see MSISDNs masked see the other party masked too.
  for (const std::string& role :
       std::vector<std::string>{"analyst", "partner --partner " + std::to_string(partner_a_)}) {
    SCOPED_TRACE(role);
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, CreateKey(*data_, "--role " + role));
    auto masked = http.Get(target);
    ASSERT_TRUE(masked.ok() && masked->status == 200);
    simdjson::dom::parser mp;
    simdjson::dom::array got = mp.parse(masked->body)["sessions"];
    ASSERT_EQ(got.size(), sessions.size());
    const Role as = role == "analyst" ? Role::kAnalyst : Role::kPartner;
    int numbers = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (sessions.at(i)["counterparty"].is_null()) continue;
      const std::string full{std::string_view(sessions.at(i)["counterparty"])};
      EXPECT_EQ(std::string_view(got.at(i)["counterparty"]), MaskMsisdn(full, as));
      EXPECT_NE(std::string_view(got.at(i)["counterparty"]), full);
      ++numbers;
    }
    EXPECT_GT(numbers, 0);
  }
  // Out-of-range parameters are 400s that name the parameter.
  for (const std::string bad :
       {"hours=0", "hours=745", "limit=0", "limit=101", "hours=x", "to=soon"}) {
    auto e = admin_->Get("/v1/subscribers/" + own + "/activity?" + bad);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->status, 400) << bad;
    EXPECT_NE(e->body.find("?" + bad.substr(0, bad.find('='))), std::string::npos) << e->body;
  }
}

// The Geographic tab's filters: a region filter leaves the other places without values, and the
// revenue of every place is the sum of its revenue per plan.
TEST_F(TenantMatrixTest, GeoFiltersByPlanAndRegion) {
  const std::string range = "from=2024-07-01&to=2024-07-14&measures=revenue,active_subscribers";
  auto all = admin_->Get("/v1/insights/geo?" + range);
  ASSERT_TRUE(all.ok() && all->status == 200) << (all.ok() ? all->body : "");
  simdjson::dom::parser parser;
  simdjson::dom::element whole = parser.parse(all->body);
  // place -> revenue, for regions and cities
  auto revenue = [](simdjson::dom::element doc) {
    std::map<std::string, double> out;
    for (const char* level : {"regions", "cities"}) {
      for (simdjson::dom::element p : simdjson::dom::array(doc[level])) {
        const std::string name =
            std::string(level) + ":" + std::string(std::string_view(p["name"]));
        if (!p["revenue"].is_null()) out[name] = double(p["revenue"]);
      }
    }
    return out;
  };
  const std::map<std::string, double> totals = revenue(whole);
  ASSERT_GT(totals.size(), 4u);

  // Europe only: its region and cities keep their values; no other place has any.
  auto europe = admin_->Get("/v1/insights/geo?" + range + "&region=Europe");
  ASSERT_TRUE(europe.ok() && europe->status == 200);
  simdjson::dom::parser pe;
  simdjson::dom::element eu = pe.parse(europe->body);
  for (simdjson::dom::element r : simdjson::dom::array(eu["regions"])) {
    const std::string name{std::string_view(r["name"])};
    EXPECT_EQ(r["revenue"].is_null(), name != "Europe") << name;
    if (name == "Europe") {
      EXPECT_NEAR(double(r["revenue"]), totals.at("regions:Europe"), 1e-6);
    }
  }
  for (simdjson::dom::element c : simdjson::dom::array(eu["cities"])) {
    if (std::string_view(c["region"]) != "Europe") {
      EXPECT_TRUE(c["revenue"].is_null());
    }
  }

  // Plan by plan, the revenues add up to the whole, place by place.
  std::map<std::string, double> sum;
  for (int plan = 1; plan <= 6; ++plan) {  // the generator's plans
    auto one = admin_->Get("/v1/insights/geo?" + range + "&plan=" + std::to_string(plan));
    ASSERT_TRUE(one.ok() && one->status == 200) << one->body;
    simdjson::dom::parser pp;
    for (auto [name, v] : revenue(pp.parse(one->body))) sum[name] += v;
  }
  for (auto [name, v] : totals) EXPECT_NEAR(sum[name], v, 1e-6 * std::max(1.0, v)) << name;

  auto bad = admin_->Get("/v1/insights/geo?plan=gold");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("plan"), std::string::npos) << bad->body;
}

TEST_F(TenantMatrixTest, ExpiredTamperedForeignAndRevokedCredentialsAreRefusedOnEveryRoute) {
  const std::string pa = std::to_string(partner_a_);
  const std::string expired = Token("--role partner --partner " + pa, "1s");
  std::string tampered = Token("--role partner --partner " + pa);
  // Swap the token's scope for another partner's, keeping the signature.
  const std::string forged_claims = Token("--role partner --partner " + std::to_string(partner_b_));
  tampered = tampered.substr(0, tampered.find('.')) +
             forged_claims.substr(forged_claims.find('.'),
                                  forged_claims.rfind('.') - forged_claims.find('.')) +
             tampered.substr(tampered.rfind('.'));
  const std::string foreign = Token("--role partner --partner " + pa);
  std::string foreign_signed;
  {
    // A token signed with another data directory's secret.
    const std::string other_dir = TempDir("matrix_other");
    TallyRun run = RunTally("keys token --data " + other_dir + " --role partner --partner " + pa +
                            " 2>/dev/null");
    foreign_signed = run.out.substr(0, run.out.find('\n'));
    fs::remove_all(other_dir);
  }
  const std::string revoked = CreateKey(*data_, "--role analyst --name soon-revoked");
  ASSERT_EQ(RunTally("keys revoke --data " + *data_ + " " + revoked.substr(4, 8)).code, 0);
  std::this_thread::sleep_for(2s);  // the 1 s token is now expired (leeway 0 in this server)

  const std::string sub = std::to_string(sub_a_);
  for (const std::string& bad :
       {expired, tampered, foreign_signed, revoked,
        std::string("tly_AAAAAAAA_") + std::string(32, 'A'), std::string("not-a-token")}) {
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, bad);
    for (const ApiRoute& route : ApiRoutes()) {
      if (route.roles == 0) continue;
      std::string path(route.pattern);
      for (const char* param : {"{id}", "{family}"}) {
        const size_t at = path.find(param);
        if (at != std::string::npos)
          path.replace(at, std::string(param).size(), param[1] == 'i' ? sub : "usage");
      }
      if (route.pattern == "/v1/query" && route.method == "GET") {
        path += "?format=csv&q=" + UrlEncode(Query(R"("revenue")", R"("subscriber")"));
      }
      auto r =
          http.Request(route.method, path, "{}",
                       {{"Content-Type", "application/json"}, {"Idempotency-Key", "bad-cred"}});
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->status, 401) << route.method << " " << path << " with " << bad.substr(0, 24)
                                << ": " << r->body;
      EXPECT_EQ(r->body.find("\"rows\""), std::string::npos);
    }
  }
}

TEST_F(TenantMatrixTest, TheAuditLogNamesEveryCallerAndTheAccessLogEveryRequest) {
  HttpClient http("127.0.0.1", server_->port(), 30s);
  const std::string key = CreateKey(*data_, "--role analyst --name auditor");
  Server::AuthorizeAs(http, key);
  auto r = http.Get("/v1/subscribers/" + std::to_string(sub_a_) + "/summary");
  ASSERT_TRUE(r.ok() && r->status == 200);
  // The audit writer flushes at least every second.
  std::string audit;
  for (int i = 0; i < 50 && audit.find(key.substr(4, 8)) == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    audit.clear();
    for (const auto& e : fs::directory_iterator(*data_ + "/audit")) audit += ReadFile(e.path());
  }
  const std::string line_start = "\"key_id\":\"" + key.substr(4, 8) + "\"";
  const size_t at = audit.find(line_start);
  ASSERT_NE(at, std::string::npos) << audit.substr(0, 500);
  const std::string line = audit.substr(at, audit.find('\n', at) - at);
  EXPECT_NE(line.find("\"role\":\"analyst\""), std::string::npos) << line;
  EXPECT_NE(line.find("/summary"), std::string::npos) << line;
  EXPECT_NE(line.find("\"status\":200"), std::string::npos) << line;
  std::string access;
  for (int i = 0; i < 50 && access.find(key.substr(4, 8)) == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    access = ReadFile(*data_ + ".log");
  }
  EXPECT_NE(access.find("\"route\":\"/v1/subscribers/{id}/summary\""), std::string::npos);
  EXPECT_EQ(access.find(server_->admin_key().substr(13)), std::string::npos)
      << "a secret reached the access log";
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

// GraphQL (/graphql) joins the matrix: every tenant caller, by key and by embed token, asks for
// its own and another tenant's subscriber, queries grouped by tenant ids, searches and lists
// experiments; no answer may hold a foreign id, and another tenant's subscriber resolves to null
// with the same "not found" error as a subscriber that does not exist.
TEST_F(TenantMatrixTest, GraphQLAnswersOnlyTheCallersTenant) {
  const std::string own = std::to_string(sub_a_), other = std::to_string(sub_b_);
  const std::string other_partner = std::to_string(partner_b_);
  auto graphql = [](HttpClient& http, const Caller& c, const std::string& query,
                    const std::string& variables = "null") {
    std::string body = "{\"query\":\"";
    for (char ch : query) {
      if (ch == '"' || ch == '\\') body += '\\';
      body += ch == '\n' ? ' ' : ch;
    }
    body += "\",\"variables\":" + variables + "}";
    return Call(http, c, "POST", "/graphql", body);
  };
  // The query result's rows (lists of strings): tenant columns must be in scope.
  auto check_rows = [](const Caller& c, const std::string& body) {
    simdjson::dom::parser p;
    simdjson::dom::element result = p.parse(body)["data"]["query"];
    simdjson::dom::array columns = result["columns"];
    size_t rows = 0;
    for (simdjson::dom::array row : simdjson::dom::array(result["rows"])) {
      ++rows;
      for (size_t i = 0; i < columns.size(); ++i) {
        const std::string_view col = columns.at(i);
        if (row.at(i).is_null()) continue;
        const int64_t v = std::stoll(std::string(std::string_view(row.at(i))));
        if (col == "subscriber") {
          EXPECT_TRUE(SubscriberInScope(c, v)) << c.name << ": " << v;
        } else if (col == "partner") {
          EXPECT_TRUE(PartnerInScope(c, v)) << c.name << ": " << v;
        }
      }
    }
    return rows;
  };
  const std::string range = R"(from: "2024-07-01", to: "2024-07-14")";
  for (const Caller& c : Tenants()) {
    SCOPED_TRACE(c.name);
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, c.credential);
    const bool partner = c.role == Role::kPartner;

    // The caller's own subscriber, with every nested field.
    auto mine =
        graphql(http, c,
                "query ($id: ID!) { subscriber(id: $id) { subscriber_id partner_id name "
                "msisdn usage(" +
                    range +
                    ", granularity: WEEK) { time usage_events "
                    "revenue } summary(" +
                    range +
                    ") { usage_events } account { "
                    "subscriber_id partner_id balance_minor bundles { sms_left } } invoices "
                    "{ subscriber_id total_minor } } }",
                "{\"id\": \"" + own + "\"}");
    EXPECT_EQ(mine.status, 200) << mine.body;
    EXPECT_EQ(mine.body.find("\"errors\""), std::string::npos) << mine.body;
    EXPECT_NE(mine.body.find("\"subscriber_id\":" + own), std::string::npos) << mine.body;
    EXPECT_NE(mine.body.find("\"usage\":[{\"time\":"), std::string::npos) << mine.body;
    EXPECT_NE(mine.body.find("\"account\":{\"subscriber_id\":" + own), std::string::npos);
    EXPECT_GE(std::stoll(mine.headers["x-tally-rows"]), 3) << mine.body;

    // Another tenant's subscriber: null, and the error REST's 404 gives, for the field alone.
    auto theirs = graphql(http, c,
                          "{ subscriber(id: " + other +
                              ") { subscriber_id name account { "
                              "balance_minor } } metrics { measures { name } } }");
    EXPECT_EQ(theirs.status, 200);
    EXPECT_NE(theirs.body.find("{\"errors\":[{\"message\":\"subscriber " + other +
                               " not found\",\"locations\":[{\"line\":1,\"column\":3}],"
                               "\"path\":[\"subscriber\"]}],\"data\":{\"subscriber\":null,"
                               "\"metrics\":{\"measures\":[{\"name\":"),
              std::string::npos)
        << theirs.body;
    // Exactly as for an id nobody has.
    auto nobody = graphql(http, c, "{ subscriber(id: 987654321) { subscriber_id } }");
    EXPECT_EQ(nobody.body,
              "{\"errors\":[{\"message\":\"subscriber 987654321 not found\",\"locations\":[{"
              "\"line\":1,\"column\":3}],\"path\":[\"subscriber\"]}],\"data\":{\"subscriber\":"
              "null}}");

    // Semantic queries grouped by tenant ids see the caller's rows only, by POST and by GET.
    const std::string by_ids =
        "{ query(measures: [\"usage_events\", \"revenue\"], dimensions: "
        "[\"subscriber\", \"partner\"], " +
        range + ") { columns rows source } }";
    auto grouped = graphql(http, c, by_ids);
    EXPECT_EQ(grouped.status, 200) << grouped.body;
    EXPECT_GT(check_rows(c, grouped.body), 0u) << grouped.body;
    auto by_get = Call(http, c, "GET", "/graphql?query=" + UrlEncode(by_ids));
    EXPECT_EQ(by_get.status, 200) << by_get.body;
    EXPECT_EQ(check_rows(c, by_get.body), check_rows(c, grouped.body));
    // A filter naming another tenant finds nothing.
    auto foreign = graphql(http, c,
                           "{ query(measures: [\"revenue\"], dimensions: [\"partner\"], " + range +
                               ", filters: [{member: \"partner\", operator: equals, values: [\"" +
                               other_partner + "\"]}]) { columns rows } }");
    EXPECT_EQ(foreign.status, 200);
    EXPECT_EQ(check_rows(c, foreign.body), 0u) << foreign.body;
    // A total without tenant columns equals the REST answer for the same caller.
    auto total =
        graphql(http, c, "{ query(measures: [\"usage_events\"], " + range + ") { rows } }");
    auto rest = Call(http, c, "POST", "/v1/query", Query(R"("usage_events")", ""));
    simdjson::dom::parser p;
    simdjson::dom::element total_rows = p.parse(total.body)["data"]["query"]["rows"];
    EXPECT_EQ(std::stod(std::string(std::string_view(total_rows.at(0).at(0)))), Total(rest))
        << total.body << " vs " << rest.body;

    // Search: as REST, partners by key find their own subscribers only; others are refused.
    auto found_other = graphql(http, c, "{ subscribers(q: \"" + other + "\") { subscriber_id } }");
    auto found_own = graphql(http, c, "{ subscribers(q: \"" + own + "\") { subscriber_id } }");
    if (partner && !c.token) {
      EXPECT_EQ(found_other.body, "{\"data\":{\"subscribers\":[]}}");
      EXPECT_EQ(found_own.body, "{\"data\":{\"subscribers\":[{\"subscriber_id\":" + own + "}]}}");
    } else {
      EXPECT_NE(found_other.body.find("\"data\":{\"subscribers\":null}"), std::string::npos)
          << found_other.body;
      EXPECT_NE(found_own.body.find("may not search subscribers"), std::string::npos)
          << found_own.body;
    }
    // Experiments: partners see their own exposures; a subscriber's scope refuses them.
    auto experiments = graphql(
        http, c, "{ experiments(" + range + ") { experiment variant exposures conversions } }");
    EXPECT_EQ(experiments.status, 200) << experiments.body;
    if (partner) {
      EXPECT_EQ(experiments.body.find("\"errors\""), std::string::npos) << experiments.body;
    }
    // There is nothing to write through.
    auto write = graphql(http, c, "mutation { recharge(id: " + other + ") }");
    EXPECT_EQ(write.status, 400) << write.body;
  }
  // Bad credentials are refused before GraphQL sees the request.
  const std::string expired = Token("--role partner --partner " + std::to_string(partner_a_), "1s");
  std::this_thread::sleep_for(2s);
  for (const std::string& bad : {expired, std::string("not-a-token")}) {
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, bad);
    auto get = http.Get("/graphql?query=" + UrlEncode("{ subscriber(id: " + own + ") { name } }"));
    ASSERT_TRUE(get.ok());
    EXPECT_EQ(get->status, 401) << get->body;
    auto post = http.Post("/graphql", "{\"query\": \"{ metrics { measures { name } } }\"}",
                          "application/json");
    ASSERT_TRUE(post.ok());
    EXPECT_EQ(post->status, 401) << post->body;
    EXPECT_EQ(post->body.find("\"data\""), std::string::npos);
  }
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

// The insight routes join the matrix: a partner's funnel, experiments and pricing cover its own
// visitors and units only (the funnel by partner, in JSON and CSV, holds its own id alone, and
// its counts equal the admin's for that partner); the seed's all-partner figures are refused to
// it; subscribers may not call the insight routes at all.
TEST_F(TenantMatrixTest, InsightsAnswerOnlyTheCallersTenant) {
  auto admin_funnel = admin_->Get("/v1/insights/funnel?segments=partner");
  ASSERT_TRUE(admin_funnel.ok() && admin_funnel->status == 200)
      << (admin_funnel.ok() ? admin_funnel->body : "");
  simdjson::dom::parser parser;
  std::map<std::string, int64_t> admin_visits;
  for (simdjson::dom::element seg :
       simdjson::dom::array(parser.parse(admin_funnel->body)["segments"])) {
    admin_visits[std::string(std::string_view(seg["segment"]["partner"]))] =
        int64_t(seg["steps"].at(0)["count"]);
  }
  ASSERT_GE(admin_visits.size(), 2u);
  // An admin narrows any insight to one partner with ?partner=, as the dashboards' filter does.
  auto narrowed = admin_->Get("/v1/insights/funnel?partner=" + std::to_string(partner_b_));
  ASSERT_TRUE(narrowed.ok() && narrowed->status == 200) << (narrowed.ok() ? narrowed->body : "");
  EXPECT_EQ(int64_t(parser.parse(narrowed->body)["segments"].at(0)["steps"].at(0)["count"]),
            admin_visits[std::to_string(partner_b_)]);
  auto admin_list = admin_->Get("/v1/insights/experiments");
  ASSERT_TRUE(admin_list.ok() && admin_list->status == 200);
  for (const Caller& c : Tenants()) {
    SCOPED_TRACE(c.name);
    HttpClient http("127.0.0.1", server_->port(), 30s);
    Server::AuthorizeAs(http, c.credential);
    if (c.role == Role::kSubscriber) {
      for (const char* route :
           {"/v1/insights/kpis", "/v1/insights/funnel", "/v1/insights/pricing",
            "/v1/insights/experiments", "/v1/insights/anomalies", "/v1/insights/plans",
            "/v1/insights/geo", "/v1/insights/power?mde=0.1&baseline=0.2"}) {
        EXPECT_EQ(Call(http, c, "GET", route).status, 403) << route;
      }
      continue;
    }
    const std::string own = std::to_string(*c.partner);
    auto funnel = Call(http, c, "GET", "/v1/insights/funnel?segments=partner");
    ASSERT_EQ(funnel.status, 200) << funnel.body;
    simdjson::dom::parser p;
    int segments = 0;
    for (simdjson::dom::element seg : simdjson::dom::array(p.parse(funnel.body)["segments"])) {
      ++segments;
      EXPECT_EQ(std::string(std::string_view(seg["segment"]["partner"])), own);
      EXPECT_EQ(int64_t(seg["steps"].at(0)["count"]), admin_visits[own]);
    }
    EXPECT_LE(segments, 1);
    // The dashboards' partner filter (?partner=): the caller's own partner answers the same;
    // another partner answers nothing, never that partner's visitors.
    const std::string other = std::to_string(*c.partner == partner_a_ ? partner_b_ : partner_a_);
    auto own_filter = Call(http, c, "GET", "/v1/insights/funnel?partner=" + own);
    ASSERT_EQ(own_filter.status, 200) << own_filter.body;
    EXPECT_EQ(int64_t(p.parse(own_filter.body)["segments"].at(0)["steps"].at(0)["count"]),
              admin_visits[own]);
    auto other_filter = Call(http, c, "GET", "/v1/insights/funnel?partner=" + other);
    ASSERT_EQ(other_filter.status, 200) << other_filter.body;
    EXPECT_EQ(int64_t(p.parse(other_filter.body)["segments"].at(0)["steps"].at(0)["count"]), 0);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/funnel?partner=x").status, 400);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/funnel?segments=partner,region&format=csv").status,
              200);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/funnel?source=seed").status, 400);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/pricing?source=seed").status, 400);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/pricing").status, 200);
    // Every flag's subscriber_id is checked against the scope by Call.
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/anomalies").status, 200);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/anomalies?format=csv").status, 200);
    // Plan advice considers the partner's own subscribers only (each listed id is checked by
    // Call too): fewer than the admin's, and some.
    auto considered = [](simdjson::dom::element r) {
      return int64_t(r["subscribers"]) + int64_t(r["too_new"]) + int64_t(r["unpriced"]) +
             int64_t(r["inactive"]);
    };
    auto plans = Call(http, c, "GET", "/v1/insights/plans?action=all&limit=0");
    ASSERT_EQ(plans.status, 200) << plans.body;
    auto admin_plans = admin_->Get("/v1/insights/plans?action=all&limit=0");
    ASSERT_TRUE(admin_plans.ok() && admin_plans->status == 200);
    simdjson::dom::parser ap;
    const int64_t mine = considered(p.parse(plans.body));
    EXPECT_GT(mine, 0);
    EXPECT_LT(mine, considered(ap.parse(admin_plans->body)));
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/plans?action=all&format=csv").status, 200);
    auto kpis = Call(http, c, "GET", "/v1/insights/kpis?segment=partner");
    ASSERT_EQ(kpis.status, 200) << kpis.body;
    for (simdjson::dom::element row : simdjson::dom::array(p.parse(kpis.body)["rows"])) {
      EXPECT_EQ(std::string(std::string_view(row["segment"])), own);
    }
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/kpis?segment=partner&format=csv").status, 200);
    EXPECT_EQ(Call(http, c, "GET", "/v1/insights/geo").status, 200);
    auto list = Call(http, c, "GET", "/v1/insights/experiments");
    ASSERT_EQ(list.status, 200) << list.body;
    // Each experiment the partner sees has no more units than the admin sees, and its report
    // counts the partner's units only.
    for (simdjson::dom::element e : simdjson::dom::array(p.parse(list.body)["experiments"])) {
      const std::string key = std::string(std::string_view(e["experiment"]));
      const int64_t units = int64_t(e["units"]);
      auto report = Call(http, c, "GET", "/v1/insights/experiments/" + key);
      if (report.status != 200) {
        EXPECT_EQ(report.status, 404) << report.body;  // no conversions for this partner
        continue;
      }
      simdjson::dom::parser rp;
      int64_t arm_units = 0;
      for (simdjson::dom::element a : simdjson::dom::array(rp.parse(report.body)["arms"])) {
        arm_units += int64_t(a["units"]);
      }
      EXPECT_LE(arm_units, units) << key;
      EXPECT_NE(admin_list->body.find("\"" + key + "\""), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace tally::testing
