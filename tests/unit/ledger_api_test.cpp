// The ledger's HTTP endpoints (LedgerApi over a real SQLite ledger in a temporary directory) and
// `tally ledger` on a generated world: idempotent recharges and refunds, proration, balances,
// invoices, and a 4xx naming the problem for every bad request.

#include "api/ledger_api.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "world_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

Date Day(int y, int m, int d) {
  return Date{DaysFromCivil(y, m, d)};
}

std::vector<Partner> TwoPartners() {
  Partner own;
  own.partner_id = PartnerId(0);
  own.name = "Tally Mobile";
  own.kind = PartnerKind::kOwnBrand;
  own.since = Day(2005, 1, 1);
  Partner mvno;
  mvno.partner_id = PartnerId(1);
  mvno.name = "Nimbus Mobile";
  mvno.kind = PartnerKind::kMvno;
  mvno.since = Day(2021, 1, 17);
  mvno.revenue_share = 0.29;
  return {own, mvno};
}

PlanVersion Plan(int64_t id, const char* name, BillingType billing, int64_t price, int32_t data_mb,
                 int32_t voice, int32_t sms) {
  PlanVersion v;
  v.plan_id = PlanId(id);
  v.version = 1;
  v.name = name;
  v.billing_type = billing;
  v.region = Region::kNorthAmerica;
  v.currency = *Currency::Parse("USD");
  v.monthly_price_minor = price;
  v.data_mb = data_mb;
  v.voice_minutes = voice;
  v.sms = sms;
  v.overage_data_per_mb_minor = 1;
  v.overage_voice_per_min_minor = 10;
  v.overage_sms_minor = 5;
  v.effective_from = Day(2024, 1, 1);
  return v;
}

// Plan 1: 30.00/month prepaid; plan 2: 60.00 prepaid, unlimited data and SMS; plan 3: 45.00
// postpaid.
std::vector<PlanVersion> ThreePlans() {
  return {Plan(1, "Basic Prepaid", BillingType::kPrepaid, 3000, 5000, 300, 300),
          Plan(2, "Pro Prepaid", BillingType::kPrepaid, 6000, kUnlimited, 1000, kUnlimited),
          Plan(3, "Pro Postpaid", BillingType::kPostpaid, 4500, 20000, 1000, 1000)};
}

// A response body, parsed; fields are read by JSON pointer ("/bundles/sms_left").
class Body {
 public:
  explicit Body(const std::string& text) : text_(text) {
    if (parser_.parse(text_).get(root_)) ADD_FAILURE() << "not JSON: " << text_;
  }
  int64_t Int(std::string_view pointer) {
    int64_t v = -999;
    if (root_.at_pointer(pointer).get(v))
      ADD_FAILURE() << pointer << " is not an integer in " << text_;
    return v;
  }
  double Double(std::string_view pointer) {
    double v = -999;
    if (root_.at_pointer(pointer).get(v))
      ADD_FAILURE() << pointer << " is not a number in " << text_;
    return v;
  }
  bool Bool(std::string_view pointer) {
    bool v = false;
    if (root_.at_pointer(pointer).get(v))
      ADD_FAILURE() << pointer << " is not a boolean in " << text_;
    return v;
  }
  std::string Str(std::string_view pointer) {
    std::string_view v;
    if (root_.at_pointer(pointer).get(v))
      ADD_FAILURE() << pointer << " is not a string in " << text_;
    return std::string(v);
  }
  bool IsNull(std::string_view pointer) {
    simdjson::dom::element e;
    return !root_.at_pointer(pointer).get(e) && e.is_null();
  }
  size_t Size(std::string_view pointer) {
    simdjson::dom::array a;
    if (root_.at_pointer(pointer).get(a))
      ADD_FAILURE() << pointer << " is not an array in " << text_;
    return a.size();
  }

 private:
  std::string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

std::string HeaderOf(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class LedgerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(std::string("ledger_api_") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto ledger = OpenSqliteLedger(dir_);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    ASSERT_TRUE(ledger_->UpsertPartners(TwoPartners()).ok());
    ASSERT_TRUE(ledger_->AddPlanVersions(ThreePlans()).ok());
    api_ = std::make_unique<LedgerApi>(ledger_.get());
  }
  void TearDown() override {
    api_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }

  Principal caller_ = [] {  // who Call() calls as
    Principal p;
    p.role = Role::kAdmin;
    p.key_id = "test";
    return p;
  }();

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& key = "") {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.target = path;
    req.body = body;
    if (!key.empty()) req.headers["idempotency-key"] = key;
    auto r = api_->Handle(req, caller_);
    if (!r) {
      ADD_FAILURE() << method << " " << path << " was not routed to the ledger API";
      HttpResponse none;
      none.status = -1;
      return none;
    }
    return *r;
  }

  //! Activates a subscriber on 2024-07-01 (the first day of its monthly cycle).
  HttpResponse Activate(int64_t id, int64_t plan, int64_t opening_minor = 10000) {
    return Call(
        "POST", "/v1/subscribers",
        "{\"subscriber_id\":" + std::to_string(id) + ",\"partner_id\":0,\"plan_id\":" +
            std::to_string(plan) + ",\"region\":\"North America\",\"ts\":\"2024-07-01T00:00:00Z\"" +
            ",\"opening_balance_minor\":" + std::to_string(opening_minor) + ",\"name\":\"Ada\"}");
  }

  HttpResponse Recharge(int64_t subscriber, int64_t amount, const std::string& key) {
    return Call("POST", "/v1/recharges",
                "{\"subscriber_id\":" + std::to_string(subscriber) +
                    ",\"amount_minor\":" + std::to_string(amount) +
                    ",\"channel\":\"web\",\"ts\":\"2024-07-02T10:00:00Z\"}",
                key);
  }

  int64_t BalanceOf(int64_t subscriber) {
    HttpResponse r = Call("GET", "/v1/subscribers/" + std::to_string(subscriber) + "/balance");
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r.body).Int("/balance_minor");
  }

  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<LedgerApi> api_;
};

TEST_F(LedgerApiTest, ActivationAnswers201WithTheAccountThen409ForTheSameSubscriber) {
  HttpResponse r = Activate(1, 1);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(HeaderOf(r, "Location"), "/v1/subscribers/1/balance");
  Body b(r.body);
  EXPECT_EQ(b.Int("/subscriber_id"), 1);
  EXPECT_EQ(b.Int("/partner_id"), 0);
  EXPECT_EQ(b.Int("/plan_id"), 1);
  EXPECT_EQ(b.Int("/plan_version"), 1);
  EXPECT_EQ(b.Str("/billing_type"), "prepaid");
  EXPECT_EQ(b.Str("/region"), "North America");
  EXPECT_EQ(b.Str("/status"), "active");
  EXPECT_EQ(b.Str("/currency"), "USD");
  // The opening balance less the whole first month's fee (the account starts on its cycle day).
  EXPECT_EQ(b.Int("/balance_minor"), 10000 - 3000);
  EXPECT_EQ(b.Str("/cycle_start"), "2024-07-01");
  EXPECT_EQ(b.Str("/cycle_end"), "2024-08-01");
  EXPECT_EQ(b.Int("/bundles/data_mb_left"), 5000);
  EXPECT_EQ(b.Int("/bundles/voice_min_left"), 300);
  EXPECT_EQ(b.Int("/bundles/sms_left"), 300);
  EXPECT_TRUE(b.IsNull("/open_invoice_id"));

  HttpResponse again = Activate(1, 1);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(again.body.find("subscriber 1"), std::string::npos) << again.body;
  EXPECT_EQ(BalanceOf(1), 7000) << "a refused activation must not touch the account";
}

TEST_F(LedgerApiTest, RechargeRetryWithTheSameKeyNeverCreditsTwice) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse first = Recharge(1, 2000, "pay-1");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(HeaderOf(first, "Idempotent-Replayed"), "");
  Body a(first.body);
  EXPECT_EQ(a.Str("/state"), "succeeded");
  EXPECT_EQ(a.Int("/subscriber_id"), 1);
  EXPECT_EQ(a.Int("/amount_minor"), 2000);
  EXPECT_EQ(a.Str("/currency"), "USD");
  EXPECT_EQ(a.Str("/channel"), "web");
  EXPECT_EQ(a.Str("/ts"), "2024-07-02T10:00:00Z");
  EXPECT_EQ(a.Int("/balance_minor"), 9000);
  EXPECT_FALSE(a.Bool("/replayed"));
  EXPECT_FALSE(a.Str("/event_id").empty());

  HttpResponse retry = Recharge(1, 2000, "pay-1");
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(HeaderOf(retry, "Idempotent-Replayed"), "true");
  Body b(retry.body);
  EXPECT_TRUE(b.Bool("/replayed"));
  EXPECT_EQ(b.Int("/recharge_id"), a.Int("/recharge_id"));
  EXPECT_EQ(b.Str("/event_id"), a.Str("/event_id"));
  EXPECT_EQ(b.Int("/balance_minor"), 9000);
  EXPECT_EQ(BalanceOf(1), 9000);

  HttpResponse second = Recharge(1, 2000, "pay-2");
  ASSERT_EQ(second.status, 201) << second.body;
  EXPECT_NE(Body(second.body).Int("/recharge_id"), a.Int("/recharge_id"));
  EXPECT_EQ(BalanceOf(1), 11000) << "a new key is a new payment";
}

TEST_F(LedgerApiTest, SameKeyForADifferentRechargeIs409AndCreditsNothing) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  ASSERT_EQ(Recharge(1, 2000, "pay-1").status, 201);
  HttpResponse other = Recharge(1, 2500, "pay-1");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_NE(other.body.find("pay-1"), std::string::npos) << other.body;
  EXPECT_EQ(BalanceOf(1), 9000);
}

TEST_F(LedgerApiTest, RechargeWithoutAnIdempotencyKeyIs400) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse r = Recharge(1, 2000, "");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("Idempotency-Key"), std::string::npos) << r.body;
  HttpResponse refund = Call("POST", "/v1/recharges/1/refund", "");
  EXPECT_EQ(refund.status, 400) << refund.body;
  EXPECT_NE(refund.body.find("Idempotency-Key"), std::string::npos) << refund.body;
  HttpResponse too_long = Recharge(1, 2000, std::string(129, 'k'));
  EXPECT_EQ(too_long.status, 400) << too_long.body;
  EXPECT_EQ(BalanceOf(1), 7000);
}

TEST_F(LedgerApiTest, RefundTakesTheMoneyBackOnceAndItsRetryReplays) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse paid = Recharge(1, 2000, "pay-1");
  ASSERT_EQ(paid.status, 201) << paid.body;
  const std::string id = std::to_string(Body(paid.body).Int("/recharge_id"));
  ASSERT_EQ(BalanceOf(1), 9000);

  HttpResponse refund = Call("POST", "/v1/recharges/" + id + "/refund",
                             "{\"ts\":\"2024-07-03T09:00:00Z\"}", "refund-1");
  ASSERT_EQ(refund.status, 200) << refund.body;
  EXPECT_EQ(HeaderOf(refund, "Idempotent-Replayed"), "");
  Body r(refund.body);
  EXPECT_EQ(r.Str("/state"), "refunded");
  EXPECT_EQ(r.Int("/amount_minor"), 2000);
  EXPECT_EQ(r.Int("/balance_minor"), 7000);
  EXPECT_FALSE(r.Bool("/replayed"));
  EXPECT_EQ(BalanceOf(1), 7000);

  HttpResponse twice = Call("POST", "/v1/recharges/" + id + "/refund", "", "refund-2");
  EXPECT_EQ(twice.status, 400) << twice.body;
  EXPECT_NE(twice.body.find("refunded"), std::string::npos) << twice.body;
  HttpResponse reversal = Call("POST", "/v1/recharges/" + id + "/reversal", "{}", "reverse-1");
  EXPECT_EQ(reversal.status, 400) << reversal.body;
  EXPECT_EQ(BalanceOf(1), 7000);

  HttpResponse replay = Call("POST", "/v1/recharges/" + id + "/refund",
                             "{\"ts\":\"2024-07-03T09:00:00Z\"}", "refund-1");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(HeaderOf(replay, "Idempotent-Replayed"), "true");
  Body p(replay.body);
  EXPECT_TRUE(p.Bool("/replayed"));
  EXPECT_EQ(p.Str("/state"), "refunded");
  EXPECT_EQ(p.Int("/balance_minor"), 7000);
  EXPECT_EQ(BalanceOf(1), 7000);

  // The refund's key names that refund: using it for a reversal is a conflict.
  HttpResponse reused = Call("POST", "/v1/recharges/" + id + "/reversal", "", "refund-1");
  EXPECT_EQ(reused.status, 409) << reused.body;
}

TEST_F(LedgerApiTest, ReversalOfASucceededRechargeDebitsTheBalance) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse paid = Recharge(1, 1500, "pay-1");
  ASSERT_EQ(paid.status, 201) << paid.body;
  const std::string id = std::to_string(Body(paid.body).Int("/recharge_id"));
  HttpResponse reversal = Call("POST", "/v1/recharges/" + id + "/reversal",
                               "{\"ts\":\"2024-07-04T00:00:00Z\"}", "chargeback-1");
  ASSERT_EQ(reversal.status, 200) << reversal.body;
  EXPECT_EQ(Body(reversal.body).Str("/state"), "reversed");
  EXPECT_EQ(BalanceOf(1), 7000);
}

TEST_F(LedgerApiTest, PlanChangeProratesTheRestOfTheCycleByDays) {
  ASSERT_EQ(Activate(2, 1).status, 201);  // balance 10000 - 3000
  HttpResponse r =
      Call("POST", "/v1/subscribers/2/plan", "{\"plan_id\":2,\"ts\":\"2024-07-17T00:00:00Z\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  Body b(r.body);
  // July 17 to August 1 is 15 of the cycle's 31 days, the day of the change included.
  EXPECT_EQ(b.Int("/subscriber_id"), 2);
  EXPECT_EQ(b.Int("/from_plan"), 1);
  EXPECT_EQ(b.Int("/to_plan"), 2);
  EXPECT_DOUBLE_EQ(b.Double("/remaining_fraction"), 15.0 / 31.0);
  EXPECT_EQ(b.Int("/credit_minor"), 3000 * 15 / 31);  // 1451
  EXPECT_EQ(b.Int("/charge_minor"), 6000 * 15 / 31);  // 2903
  EXPECT_EQ(b.Int("/balance_minor"), 7000 + 1451 - 2903);

  HttpResponse view = Call("GET", "/v1/subscribers/2/balance");
  ASSERT_EQ(view.status, 200) << view.body;
  Body v(view.body);
  EXPECT_EQ(v.Int("/plan_id"), 2);
  EXPECT_EQ(v.Int("/balance_minor"), 5548);
  EXPECT_EQ(v.Int("/bundles/data_mb_left"), -1) << "plan 2's data is unlimited";
  EXPECT_EQ(v.Int("/bundles/voice_min_left"), 1000 * 15 / 31);
  EXPECT_EQ(v.Int("/bundles/sms_left"), -1);

  HttpResponse same =
      Call("POST", "/v1/subscribers/2/plan", "{\"plan_id\":2,\"ts\":\"2024-07-18T00:00:00Z\"}");
  EXPECT_EQ(same.status, 400) << same.body;
  HttpResponse to_postpaid =
      Call("POST", "/v1/subscribers/2/plan", "{\"plan_id\":3,\"ts\":\"2024-07-18T00:00:00Z\"}");
  EXPECT_EQ(to_postpaid.status, 400) << to_postpaid.body;
  HttpResponse unknown_plan =
      Call("POST", "/v1/subscribers/2/plan", "{\"plan_id\":77,\"ts\":\"2024-07-18T00:00:00Z\"}");
  EXPECT_EQ(unknown_plan.status, 404) << unknown_plan.body;
}

TEST_F(LedgerApiTest, PostpaidAccountShowsItsOpenInvoiceAndInvoicesCloseWithTheCycle) {
  HttpResponse created = Activate(3, 3, 0);
  ASSERT_EQ(created.status, 201) << created.body;
  Body a(created.body);
  EXPECT_EQ(a.Str("/billing_type"), "postpaid");
  EXPECT_EQ(a.Int("/balance_minor"), 0);
  const int64_t invoice_id = a.Int("/open_invoice_id");
  EXPECT_EQ(a.Int("/open_invoice_minor"), 4500);

  HttpResponse list = Call("GET", "/v1/subscribers/3/invoices");
  ASSERT_EQ(list.status, 200) << list.body;
  Body l(list.body);
  EXPECT_EQ(l.Int("/subscriber_id"), 3);
  ASSERT_EQ(l.Size("/invoices"), 1u);
  EXPECT_EQ(l.Int("/invoices/0/invoice_id"), invoice_id);
  EXPECT_EQ(l.Str("/invoices/0/period_start"), "2024-07-01");
  EXPECT_EQ(l.Str("/invoices/0/period_end"), "2024-08-01");
  EXPECT_FALSE(l.Bool("/invoices/0/closed"));
  EXPECT_EQ(l.Str("/invoices/0/currency"), "USD");
  EXPECT_EQ(l.Int("/invoices/0/fee_minor"), 4500);
  EXPECT_EQ(l.Int("/invoices/0/total_minor"), 4500);

  ASSERT_TRUE(ledger_->AdvanceTo(StartOfDay(Day(2024, 8, 2))).ok());
  HttpResponse after = Call("GET", "/v1/subscribers/3/invoices");
  ASSERT_EQ(after.status, 200) << after.body;
  Body m(after.body);
  ASSERT_EQ(m.Size("/invoices"), 2u);
  EXPECT_TRUE(m.Bool("/invoices/0/closed"));
  EXPECT_EQ(m.Int("/invoices/0/total_minor"), 4500);
  EXPECT_FALSE(m.Bool("/invoices/1/closed"));
  EXPECT_EQ(m.Str("/invoices/1/period_start"), "2024-08-01");
  EXPECT_EQ(m.Str("/invoices/1/period_end"), "2024-09-01");

  // Postpaid accounts are billed, not recharged; prepaid ones have no invoices.
  EXPECT_EQ(Recharge(3, 1000, "pay-postpaid").status, 400);
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse prepaid = Call("GET", "/v1/subscribers/1/invoices");
  ASSERT_EQ(prepaid.status, 200) << prepaid.body;
  EXPECT_EQ(Body(prepaid.body).Size("/invoices"), 0u);
}

TEST_F(LedgerApiTest, StatusActionsChangeTheAccountAndADeactivatedOneTakesNoRecharge) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  auto status = [&](const std::string& action) {
    return Call("POST", "/v1/subscribers/1/status",
                "{\"action\":\"" + action + "\",\"ts\":\"2024-07-05T00:00:00Z\"}");
  };
  HttpResponse suspended = status("suspend");
  ASSERT_EQ(suspended.status, 200) << suspended.body;
  EXPECT_EQ(Body(suspended.body).Str("/status"), "suspended");
  HttpResponse resumed = status("resume");
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(Body(resumed.body).Str("/status"), "active");
  HttpResponse paused = status("pause");
  EXPECT_EQ(paused.status, 400) << paused.body;
  EXPECT_NE(paused.body.find("action"), std::string::npos) << paused.body;
  HttpResponse gone = status("deactivate");
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(Body(gone.body).Str("/status"), "churned");
  EXPECT_EQ(Recharge(1, 1000, "pay-late").status, 400);
  EXPECT_EQ(BalanceOf(1), 7000);
}

TEST_F(LedgerApiTest, MalformedBodiesAre400NamingTheFieldOrTheSyntax) {
  const std::string base = "\"partner_id\":0,\"plan_id\":1,\"region\":\"North America\"";
  // Each body and what its error message must name.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "malformed JSON"},
      {"[1,2]", "object"},
      {"{\"subscriber_id\":\"one\"," + base + "}", "subscriber_id"},
      {"{\"subscriber_id\":1.5," + base + "}", "subscriber_id"},
      {"{\"subscriber_id\":18446744073709551615," + base + "}", "subscriber_id"},
      {"{\"subscriber_id\":1," + base + ",\"colour\":\"red\"}", "colour"},
      {"{\"subscriber_id\":1," + base + ",\"subscriber_id\":2}", "subscriber_id"},
      {"{\"subscriber_id\":1,\"partner_id\":0,\"region\":\"North America\"}", "plan_id"},
      {"{\"subscriber_id\":1,\"partner_id\":0,\"plan_id\":1,\"region\":\"Mars\"}", "region"},
      {"{\"subscriber_id\":1," + base + ",\"ts\":\"yesterday\"}", "ts"},
      {"{\"subscriber_id\":1," + base + ",\"device_type\":7}", "device_type"},
      {"{\"subscriber_id\":1," + base + ",\"opening_balance_minor\":-5}", "opening_balance_minor"},
  };
  for (const auto& [body, names] : cases) {
    HttpResponse r = Call("POST", "/v1/subscribers", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(names), std::string::npos) << body << " -> " << r.body;
  }
  ASSERT_EQ(Activate(1, 1).status, 201);
  HttpResponse amount =
      Call("POST", "/v1/recharges", "{\"subscriber_id\":1,\"amount_minor\":\"20\"}", "k1");
  EXPECT_EQ(amount.status, 400) << amount.body;
  EXPECT_NE(amount.body.find("amount_minor"), std::string::npos) << amount.body;
  HttpResponse currency =
      Call("POST", "/v1/recharges",
           "{\"subscriber_id\":1,\"amount_minor\":20,\"currency\":\"usd\"}", "k1");
  EXPECT_EQ(currency.status, 400) << currency.body;
  EXPECT_NE(currency.body.find("currency"), std::string::npos) << currency.body;
  HttpResponse negative =
      Call("POST", "/v1/recharges", "{\"subscriber_id\":1,\"amount_minor\":-20}", "k1");
  EXPECT_EQ(negative.status, 400) << negative.body;
  EXPECT_EQ(BalanceOf(1), 7000);
}

TEST_F(LedgerApiTest, UnknownSubscribersAndRechargesAre404) {
  HttpResponse balance = Call("GET", "/v1/subscribers/999/balance");
  EXPECT_EQ(balance.status, 404) << balance.body;
  EXPECT_NE(balance.body.find("999"), std::string::npos) << balance.body;
  EXPECT_EQ(Call("GET", "/v1/subscribers/999/invoices").status, 404);
  EXPECT_EQ(Call("POST", "/v1/subscribers/999/plan", "{\"plan_id\":1}").status, 404);
  EXPECT_EQ(Call("POST", "/v1/subscribers/999/status", "{\"action\":\"suspend\"}").status, 404);
  EXPECT_EQ(Recharge(999, 100, "k-999").status, 404);
  EXPECT_EQ(Call("POST", "/v1/recharges/12345/refund", "", "r-1").status, 404);
  HttpResponse partner =
      Call("POST", "/v1/subscribers",
           "{\"subscriber_id\":5,\"partner_id\":9,\"plan_id\":1,\"region\":\"North America\"}");
  EXPECT_EQ(partner.status, 404) << partner.body;
}

TEST_F(LedgerApiTest, RoutesOutsideTheLedgerAreLeftToOthersAndWrongShapesAreNamed) {
  for (const char* path : {"/healthz", "/v1/ingest/usage", "/v1/subscriberss", "/v1/loads"}) {
    HttpRequest req;
    req.method = "GET";
    req.path = path;
    EXPECT_FALSE(api_->Handle(req, caller_).has_value()) << path;
  }
  HttpResponse get_collection = Call("GET", "/v1/subscribers");
  EXPECT_EQ(get_collection.status, 405);
  EXPECT_EQ(HeaderOf(get_collection, "Allow"), "POST");
  EXPECT_EQ(Call("POST", "/v1/subscribers/1/balance").status, 405);
  EXPECT_EQ(Call("GET", "/v1/recharges/1/refund").status, 405);
  EXPECT_EQ(Call("GET", "/v1/subscribers/1/friends").status, 404);
  EXPECT_EQ(Call("GET", "/v1/subscribers/1").status, 404);
  EXPECT_EQ(Call("GET", "/v1/subscribers/1/balance/extra").status, 404);
  EXPECT_EQ(Call("POST", "/v1/recharges/1/undo", "", "k").status, 404);
  for (const char* id : {"abc", "-1", "0", "1.5", "99999999999999999999", ""}) {
    HttpResponse r = Call("GET", std::string("/v1/subscribers/") + id + "/balance");
    EXPECT_EQ(r.status, 400) << id << " -> " << r.body;
  }
  EXPECT_EQ(Call("POST", "/v1/recharges/x/refund", "", "k").status, 400);
}

TEST_F(LedgerApiTest, HostileBodiesGetA4xxAndNeverACrash) {
  ASSERT_EQ(Activate(1, 1).status, 201);
  std::vector<std::string> bodies = {"",
                                     " ",
                                     "null",
                                     "true",
                                     "1",
                                     "\"text\"",
                                     "[]",
                                     "{",
                                     "}",
                                     "{}",
                                     "{\"\":1}",
                                     "{\"ts\":null}",
                                     "{\"subscriber_id\":null}",
                                     "{\"subscriber_id\":1e400}",
                                     "{\"subscriber_id\":-9223372036854775809}",
                                     "{\"amount_minor\":9223372036854775807,\"subscriber_id\":0}",
                                     "{\"plan_id\":{}}",
                                     "{\"action\":[\"suspend\"]}",
                                     "{\"ts\":\"2024-13-45T99:99:99Z\"}",
                                     "{\"region\":\"\\u0000\"}",
                                     "\xff\xfe{}",
                                     "{\"name\":\"\xc3\x28\"}",
                                     std::string(100000, '['),
                                     std::string(1 << 20, ' ') + "{",
                                     "{\"" + std::string(10000, 'k') + "\":1}",
                                     std::string("{\"a\":1}\0{", 9)};
  const std::vector<std::string> routes = {"/v1/subscribers",          "/v1/subscribers/1/plan",
                                           "/v1/subscribers/1/status", "/v1/recharges",
                                           "/v1/recharges/1/refund",   "/v1/recharges/1/reversal"};
  for (const std::string& route : routes) {
    for (const std::string& body : bodies) {
      HttpResponse r = Call("POST", route, body, "hostile");
      EXPECT_GE(r.status, 400) << route << " " << body.substr(0, 80) << " -> " << r.body;
      EXPECT_LT(r.status, 500) << route << " " << body.substr(0, 80) << " -> " << r.body;
      Body error(r.body);
      EXPECT_FALSE(error.Str("/error").empty());
    }
  }
  EXPECT_EQ(BalanceOf(1), 7000);
}

// ---- `tally ledger` ---------------------------------------------------------------------

using CliRun = testing::TallyRun;

CliRun Tally(const std::string& args, const std::string& env = "") { return testing::RunTally(args, env); }

// Data rows of a CSV file: its non-empty lines after the header.
int64_t CsvRows(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int64_t n = -1;
  while (std::getline(in, line)) n += line.empty() ? 0 : 1;
  return n;
}

// The fields of a CSV line without quotes (plans.csv names hold no commas).
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

TEST(LedgerApiCli, ImportsAWorldThenActivatesRechargesIdempotentlyAndShowsTheBalance) {
  const std::string world = TempDir("ledger_cli_world");
  const std::string data = TempDir("ledger_cli_data");
  // Removes both directories however the test ends (an ASSERT returns early).
  struct Cleanup {
    std::vector<std::string> dirs;
    ~Cleanup() {
      for (const auto& d : dirs) fs::remove_all(d);
    }
  } cleanup{{world, data}};
  CliRun gen =
      Tally("generate --quiet --out " + world + " --subscribers 20 --days 3 --start 2024-07-01");
  ASSERT_EQ(gen.code, 0) << gen.out;

  CliRun partners = Tally("ledger --data " + data + " import-partners " + world + "/partners.csv");
  ASSERT_EQ(partners.code, 0) << partners.out;
  const int64_t partner_rows = CsvRows(world + "/partners.csv");
  EXPECT_NE(partners.out.find("imported " + std::to_string(partner_rows) + " partners"),
            std::string::npos)
      << partners.out;
  CliRun plans = Tally("ledger --data " + data + " import-plans " + world + "/plans.csv");
  ASSERT_EQ(plans.code, 0) << plans.out;
  const int64_t plan_rows = CsvRows(world + "/plans.csv");
  EXPECT_NE(plans.out.find("imported " + std::to_string(plan_rows) + " plan versions"),
            std::string::npos)
      << plans.out;
  EXPECT_NE(plans.out.find("(" + std::to_string(plan_rows) + " new)"), std::string::npos)
      << plans.out;
  CliRun again = Tally("ledger --data " + data + " import-plans " + world + "/plans.csv");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("(0 new)"), std::string::npos)
      << "re-importing adds nothing: " << again.out;
  CliRun listed = Tally("ledger --data " + data + " plans --json");
  ASSERT_EQ(listed.code, 0) << listed.out;
  EXPECT_EQ(Body(listed.out).Size("/plans"), static_cast<size_t>(plan_rows));

  // A prepaid plan version that is still current, activated on its first day.
  std::string plan_id, region, from;
  std::ifstream csv(world + "/plans.csv");
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = SplitCsv(line);
  auto column = [&](const char* name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  while (std::getline(csv, line)) {
    std::vector<std::string> row = SplitCsv(line);
    if (row.size() != header.size()) continue;
    if (row[column("billing_type")] == "prepaid" && row[column("effective_to")].empty()) {
      plan_id = row[column("plan_id")];
      region = row[column("region")];
      from = row[column("effective_from")];
      break;
    }
  }
  ASSERT_FALSE(plan_id.empty()) << "no current prepaid plan in " << world << "/plans.csv";
  CliRun activated =
      Tally("ledger --data " + data + " activate --subscriber 1 --partner 0 --plan " + plan_id +
            " --region '" + region + "' --ts " + from + "T12:00:00Z --opening-balance 5000 --json");
  ASSERT_EQ(activated.code, 0) << activated.out;
  const int64_t opening = Body(activated.out).Int("/balance_minor");

  // --data and --json may also follow the subcommand.
  const std::string pay =
      "ledger recharge --subscriber 1 --amount 2000 --key cli-pay-1 --channel retail --ts " + from +
      "T13:00:00Z --json --data " + data;
  CliRun paid = Tally(pay);
  ASSERT_EQ(paid.code, 0) << paid.out;
  Body first(paid.out);
  EXPECT_FALSE(first.Bool("/replayed"));
  EXPECT_EQ(first.Int("/balance_minor"), opening + 2000);
  CliRun retried = Tally(pay);
  ASSERT_EQ(retried.code, 0) << retried.out;
  Body second(retried.out);
  EXPECT_TRUE(second.Bool("/replayed"));
  EXPECT_EQ(second.Int("/recharge_id"), first.Int("/recharge_id"));
  EXPECT_EQ(second.Int("/balance_minor"), opening + 2000);

  CliRun conflict =
      Tally("ledger --data " + data + " recharge --subscriber 1 --amount 2500 --key cli-pay-1");
  EXPECT_EQ(conflict.code, 1) << conflict.out;
  EXPECT_NE(conflict.out.find("cli-pay-1"), std::string::npos) << conflict.out;
  CliRun no_key = Tally("ledger --data " + data + " recharge --subscriber 1 --amount 2000");
  EXPECT_EQ(no_key.code, 2) << no_key.out;
  EXPECT_NE(no_key.out.find("--key"), std::string::npos) << no_key.out;
  CliRun bad_amount =
      Tally("ledger --data " + data + " recharge --subscriber 1 --amount lots --key k");
  EXPECT_EQ(bad_amount.code, 2) << bad_amount.out;
  EXPECT_NE(bad_amount.out.find("--amount"), std::string::npos) << bad_amount.out;

  CliRun balance = Tally("ledger --data " + data + " balance --subscriber 1 --json");
  ASSERT_EQ(balance.code, 0) << balance.out;
  Body view(balance.out);
  EXPECT_EQ(view.Int("/subscriber_id"), 1);
  EXPECT_EQ(view.Int("/plan_id"), std::stoll(plan_id));
  EXPECT_EQ(view.Str("/region"), region);
  EXPECT_EQ(view.Int("/balance_minor"), opening + 2000);
  CliRun text = Tally("ledger --data " + data + " balance --subscriber 1");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("subscriber 1"), std::string::npos) << text.out;
  CliRun missing = Tally("ledger --data " + data + " balance --subscriber 2");
  EXPECT_EQ(missing.code, 1) << missing.out;
}

}  // namespace
}  // namespace tally::testing
