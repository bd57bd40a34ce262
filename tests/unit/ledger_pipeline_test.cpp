// The ledger inside the ingest path: usage ingested by the pipeline is rated in batches, the outbox
// relay delivers the ledger's events to the store exactly once (even when a delivery or a rating is
// repeated), and reconciliation finds the two sides equal, or names the day and figure that differ.

#include <gtest/gtest.h>

#include <filesystem>

#include "ingest/file_loader.h"
#include "ingest/pipeline.h"
#include "ledger/ledger.h"
#include "ledger/outbox_relay.h"
#include "ledger/reconcile.h"
#include "ledger/world_replay.h"
#include "store/duckdb/duckdb_event_store.h"
#include "world_fixture.h"

namespace tally {
namespace {

Timestamp T(const char* text) {
  return *ParseTimestamp(text);
}

class LedgerPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir(
        "ledger_pipeline_" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    DuckDbStoreOptions so;
    so.data_dir = dir_;
    auto s = DuckDbEventStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auto l = OpenSqliteLedger(dir_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    PipelineOptions po;
    po.validation.max_future_micros = int64_t{1} << 60;
    Ledger* ledger = ledger_.get();
    po.rate_usage = [ledger](const std::vector<UsageEvent>& usage) {
      return ledger->RateUsage(usage).status();
    };
    auto p = IngestPipeline::Start(store_.get(), store_->data_dir(), po);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    pipeline_ = std::move(*p);

    Partner own;
    own.partner_id = PartnerId(0);
    own.name = "Own";
    ASSERT_TRUE(ledger_->UpsertPartners({own}).ok());
    PlanVersion plan;
    plan.plan_id = PlanId(1);
    plan.name = "Basic Prepaid";
    plan.currency = *Currency::Parse("USD");
    plan.monthly_price_minor = 1000;
    plan.voice_minutes = 10;
    plan.data_mb = 100;
    plan.sms = 10;
    plan.overage_voice_per_min_minor = 7;
    plan.roaming_voice_per_min_minor = 90;
    plan.effective_from = *ParseDate("2024-01-01");
    ASSERT_TRUE(ledger_->AddPlanVersions({plan}).ok());
    for (int64_t sub = 1; sub <= 3; ++sub) {
      ActivateRequest r;
      r.subscriber_id = SubscriberId(sub);
      r.partner_id = PartnerId(0);
      r.plan_id = PlanId(1);
      r.ts = T("2024-01-10T00:00:00Z");
      r.opening_balance_minor = 5000;
      r.profile.msisdn = "+1212555000" + std::to_string(sub);
      ASSERT_TRUE(ledger_->Activate(r).ok());
    }
    Drain();
  }
  void TearDown() override {
    pipeline_.reset();
    ledger_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  RelayStats Drain() {
    auto r = OutboxRelay::DrainOnce(ledger_.get(), pipeline_.get());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RelayStats{};
  }
  IngestAck Ingest(EventFamily family, const std::string& body) {
    IngestRequest r;
    r.family = family;
    r.format = BodyFormat::kNdjson;
    r.body = body;
    r.source = "test";
    return pipeline_->Ingest(std::move(r));
  }
  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(pipeline_
                    ->RunExclusive([&](EventStore& store) -> Status {
                      TALLY_ASSIGN_OR_RETURN(
                          EventRelation rel,
                          store.Relation(EventFamily::kCharge,
                                         {T("2000-01-01T00:00:00Z"), T("2100-01-01T00:00:00Z")}));
                      TALLY_ASSIGN_OR_RETURN(
                          TextTable t, store.Query("SELECT " + sql + " FROM (" + rel.sql + ")"));
                      n = t.rows.at(0).at(0) ? std::stoll(*t.rows[0][0]) : 0;
                      return Status::Ok();
                    })
                    .ok());
    return n;
  }
  ReconcileReport MustReconcile() {
    auto r = Reconcile(ledger_.get(), pipeline_.get());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ReconcileReport{};
  }
  static std::string Calls(int first, int n, int64_t sub, bool roaming = false) {
    std::string body;
    for (int i = first; i < first + n; ++i) {
      body += "{\"event_id\":\"u" + std::to_string(i) +
              "\",\"ts\":\"2024-01-11T10:" + (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) +
              ":00Z\",\"kind\":\"voice_call\",\"subscriber_id\":" + std::to_string(sub) +
              ",\"partner_id\":0,\"duration_s\":120,\"destination\":\"off_net\",\"roaming\":" +
              (roaming ? "true" : "false") + ",\"session_ref\":\"s" + std::to_string(i) + "\"}\n";
    }
    return body;
  }

  std::string dir_;
  std::unique_ptr<DuckDbEventStore> store_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<IngestPipeline> pipeline_;
};

TEST_F(LedgerPipelineTest, IngestedUsageIsRatedAndTheChargesReachTheStoreOnce) {
  // Activation delivered the fees: one plan_fee entry per subscriber.
  EXPECT_EQ(Count("count(*) FILTER (WHERE entry = 'plan_fee')"), 3);
  IngestAck ack = Ingest(EventFamily::kUsage, Calls(0, 10, 1) + Calls(10, 5, 2, true));
  ASSERT_TRUE(ack.status.ok()) << ack.status.ToString();
  EXPECT_EQ(ack.counts.accepted, 15);
  Drain();
  // 10 calls of 2 minutes: 5 from the bundle, 5 overage at 7; 5 roaming calls at 2 x 90.
  EXPECT_EQ(Count("count(*) FILTER (WHERE entry = 'usage')"), 15);
  EXPECT_EQ(Count("sum(amount_minor) FILTER (WHERE entry = 'usage')"), 5 * 14 + 5 * 180);
  EXPECT_EQ(ledger_->Account(SubscriberId(1))->balance_minor, 5000 - 1000 - 70);
  ReconcileReport rec = MustReconcile();
  EXPECT_TRUE(rec.ok()) << rec.ToText();
  EXPECT_EQ(rec.unrated_usage, 0);

  // A client retry of the same body: duplicates in the store, nothing rated again.
  IngestAck retry = Ingest(EventFamily::kUsage, Calls(0, 10, 1));
  ASSERT_TRUE(retry.status.ok());
  EXPECT_EQ(retry.counts.duplicate, 10);
  Drain();
  EXPECT_EQ(Count("count(*) FILTER (WHERE entry = 'usage')"), 15);
  EXPECT_EQ(ledger_->Account(SubscriberId(1))->balance_minor, 5000 - 1000 - 70);
  EXPECT_TRUE(MustReconcile().ok());
}

// The pipeline rated a batch and crashed before its store commit; the client retries.
TEST_F(LedgerPipelineTest, ABatchRatedBeforeACrashIsNotChargedAgainOnRetry) {
  std::vector<UsageEvent> batch;
  {
    UsageEvent u;
    u.event_id = "crashy";
    u.ts = T("2024-01-12T09:00:00Z");
    u.kind = UsageKind::kVoiceCall;
    u.subscriber_id = SubscriberId(3);
    u.partner_id = PartnerId(0);
    u.duration_s = 60;
    u.roaming = true;
    u.session_ref = "x";
    batch.push_back(u);
  }
  ASSERT_TRUE(ledger_->RateUsage(batch).ok());
  const int64_t balance = ledger_->Account(SubscriberId(3))->balance_minor;
  IngestAck ack =
      Ingest(EventFamily::kUsage,
             "{\"event_id\":\"crashy\",\"ts\":\"2024-01-12T09:00:00Z\",\"kind\":\"voice_call\","
             "\"subscriber_id\":3,\"partner_id\":0,\"duration_s\":60,\"roaming\":true,\"session_"
             "ref\":\"x\"}\n");
  ASSERT_TRUE(ack.status.ok());
  EXPECT_EQ(ack.counts.accepted, 1);
  EXPECT_EQ(ledger_->Account(SubscriberId(3))->balance_minor, balance);
  Drain();
  EXPECT_EQ(Count("count(*) FILTER (WHERE entry = 'usage')"), 1);
  EXPECT_TRUE(MustReconcile().ok());
}

// The relay delivered a batch and crashed before marking it delivered: it is delivered again.
TEST_F(LedgerPipelineTest, ARedeliveredOutboxBatchIsCountedOnce) {
  RechargeRequest r;
  r.idempotency_key = "pay-1";
  r.subscriber_id = SubscriberId(2);
  r.amount_minor = 2500;
  r.ts = T("2024-01-15T12:00:00Z");
  ASSERT_TRUE(ledger_->Recharge(r).ok());
  auto pending = ledger_->PendingOutbox(100);
  ASSERT_TRUE(pending.ok());
  ASSERT_FALSE(pending->empty());
  for (const OutboxBatch& b : *pending) {
    if (b.table != "recharge") continue;
    EXPECT_TRUE(Ingest(EventFamily::kRecharge, b.body).status.ok());  // delivered, never marked
  }
  RelayStats again = Drain();
  EXPECT_GE(again.duplicates, 1);
  ReconcileReport rec = MustReconcile();
  EXPECT_TRUE(rec.ok()) << rec.ToText();
  ASSERT_FALSE(rec.ledger.empty());
}

TEST_F(LedgerPipelineTest, ReconcileNamesTheDayAndFigureThatDiffer) {
  // A recharge written to the store behind the ledger's back.
  ASSERT_TRUE(Ingest(EventFamily::kRecharge,
                     "{\"event_id\":\"rogue\",\"ts\":\"2024-01-20T10:00:00Z\",\"subscriber_id\":1,"
                     "\"partner_id\":0,"
                     "\"amount_minor\":999,\"currency\":\"USD\",\"channel\":\"retail\",\"payment_"
                     "status\":\"succeeded\"}\n")
                  .status.ok());
  ReconcileReport rec = MustReconcile();
  ASSERT_FALSE(rec.ok());
  ASSERT_EQ(rec.mismatches.size(), 2u);
  EXPECT_EQ(FormatDate(rec.mismatches[0].day), "2024-01-20");
  EXPECT_EQ(rec.mismatches[0].figure, "recharges");
  EXPECT_EQ(rec.mismatches[1].figure, "recharge_minor");
  EXPECT_EQ(rec.mismatches[1].ledger, 0);
  EXPECT_EQ(rec.mismatches[1].store, 999);
  EXPECT_NE(rec.ToText().find("2024-01-20 recharge_minor: ledger 0, store 999"), std::string::npos)
      << rec.ToText();
}

}  // namespace
}  // namespace tally

namespace tally {
namespace {

// A generated world replayed through the ledger (what `tally load --ledger` and `make demo` do):
// every usage record is rated in time order, every recharge and lifecycle event reaches the store
// once with the world's event id, and the ledger reconciles with the store.
TEST(WorldReplay, AGeneratedWorldReplaysThroughTheLedgerAndReconciles) {
  const std::string world = testing::TempDir("replay_world");
  const std::string data = testing::TempDir("replay_data");
  GeneratorOptions go = testing::SmallWorld(world);
  go.subscribers = 120;
  go.days = 45;
  go.visitors_per_day = 60;
  go.chunk_subscribers = 50;  // several parts; acquired subscribers come in a later part
  GenerateReport gen = testing::MustGenerate(go);

  DuckDbStoreOptions so;
  so.data_dir = data;
  auto store = DuckDbEventStore::Open(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto ledger = OpenSqliteLedger(data);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  PipelineOptions po;
  po.validation.max_future_micros = int64_t{1} << 60;
  auto pipeline = IngestPipeline::Start(store->get(), (*store)->data_dir(), po);
  ASSERT_TRUE(pipeline.ok());

  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(world)) {
    const std::string name = e.path().filename().string();
    if (name != "lifecycle" && name != "recharge" && name != "manifest.json")
      files.push_back(e.path().string());
  }
  auto loaded = FileLoader(pipeline->get(), {}).Load(files);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();

  auto replay = ReplayWorld(world, ledger->get());
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  EXPECT_EQ(replay->failures, 0) << replay->ToText();
  EXPECT_EQ(replay->rating.rated, gen.stats.family_rows[int(EventFamily::kUsage)])
      << replay->ToText();
  EXPECT_EQ(replay->rating.no_account, 0);
  EXPECT_EQ(replay->rating.too_old, 0);
  EXPECT_GT(replay->activations, 0);  // the acquired subscribers, from a later part
  EXPECT_EQ(replay->recharges, gen.stats.family_rows[int(EventFamily::kRecharge)]);

  auto relayed = OutboxRelay::DrainOnce(ledger->get(), pipeline->get());
  ASSERT_TRUE(relayed.ok()) << relayed.status().ToString();
  EXPECT_EQ(relayed->rejected, 0);
  auto rec = Reconcile(ledger->get(), pipeline->get());
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->ok()) << rec->ToText();
  EXPECT_EQ(rec->unrated_usage, 0) << rec->ToText();
  // The store holds exactly the world's recharge and lifecycle events (same ids, once each).
  auto count = [&](EventFamily f) {
    int64_t n = -1;
    EXPECT_TRUE(
        (*pipeline)
            ->RunExclusive([&](EventStore& s) -> Status {
              TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                                     s.Relation(f, {Timestamp{0}, Timestamp{int64_t{1} << 60}}));
              TALLY_ASSIGN_OR_RETURN(
                  TextTable t, s.Query("SELECT count(DISTINCT event_id) FROM (" + rel.sql + ")"));
              n = std::stoll(*t.rows[0][0]);
              return Status::Ok();
            })
            .ok());
    return n;
  };
  EXPECT_EQ(count(EventFamily::kRecharge), gen.stats.family_rows[int(EventFamily::kRecharge)]);
  EXPECT_EQ(count(EventFamily::kLifecycle), gen.stats.family_rows[int(EventFamily::kLifecycle)]);
  pipeline->reset();
  ledger->reset();
  store->reset();
  std::filesystem::remove_all(world);
  std::filesystem::remove_all(data);
}

}  // namespace
}  // namespace tally
