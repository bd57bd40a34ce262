// The ledger: accounts, idempotent recharges, compensations, rating against the plan of the event's
// time, postpaid invoices, prorations, the outbox, restarts, concurrency and kill -9. Every test
// runs on both backends, SQLite and PostgreSQL (a real server, postgres_fixture.h, with a database
// of its own per test).

#include "ledger/ledger.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ingest/batch_decoder.h"
#include "ledger/sqlite_db.h"
#include "model/record_codec.h"
#include "postgres_fixture.h"
#include "world_fixture.h"

namespace tally {
namespace {

Timestamp T(const char* text) {
  return *ParseTimestamp(text);
}
Date D(const char* text) {
  return *ParseDate(text);
}

PlanVersion Plan(int64_t id, int32_t version, BillingType billing, int64_t price, const char* from,
                 std::optional<const char*> to) {
  PlanVersion p;
  p.plan_id = PlanId(id);
  p.version = version;
  p.name = "plan " + std::to_string(id);
  p.tier = id == 3 ? Tier::kPro : Tier::kBasic;
  p.billing_type = billing;
  p.region = Region::kNorthAmerica;
  p.currency = *Currency::Parse("USD");
  p.monthly_price_minor = price;
  p.data_mb = 1000;
  p.voice_minutes = 100;
  p.sms = 10;
  p.overage_data_per_mb_minor = 2;
  p.overage_voice_per_min_minor = 10 * version;  // version 2 doubles the overage rate
  p.overage_sms_minor = 5;
  p.roaming_data_per_mb_minor = 50;
  p.roaming_voice_per_min_minor = 100;
  p.roaming_sms_minor = 30;
  p.premium_sms_minor = 200;
  p.effective_from = D(from);
  if (to) p.effective_to = D(*to);
  return p;
}

UsageEvent Voice(const std::string& id, int64_t sub, const char* ts, int32_t seconds,
                 bool roaming = false) {
  UsageEvent u;
  u.event_id = id;
  u.ts = T(ts);
  u.kind = UsageKind::kVoiceCall;
  u.subscriber_id = SubscriberId(sub);
  u.partner_id = PartnerId(0);
  u.duration_s = seconds;
  u.destination = Destination::kOffNet;
  u.roaming = roaming;
  u.session_ref = "s-" + id;
  return u;
}

UsageEvent Sms(const std::string& id, int64_t sub, const char* ts, bool premium) {
  UsageEvent u = Voice(id, sub, ts, 0);
  u.kind = UsageKind::kSms;
  u.duration_s.reset();
  u.destination = premium ? Destination::kPremium : Destination::kOffNet;
  return u;
}

enum class Backend { kSqlite, kPostgres };
void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kSqlite ? "sqlite" : "postgres");
}

class LedgerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = testing::TempDir("ledger_" + name);
    if (GetParam() == Backend::kPostgres) {
      auto pg = testing::SharedPostgres::Get();
      ASSERT_TRUE(pg.ok()) << pg.status().ToString();
      postgres_ = *pg;
      static int databases = 0;  // tests of one process run one after another
      database_ = "ledger_test_" + std::to_string(++databases);
      Status created = postgres_->CreateDatabase(database_);
      ASSERT_TRUE(created.ok()) << created.ToString();
    }
    Open();
    if (HasFatalFailure()) return;
    Partner p;
    p.partner_id = PartnerId(0);
    p.name = "Own";
    ASSERT_TRUE(ledger_->UpsertPartners({p}).ok());
    ASSERT_TRUE(
        ledger_
            ->AddPlanVersions({Plan(1, 1, BillingType::kPrepaid, 2000, "2024-01-01", "2024-03-01"),
                               Plan(1, 2, BillingType::kPrepaid, 2500, "2024-03-01", std::nullopt),
                               Plan(2, 1, BillingType::kPostpaid, 3000, "2024-01-01", std::nullopt),
                               Plan(3, 1, BillingType::kPrepaid, 4000, "2024-01-01", std::nullopt)})
            .ok());
  }
  void TearDown() override {
    ledger_.reset();
    std::filesystem::remove_all(dir_);
    if (postgres_) {
      Status dropped = postgres_->DropDatabase(database_);
      EXPECT_TRUE(dropped.ok()) << dropped.ToString();
    }
  }
  // A ledger of this test's backend (also from a forked child).
  Result<std::unique_ptr<Ledger>> OpenLedger(LedgerOptions options = {}) const {
    if (GetParam() == Backend::kPostgres) {
      return OpenPostgresLedger(postgres_->ConnInfo(database_), options);
    }
    return OpenSqliteLedger(dir_, options);
  }
  void Open() {
    auto l = OpenLedger();
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
  }
  void Reopen() {
    ledger_.reset();
    Open();
  }
  AccountView Activate(int64_t sub, int64_t plan, const char* ts, int64_t opening = 0) {
    ActivateRequest r;
    r.subscriber_id = SubscriberId(sub);
    r.partner_id = PartnerId(0);
    r.plan_id = PlanId(plan);
    r.region = Region::kNorthAmerica;
    r.ts = T(ts);
    r.opening_balance_minor = opening;
    auto v = ledger_->Activate(r);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : AccountView{};
  }
  Result<RechargeResult> Recharge(const std::string& key, int64_t sub, int64_t amount,
                                  const char* ts,
                                  PaymentStatus status = PaymentStatus::kSucceeded) {
    RechargeRequest r;
    r.idempotency_key = key;
    r.subscriber_id = SubscriberId(sub);
    r.amount_minor = amount;
    r.payment_status = status;
    r.ts = T(ts);
    return ledger_->Recharge(r);
  }
  int64_t Balance(int64_t sub) {
    auto a = ledger_->Account(SubscriberId(sub));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->balance_minor : 0;
  }
  // Every pending outbox row of `table`, concatenated as NDJSON. Rated charges travel as
  // headerless CSV ("charge.csv"); they are decoded here so tests read one form.
  std::string Outbox(const std::string& table) {
    auto batches = ledger_->PendingOutbox(100000);
    EXPECT_TRUE(batches.ok());
    std::string out;
    for (const auto& b : *batches) {
      if (b.table == table) out += b.body;
      if (table == "charge" && b.table == kRatedChargeTable) {
        TextBuffer csv(256);
        WriteCsvHeader<ChargeEvent>(csv);
        BatchDecoder<ChargeEvent> decoder;
        DecodedBatch<ChargeEvent> rows;
        EXPECT_TRUE(
            decoder.Decode(BodyFormat::kCsv, std::string(csv.view()) + b.body, {}, &rows).ok());
        EXPECT_TRUE(rows.rejects.empty()) << rows.rejects.front().reason;
        EXPECT_EQ(static_cast<int64_t>(rows.rows.size()), b.rows);
        for (const ChargeEvent& c : rows.rows) {
          TextBuffer line(256);
          WriteJsonRow(line, c);
          out += line.view();
        }
      }
    }
    return out;
  }

  std::string dir_;
  PostgresLocalServer* postgres_ = nullptr;
  std::string database_;
  std::unique_ptr<Ledger> ledger_;
};

INSTANTIATE_TEST_SUITE_P(Backends, LedgerTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "sqlite" : "postgres";
                         });

TEST_P(LedgerTest, ActivationOpensACycleAndChargesTheFee) {
  AccountView v = Activate(1, 1, "2024-01-10T08:00:00Z", 5000);
  EXPECT_EQ(v.balance_minor, 3000);  // 5000 opening - 2000 fee
  EXPECT_EQ(v.cycle_start, D("2024-01-10"));
  EXPECT_EQ(v.cycle_end, D("2024-02-10"));
  EXPECT_EQ(v.data_mb_left, 1000);
  EXPECT_EQ(v.plan_version, 1);
  ActivateRequest again;
  again.subscriber_id = SubscriberId(1);
  again.partner_id = PartnerId(0);
  again.plan_id = PlanId(1);
  EXPECT_EQ(ledger_->Activate(again).status().code(), Status::Code::kAlreadyExists);
  again.subscriber_id = SubscriberId(2);
  again.partner_id = PartnerId(9);
  EXPECT_EQ(ledger_->Activate(again).status().code(), Status::Code::kNotFound);
  EXPECT_NE(Outbox("lifecycle").find("\"kind\":\"activation\""), std::string::npos);
  EXPECT_NE(Outbox("subscribers").find("\"subscriber_id\":1"), std::string::npos);
  EXPECT_NE(Outbox("charge").find("\"entry\":\"plan_fee\",\"subscriber_id\":1"), std::string::npos);
}

TEST_P(LedgerTest, ARetriedRechargeCreditsOnceAndReturnsTheOriginalResult) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);
  auto first = Recharge("k1", 1, 1500, "2024-01-11T00:00:00Z");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->replayed);
  EXPECT_EQ(first->balance_minor, 1500);
  auto retry = Recharge("k1", 1, 1500, "2024-01-11T00:05:00Z");
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->recharge_id, first->recharge_id);
  EXPECT_EQ(retry->balance_minor, 1500);
  EXPECT_EQ(retry->ts, first->ts);
  EXPECT_EQ(Balance(1), 1500);
  auto conflict = Recharge("k1", 1, 9999, "2024-01-11T00:00:00Z");
  EXPECT_EQ(conflict.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(conflict.status().message().find("different recharge"), std::string::npos);
  EXPECT_EQ(Recharge("", 1, 10, "2024-01-11T00:00:00Z").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Recharge("k2", 1, 0, "2024-01-11T00:00:00Z").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Recharge("k3", 77, 10, "2024-01-11T00:00:00Z").status().code(),
            Status::Code::kNotFound);
}

TEST_P(LedgerTest, FailedPaymentsAreAStateOfTheirOwnAndCreditNothing) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);
  auto failed = Recharge("f1", 1, 1000, "2024-01-11T00:00:00Z", PaymentStatus::kFailed);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state, RechargeState::kFailed);
  EXPECT_EQ(Balance(1), 0);
  auto replay = Recharge("f1", 1, 1000, "2024-01-11T00:00:00Z", PaymentStatus::kFailed);
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(replay->state, RechargeState::kFailed);
  CompensateRequest refund{"rf", failed->recharge_id, false, T("2024-01-12T00:00:00Z")};
  EXPECT_EQ(ledger_->Compensate(refund).status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(Outbox("recharge").find("\"payment_status\":\"failed\""), std::string::npos);
}

TEST_P(LedgerTest, RefundsAndReversalsAreCompensatingEntries) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);
  auto r1 = Recharge("a", 1, 1000, "2024-01-11T00:00:00Z");
  auto r2 = Recharge("b", 1, 700, "2024-01-11T01:00:00Z");
  ASSERT_TRUE(r1.ok() && r2.ok());
  auto refund =
      ledger_->Compensate({"refund-a", r1->recharge_id, false, T("2024-01-12T00:00:00Z")});
  ASSERT_TRUE(refund.ok()) << refund.status().ToString();
  EXPECT_EQ(refund->state, RechargeState::kRefunded);
  EXPECT_EQ(refund->balance_minor, 700);
  auto replay =
      ledger_->Compensate({"refund-a", r1->recharge_id, false, T("2024-01-12T00:00:00Z")});
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(replay->ts, refund->ts);  // the refund's time, not the recharge's
  EXPECT_EQ(replay->balance_minor, 700);
  EXPECT_EQ(Balance(1), 700);
  EXPECT_EQ(
      ledger_->Compensate({"refund-a-again", r1->recharge_id, false, std::nullopt}).status().code(),
      Status::Code::kInvalidArgument);
  auto reversal = ledger_->Compensate({"rev-b", r2->recharge_id, true, T("2024-01-12T00:00:00Z")});
  ASSERT_TRUE(reversal.ok());
  EXPECT_EQ(reversal->state, RechargeState::kReversed);
  EXPECT_EQ(Balance(1), 0);
  // The original recharge stays as it was: a replay of its key still shows the credit it made.
  auto original = Recharge("a", 1, 1000, "2024-01-11T00:00:00Z");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->balance_minor, 1000);
  EXPECT_EQ(original->state, RechargeState::kRefunded);
  auto totals = ledger_->DayTotals();
  ASSERT_TRUE(totals.ok());
  int64_t recharged = 0, compensated = 0;
  for (const auto& t : *totals) {
    recharged += t.recharge_minor;
    compensated += t.compensation_minor;
  }
  EXPECT_EQ(recharged, 1700);
  EXPECT_EQ(compensated, 1700);
  std::string charges = Outbox("charge");
  EXPECT_NE(charges.find("\"entry\":\"refund\""), std::string::npos);
  EXPECT_NE(charges.find("\"entry\":\"reversal\""), std::string::npos);
}

TEST_P(LedgerTest, UsageIsRatedBundleFirstThenOverageRoamingAndPremium) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 10000);  // balance 8000 after the fee
  std::vector<UsageEvent> usage = {
      Voice("v1", 1, "2024-01-11T10:00:00Z", 90),        // 2 minutes from the bundle
      Voice("v2", 1, "2024-01-11T11:00:00Z", 98 * 60),   // 98 minutes: the bundle's last
      Voice("v3", 1, "2024-01-11T12:00:00Z", 61),        // 2 minutes overage at 10
      Voice("v4", 1, "2024-01-11T13:00:00Z", 60, true),  // roaming: 1 minute at 100
      Sms("s1", 1, "2024-01-11T14:00:00Z", true),        // premium: 200
  };
  auto s = ledger_->RateUsage(usage);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rated, 5);
  EXPECT_EQ(s->charged_minor, 20 + 100 + 200);
  EXPECT_EQ(Balance(1), 8000 - 320);
  auto a = ledger_->Account(SubscriberId(1));
  EXPECT_EQ(a->voice_min_left, 0);
  // Rating the same records again changes nothing.
  auto again = ledger_->RateUsage(usage);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rated, 0);
  EXPECT_EQ(again->already_rated, 5);
  EXPECT_EQ(Balance(1), 8000 - 320);
  std::string charges = Outbox("charge");
  EXPECT_NE(charges.find("\"event_id\":\"c:v3\""), std::string::npos);
  EXPECT_NE(charges.find("\"kind\":\"overage\",\"units\":2,\"bundle_units\":0"), std::string::npos)
      << charges;
  EXPECT_NE(charges.find("\"kind\":\"premium_sms\""), std::string::npos);
}

TEST_P(LedgerTest, UsageIsRatedOnThePlanVersionOfItsDay) {
  Activate(1, 1, "2024-02-20T00:00:00Z", 100000);
  // Use up the voice bundle, then overage before and after the 2024-03-01 price change.
  ASSERT_TRUE(ledger_->RateUsage({Voice("all", 1, "2024-02-20T10:00:00Z", 100 * 60)}).ok());
  auto s = ledger_->RateUsage(
      {Voice("feb", 1, "2024-02-29T10:00:00Z", 60), Voice("mar", 1, "2024-03-02T10:00:00Z", 60)});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->charged_minor, 10 + 20);  // version 1 rate, then version 2 rate
  std::string charges = Outbox("charge");
  EXPECT_NE(charges.find("\"event_id\":\"c:mar\",\"ts\":\"2024-03-02T10:00:00Z\",\"entry\":"
                         "\"usage\",\"subscriber_id\":1,"
                         "\"partner_id\":0,\"plan_id\":1,\"plan_version\":2"),
            std::string::npos)
      << charges;
}

TEST_P(LedgerTest, AShortBalanceIsFlaggedNotDropped) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);  // balance 0 after the fee
  auto s = ledger_->RateUsage({Voice("roam", 1, "2024-01-11T10:00:00Z", 120, true)});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->rated, 1);
  EXPECT_EQ(s->insufficient, 1);
  EXPECT_EQ(Balance(1), -200);
  EXPECT_NE(Outbox("charge").find("\"insufficient_balance\":true,\"balance_minor\":-200"),
            std::string::npos);
  // Unknown subscribers are recorded at zero and counted, not dropped.
  auto unknown = ledger_->RateUsage({Voice("ghost", 42, "2024-01-11T10:00:00Z", 60)});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->no_account, 1);
  EXPECT_NE(Outbox("charge").find("\"event_id\":\"c:ghost\""), std::string::npos);
}

TEST_P(LedgerTest, PostpaidChargesAccumulateOnTheInvoiceAndCyclesClose) {
  Activate(5, 2, "2024-01-05T00:00:00Z");
  ASSERT_TRUE(ledger_->RateUsage({Voice("p1", 5, "2024-01-06T00:00:00Z", 101 * 60)})
                  .ok());  // 1 min overage
  auto a = ledger_->Account(SubscriberId(5));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->balance_minor, 0);
  ASSERT_TRUE(a->open_invoice_id.has_value());
  EXPECT_EQ(a->open_invoice_minor, 3000 + 10);
  ASSERT_TRUE(ledger_->AdvanceTo(T("2024-03-06T00:00:00Z")).ok());
  auto invoices = ledger_->Invoices(SubscriberId(5));
  ASSERT_TRUE(invoices.ok());
  ASSERT_EQ(invoices->size(), 3u);
  EXPECT_TRUE((*invoices)[0].closed);
  EXPECT_EQ((*invoices)[0].total_minor, 3010);
  EXPECT_EQ((*invoices)[0].period_end, D("2024-02-05"));
  EXPECT_TRUE((*invoices)[1].closed);
  EXPECT_EQ((*invoices)[1].total_minor, 3000);
  EXPECT_FALSE((*invoices)[2].closed);
  EXPECT_EQ((*invoices)[2].period_start, D("2024-03-05"));
  EXPECT_EQ(Recharge("pp", 5, 100, "2024-03-06T00:00:00Z").status().code(),
            Status::Code::kInvalidArgument);
}

TEST_P(LedgerTest, PlanChangesAreProratedByRemainingDays) {
  Activate(1, 1, "2024-01-01T00:00:00Z", 10000);  // cycle 2024-01-01 .. 2024-02-01 (31 days)
  auto change = ledger_->ChangePlan(SubscriberId(1), PlanId(3), T("2024-01-21T09:00:00Z"));
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  // 11 of 31 days remain (the 21st to the 31st).
  EXPECT_EQ(change->credit_minor, 2000 * 11 / 31);
  EXPECT_EQ(change->charge_minor, 4000 * 11 / 31);
  EXPECT_EQ(change->balance_minor, 10000 - 2000 + 2000 * 11 / 31 - 4000 * 11 / 31);
  auto a = ledger_->Account(SubscriberId(1));
  EXPECT_EQ(a->plan_id, PlanId(3));
  EXPECT_EQ(a->voice_min_left, 100 * 11 / 31);
  EXPECT_EQ(
      ledger_->ChangePlan(SubscriberId(1), PlanId(2), T("2024-01-22T00:00:00Z")).status().code(),
      Status::Code::kInvalidArgument);  // prepaid to postpaid
  // The next cycle charges the new plan's full fee.
  const int64_t before = Balance(1);
  ASSERT_TRUE(ledger_->AdvanceTo(T("2024-02-01T00:00:00Z")).ok());
  EXPECT_EQ(Balance(1), before - 4000);
  EXPECT_NE(Outbox("lifecycle").find("\"kind\":\"plan_change\""), std::string::npos);
}

TEST_P(LedgerTest, StateSurvivesARestart) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 5000);
  ASSERT_TRUE(Recharge("k", 1, 1000, "2024-01-11T00:00:00Z").ok());
  ASSERT_TRUE(ledger_->RateUsage({Voice("x", 1, "2024-01-11T10:00:00Z", 120, true)}).ok());
  const int64_t balance = Balance(1);
  Reopen();
  EXPECT_EQ(Balance(1), balance);
  auto again = ledger_->RateUsage({Voice("x", 1, "2024-01-11T10:00:00Z", 120, true)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_rated, 1);
  auto replay = Recharge("k", 1, 1000, "2024-01-11T00:00:00Z");
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(Balance(1), balance);
}

TEST_P(LedgerTest, TheOutboxIsDeliveredInOrderAndThenForgotten) {
  Activate(1, 1, "2024-01-10T00:00:00Z");
  ASSERT_TRUE(Recharge("k", 1, 1000, "2024-01-11T00:00:00Z").ok());
  auto pending = ledger_->PendingOutbox(100);
  ASSERT_TRUE(pending.ok());
  ASSERT_FALSE(pending->empty());
  for (size_t i = 1; i < pending->size(); ++i) EXPECT_LT((*pending)[i - 1].seq, (*pending)[i].seq);
  ASSERT_TRUE(ledger_->MarkDelivered(pending->back().seq).ok());
  EXPECT_TRUE(ledger_->PendingOutbox(100)->empty());
  Reopen();
  EXPECT_TRUE(ledger_->PendingOutbox(100)->empty());
}

// The ledger belongs to one process at a time (SQLite: a file lock; PostgreSQL: an advisory lock in
// its database); a second opener is refused with a message that says so, until the first closes.
TEST_P(LedgerTest, OnlyOneOpenerAtATimeAndTheSecondIsToldWhy) {
  LedgerOptions quick;
  quick.lock_wait = std::chrono::milliseconds(200);
  auto second = OpenLedger(quick);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(second.status().message().find("open in another tally process"), std::string::npos)
      << second.status().ToString();
  ledger_.reset();
  auto after = OpenLedger(quick);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
}

// A write the store refuses in the middle of an operation (here a trigger refuses the journal row
// of a recharge of 666) fails that operation alone and undoes all of it: the recharge row written
// before, and the balance in memory. On PostgreSQL the refusal arrives late, when the operation
// ends (writes are pipelined), which is the path this covers there.
TEST_P(LedgerTest, AWriteRefusedMidOperationUndoesTheWholeOperation) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);
  Status fault;
  if (GetParam() == Backend::kPostgres) {
    fault = postgres_->Exec(
        "CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.amount_minor = 666 THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; "
        "END $$; CREATE TRIGGER refuse_666 BEFORE INSERT ON journal FOR EACH ROW "
        "EXECUTE FUNCTION refuse_666()",
        database_);
  } else {
    auto db = SqliteDb::Open(dir_ + "/ledger.sqlite");
    fault = db.ok() ? (*db)->Exec(
                          "CREATE TRIGGER refuse_666 BEFORE INSERT ON journal "
                          "WHEN NEW.amount_minor = 666 BEGIN "
                          "SELECT RAISE(ABORT, 'injected fault'); END")
                    : db.status();
  }
  ASSERT_TRUE(fault.ok()) << fault.ToString();
  auto refused = Recharge("k666", 1, 666, "2024-01-11T00:00:00Z");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("injected fault"), std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(Balance(1), 0);
  // The ledger goes on: other calls succeed, and the refused key was never stored.
  auto next = Recharge("k100", 1, 100, "2024-01-11T00:00:00Z");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->balance_minor, 100);
  auto retry = Recharge("k666", 1, 666, "2024-01-11T00:00:00Z");
  EXPECT_FALSE(retry.ok());
  EXPECT_EQ(Balance(1), 100);
  Reopen();
  EXPECT_EQ(Balance(1), 100);
  EXPECT_EQ(Outbox("recharge").find("\"amount_minor\":666"), std::string::npos);
}

// Many threads recharge overlapping accounts; each request is sent once, some twice at the same
// time, some retried later. The balances are exactly the sums of the distinct keys.
TEST_P(LedgerTest, ConcurrentRechargesWithDuplicatesAndRetriesSumExactly) {
  constexpr int kAccounts = 20, kThreads = 8, kPerThread = 400;
  for (int i = 1; i <= kAccounts; ++i) Activate(i, 1, "2024-01-01T00:00:00Z", 2000);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        // Keys are shared across threads: thread t and t^1 send the same keys (duplicates).
        const int k = (t / 2) * kPerThread + i;
        const int64_t sub = 1 + k % kAccounts;
        const int64_t amount = 100 + k % 7;
        const int sends = 1 + static_cast<int>(rng() % 3);
        for (int s = 0; s < sends; ++s) {
          auto r = Recharge("key-" + std::to_string(k), sub, amount, "2024-01-02T00:00:00Z");
          if (!r.ok()) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::map<int64_t, int64_t> expected;
  for (int k = 0; k < (kThreads / 2) * kPerThread; ++k) expected[1 + k % kAccounts] += 100 + k % 7;
  for (const auto& [sub, sum] : expected) EXPECT_EQ(Balance(sub), sum) << "subscriber " << sub;
}

// A child process recharges in a loop and reports each acknowledged key; it is killed with
// SIGKILL mid-stream. After a restart every acknowledged recharge is there, and retrying every key
// (acknowledged or not) credits each exactly once. On PostgreSQL the server outlives the killed
// client, which is what makes an acknowledged commit durable there; reopening also waits for the
// dead client's session to end and let go of the ledger's lock.
TEST_P(LedgerTest, KillNineLosesNoAcknowledgedRechargeAndNeverCreditsTwice) {
  constexpr int kAccounts = 5;
  for (int i = 1; i <= kAccounts; ++i) Activate(i, 1, "2024-01-01T00:00:00Z", 2000);
  ledger_.reset();
  int next_key = 0;
  std::set<int> acked;
  for (int round = 0; round < 3; ++round) {
    int fds[2], ready[2];
    ASSERT_EQ(pipe(fds), 0);
    ASSERT_EQ(pipe(ready), 0);
    const int first = next_key;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      close(ready[0]);
      auto l = OpenLedger();
      if (!l.ok()) _exit(3);
      // Opening takes a connection, a lock and a load on PostgreSQL: the clock starts after it.
      if (write(ready[1], "r", 1) != 1) _exit(4);
      // Several writers at once, so groups of many requests are in flight when the kill lands.
      std::vector<std::thread> ws;
      std::atomic<int> k{first};
      for (int w = 0; w < 4; ++w) {
        ws.emplace_back([&] {
          for (;;) {
            int key = k++;
            RechargeRequest r;
            r.idempotency_key = "crash-" + std::to_string(key);
            r.subscriber_id = SubscriberId(1 + key % kAccounts);
            r.amount_minor = 10 + key % 3;
            r.ts = *ParseTimestamp("2024-01-02T00:00:00Z");
            if ((*l)->Recharge(r).ok()) {
              if (write(fds[1], &key, sizeof key) != sizeof key) _exit(4);
            }
          }
        });
      }
      for (auto& w : ws) w.join();
      _exit(0);
    }
    close(fds[1]);
    close(ready[1]);
    char opened = 0;
    ASSERT_EQ(read(ready[0], &opened, 1), 1) << "round " << round << ": the child could not open "
                                             << "the ledger";
    close(ready[0]);
    usleep(150000 + round * 50000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    int key;
    int max_key = first;
    while (read(fds[0], &key, sizeof key) == sizeof key) {
      acked.insert(key);
      max_key = std::max(max_key, key + 1);
    }
    close(fds[0]);
    next_key = max_key + 16;  // keys past the last acknowledged one may have been started
    ASSERT_GT(acked.size(), 0u) << "round " << round;
  }
  Open();
  // Every acknowledged key is stored: a retry is a replay.
  for (int key : acked) {
    auto r = Recharge("crash-" + std::to_string(key), 1 + key % kAccounts, 10 + key % 3,
                      "2024-01-02T00:00:00Z");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->replayed) << "acknowledged key " << key << " was lost";
  }
  // Retry every key that may have been sent; each credits once.
  std::map<int64_t, int64_t> expected;
  for (int key = 0; key < next_key; ++key) {
    auto r = Recharge("crash-" + std::to_string(key), 1 + key % kAccounts, 10 + key % 3,
                      "2024-01-02T00:00:00Z");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    expected[1 + key % kAccounts] += 10 + key % 3;
  }
  for (const auto& [sub, sum] : expected) EXPECT_EQ(Balance(sub), sum) << "subscriber " << sub;
  // The outbox caught up with the ledger: each stored recharge has its event, once, and no event
  // is there without its recharge (both are written in one transaction).
  std::set<std::string> events;
  size_t lines = 0;
  const std::string outbox = Outbox("recharge");
  for (size_t at = outbox.find("\"event_id\":\""); at != std::string::npos;
       at = outbox.find("\"event_id\":\"", at + 1)) {
    const size_t from = at + 12;
    events.insert(outbox.substr(from, outbox.find('"', from) - from));
    ++lines;
  }
  EXPECT_EQ(lines, static_cast<size_t>(next_key));
  EXPECT_EQ(events.size(), static_cast<size_t>(next_key));
}

// PostgreSQL only: the ledger's server session ends under it (a restart, a failover, an
// administrator). Every call fails from then on, saying so, rather than running on state whose
// last commit may or may not have happened; reopening reloads what the database has.
using PostgresLedgerTest = LedgerTest;
INSTANTIATE_TEST_SUITE_P(Backends, PostgresLedgerTest, ::testing::Values(Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>&) { return "postgres"; });

TEST_P(PostgresLedgerTest, ALostConnectionFailsEveryCallUntilTheLedgerIsReopened) {
  Activate(1, 1, "2024-01-10T00:00:00Z", 2000);
  ASSERT_TRUE(Recharge("before", 1, 500, "2024-01-11T00:00:00Z").ok());
  ASSERT_TRUE(
      postgres_
          ->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                 database_ + "' AND application_name = 'tally ledger'")
          .ok());
  for (int i = 0; i < 2; ++i) {
    auto lost = Recharge("after", 1, 500, "2024-01-11T00:00:00Z");
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.status().code(), Status::Code::kUnavailable) << lost.status().ToString();
    EXPECT_NE(lost.status().message().find("lost the connection"), std::string::npos)
        << lost.status().ToString();
  }
  Reopen();
  EXPECT_EQ(Balance(1), 500);
  auto after = Recharge("after", 1, 500, "2024-01-11T00:00:00Z");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_FALSE(after->replayed);
  EXPECT_EQ(Balance(1), 1000);
}

// `ledger.backend` picks the ledger of every command; here `tally ledger` (no --data needed) writes
// to this test's PostgreSQL database, and a bad setting is a usage error that names it.
TEST_P(PostgresLedgerTest, TheCliUsesTheLedgerThatLedgerBackendNames) {
  ledger_.reset();  // the command must be able to take the ledger's lock
  const std::string env = "TALLY_LEDGER_BACKEND=postgres TALLY_LEDGER_POSTGRES_URL='" +
                          postgres_->ConnInfo(database_) + "'";
  auto run = testing::RunTally(
      "ledger activate --subscriber 7 --partner 0 --plan 1 --region 'North America' "
      "--ts 2024-01-10T00:00:00Z --opening-balance 5000",
      env);
  ASSERT_EQ(run.code, 0) << run.out;
  Open();
  EXPECT_EQ(Balance(7), 3000);
  ledger_.reset();
  run = testing::RunTally("ledger balance --subscriber 7", "TALLY_LEDGER_BACKEND=postgres");
  EXPECT_EQ(run.code, 2) << run.out;
  EXPECT_NE(run.out.find("ledger.postgres_url is empty"), std::string::npos) << run.out;
  run = testing::RunTally("ledger balance --subscriber 7 --data " + dir_,
                          "TALLY_LEDGER_BACKEND=oracle");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.out.find("expected sqlite or postgres"), std::string::npos) << run.out;
}

// A machine without PostgreSQL fails the PostgreSQL tests with a message that says what to
// install, rather than skipping them.
TEST(PostgresLocalServerTest, MissingBinariesAreAnErrorThatSaysWhatToInstall) {
  PostgresLocalServer::Options o;
  o.dir = testing::TempDir("postgres_missing");
  o.bin_dir = o.dir + "/no-such-bin";
  auto server = PostgresLocalServer::Start(o);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), Status::Code::kNotFound);
  EXPECT_NE(server.status().message().find("postgresql-15"), std::string::npos)
      << server.status().ToString();
  std::filesystem::remove_all(o.dir);
}

}  // namespace
}  // namespace tally
