// `tally serve` as a real process: HTTP ingest with gzip and CSV, retries never double count,
// and an acknowledged batch survives kill -9.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "api/http_client.h"
#include "ingest/gzip.h"
#include "serve_fixture.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string UsageLine(const std::string& id, int minute) {
  return "{\"event_id\":\"" + id + "\",\"ts\":\"2024-07-0" + std::to_string(1 + minute % 5) +
         "T10:" + (minute % 60 < 10 ? "0" : "") + std::to_string(minute % 60) +
         ":00Z\",\"kind\":\"data_session\",\"subscriber_id\":" + std::to_string(1 + minute % 50) +
         ",\"partner_id\":0,\"duration_s\":30,\"bytes\":1000,\"roaming\":false,\"session_ref\":"
         "\"r\"}\n";
}

TEST(Serve, HttpIngestAcceptsNdjsonCsvAndGzipAndRetriesAreDuplicates) {
  const std::string dir = TempDir("serve_http");
  Server server(dir, FreePort());
  server.Start();
  HttpClient c("127.0.0.1", server.port());
  server.Authorize(c);
  std::string body;
  for (int i = 0; i < 100; ++i) body += UsageLine("h" + std::to_string(i), i);
  auto r = c.Post("/v1/ingest/usage", Gzip(body), "application/x-ndjson",
                  {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"accepted\":100"), std::string::npos) << r->body;
  // The client retries (it never saw the answer): nothing is counted twice.
  r = c.Post("/v1/ingest/usage", body, "application/x-ndjson");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"duplicate\":100"), std::string::npos) << r->body;
  // CSV with a bad row: the good rows are stored, the bad one is reported with its line.
  r = c.Post("/v1/ingest/recharge",
             "event_id,ts,subscriber_id,partner_id,amount_minor,currency,channel,payment_status\n"
             "rc1,2024-07-01T10:00:00Z,1,0,500,USD,app,succeeded\n"
             "rc2,2024-07-01T11:00:00Z,1,0,-5,USD,app,succeeded\n"
             "rc3,2024-07-01T12:00:00Z,1,0,700,USD,carrier_pigeon,succeeded\n",
             "text/csv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"accepted\":1"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("{\"line\":3,\"field\":\"amount_minor\",\"check\":\"range\""),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("{\"line\":4,\"field\":\"channel\",\"check\":\"accepted_values\""),
            std::string::npos)
      << r->body;
  // Truncated gzip: 400 naming the problem, nothing stored.
  std::string gz = Gzip(UsageLine("t1", 1));
  r = c.Post("/v1/ingest/usage", gz.substr(0, gz.size() / 2), "application/x-ndjson",
             {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("truncated gzip"), std::string::npos) << r->body;
  // Unknown family, and a CSV body whose header names an unknown column.
  r = c.Post("/v1/ingest/telepathy", body, "application/x-ndjson");
  EXPECT_EQ(r->status, 404);
  // Charges come only from the ledger's outbox.
  r = c.Post("/v1/ingest/charge", "{}\n", "application/x-ndjson");
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("only by the ledger"), std::string::npos) << r->body;
  r = c.Post("/v1/ingest/usage", "event_id,mood\nx,happy\n", "text/csv");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("unknown column 'mood'"), std::string::npos) << r->body;
  // Reports are stored and listed.
  r = c.Get("/v1/loads?limit=10");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"table\":\"recharge\""), std::string::npos);
  r = c.Get("/v1/partitions");
  EXPECT_NE(r->body.find("\"family\":\"usage\""), std::string::npos) << r->body;
  EXPECT_EQ(WEXITSTATUS(server.Kill(SIGTERM)), 0);
  StoreFixture s(dir);
  EXPECT_EQ(s.Rows(EventFamily::kUsage), 100);
  EXPECT_EQ(s.Rows(EventFamily::kRecharge), 1);
  fs::remove_all(dir);
}

TEST(Serve, MetricQueriesAnswerOverHttpAndSeeNewlyIngestedData) {
  const std::string dir = TempDir("serve_metrics");
  Server server(dir, FreePort());
  server.Start();
  HttpClient c("127.0.0.1", server.port());
  server.Authorize(c);
  std::string body;
  for (int i = 0; i < 100; ++i) body += UsageLine("m" + std::to_string(i), i);
  auto r = c.Post("/v1/ingest/usage", body, "application/x-ndjson");
  ASSERT_TRUE(r.ok() && r->status == 200);
  const std::string query =
      R"({"measures": ["data_sessions", "data_gb"], "timeDimensions": [{"dimension": "time",
          "dateRange": ["2024-07-01", "2024-07-05"]}]})";
  r = c.Post("/v1/query", query, "application/json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"rows\":[[100,0.0001]]"), std::string::npos) << r->body;
  EXPECT_EQ(r->headers["x-tally-source"], "rollup_segment_day");
  EXPECT_EQ(r->headers["x-tally-cache"], "miss");
  r = c.Post("/v1/query", query, "application/json");
  EXPECT_EQ(r->headers["x-tally-cache"], "hit");
  // Cache-Control: no-cache computes the answer now.
  r = c.Post("/v1/query", query, "application/json", {{"Cache-Control", "no-cache"}});
  EXPECT_EQ(r->headers["x-tally-cache"], "miss");
  EXPECT_NE(r->body.find("\"rows\":[[100,0.0001]]"), std::string::npos) << r->body;
  // New rows: the cached answer is not served.
  std::string more;
  for (int i = 100; i < 110; ++i) more += UsageLine("m" + std::to_string(i), i);
  ASSERT_EQ(c.Post("/v1/ingest/usage", more, "application/x-ndjson")->status, 200);
  r = c.Post("/v1/query", query, "application/json");
  EXPECT_NE(r->body.find("\"rows\":[[110,"), std::string::npos) << r->body;
  EXPECT_EQ(r->headers["x-tally-cache"], "miss");
  // CSV export of the same query.
  r = c.Post("/v1/query?format=csv", query, "application/json");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "data_sessions,data_gb\r\n110,0.00011\r\n");
  EXPECT_NE(r->headers["content-type"].find("text/csv"), std::string::npos);
  // A bad query is a 400 naming the field; the catalogue is served.
  r = c.Post("/v1/query", R"({"measures": ["data_gb"], "limit": -1})", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("limit: must be an integer"), std::string::npos) << r->body;
  r = c.Get("/v1/metrics");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"name\":\"arpu\""), std::string::npos);
  // One subscriber's usage series and summary (UsageLine spreads 110 records over subscribers
  // 1..50 and 2024-07-01..05; subscriber 1 has minutes 0, 50 and 100, all on 2024-07-01).
  r = c.Get("/v1/subscribers/1/usage?from=2024-07-01&to=2024-07-05");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("[\"2024-07-01T00:00:00Z\",3,"), std::string::npos) << r->body;
  // Answered from the in-memory subscriber index (the same numbers as the store's rollup;
  // MetricsWorldTest.TheSubscriberIndexAnswersLikeTheStore), not the store.
  EXPECT_EQ(r->headers["x-tally-source"], "memory:subscriber_day");
  const std::string indexed = r->body;
  // By the hour, neither the index nor the daily rollup answers: raw events do, with the same
  // counts.
  r = c.Get("/v1/subscribers/1/usage?from=2024-07-01&to=2024-07-05&granularity=hour");
  EXPECT_EQ(r->headers["x-tally-source"], "events:usage,recharge,charge");
  EXPECT_NE(r->body.find("[\"2024-07-01T10:00:00Z\",3,"), std::string::npos) << r->body;
  r = c.Get("/v1/subscribers/1/summary?from=2024-07-01&to=2024-07-05");
  EXPECT_NE(r->body.find("\"rows\":[[3,"), std::string::npos) << r->body;
  r = c.Get("/v1/subscribers/1/usage?from=July&to=2024-07-05");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("?from:"), std::string::npos) << r->body;
  r = c.Get("/v1/subscribers/x/usage");
  EXPECT_EQ(r->status, 400);
  // The ledger's routes under /v1/subscribers still answer.
  r = c.Get("/v1/subscribers/1/balance");
  EXPECT_EQ(r->status, 404) << r->body;  // no account in this ledger
  EXPECT_NE(r->body.find("no account"), std::string::npos) << r->body;
  EXPECT_EQ(WEXITSTATUS(server.Kill(SIGTERM)), 0);
  fs::remove_all(dir);
}

// Batches are sent (and retried until acknowledged) while the server is killed with SIGKILL and
// restarted several times. Afterwards the store holds every acknowledged event exactly once.
TEST(Serve, AcknowledgedBatchesSurviveKillMinus9AndRetriesNeverDoubleCount) {
  const std::string dir = TempDir("serve_kill");
  Server server(dir, FreePort());
  server.Start();
  constexpr int kBatches = 120, kPerBatch = 250;
  std::atomic<int> acked{0};
  std::atomic<int> failures{0};
  std::atomic<bool> kills_over{false};
  std::thread client([&] {
    HttpClient c("127.0.0.1", server.port(), 5s);
    server.Authorize(c);
    std::mt19937 rng(7);
    // At least kBatches, and on until the last kill is over: a fast machine must not finish
    // before the kills begin.
    for (int b = 0; b < kBatches || !kills_over; ++b) {
      std::string body;
      for (int i = 0; i < kPerBatch; ++i)
        body += UsageLine("k" + std::to_string(b) + "-" + std::to_string(i), b + i);
      // Retry until acknowledged; sometimes send an acknowledged batch again, as a client that
      // lost the answer would.
      int sends = (rng() % 5 == 0) ? 2 : 1;
      while (sends > 0) {
        auto r = c.Post("/v1/ingest/usage", body, "application/x-ndjson");
        if (r.ok() && r->status == 200) {
          --sends;
          continue;
        }
        ++failures;
        std::this_thread::sleep_for(20ms);
      }
      ++acked;
    }
  });
  std::mt19937 rng(11);
  for (int kill = 0; kill < 4; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    server.Kill(SIGKILL);
    std::this_thread::sleep_for(100ms);
    server.Start();
  }
  kills_over = true;
  client.join();
  EXPECT_GT(failures.load(), 0) << "the kills should have interrupted some requests";
  EXPECT_GE(acked.load(), kBatches);
  EXPECT_EQ(WEXITSTATUS(server.Kill(SIGTERM)), 0);
  StoreFixture s(dir);
  EXPECT_EQ(s.Rows(EventFamily::kUsage), int64_t{acked.load()} * kPerBatch);
  EXPECT_EQ(s.DistinctIds(EventFamily::kUsage), int64_t{acked.load()} * kPerBatch);
  fs::remove_all(dir);
  fs::remove(dir + ".log");
}

int64_t JsonInt(const std::string& body, const std::string& key) {
  size_t at = body.find("\"" + key + "\":");
  if (at == std::string::npos) return INT64_MIN;
  return std::stoll(body.substr(at + key.size() + 3));
}

// Recharges through the ledger's HTTP endpoint, retried until acknowledged, while the server is
// killed with SIGKILL and restarted: no acknowledged recharge is lost, none credits twice, and the
// outbox catches up, so the store holds each recharge once and reconciles with the ledger.
TEST(Serve, LedgerRechargesSurviveKillMinus9AndTheOutboxCatchesUp) {
  const std::string dir = TempDir("serve_ledger_kill");
  const std::string world = TempDir("serve_ledger_world");
  ASSERT_EQ(RunTally("generate --out " + world + " --subscribers 20 --days 3 --quiet").code, 0);
  ASSERT_EQ(RunTally("ledger --data " + dir + " import-partners " + world + "/partners.csv").code,
            0);
  ASSERT_EQ(RunTally("ledger --data " + dir + " import-plans " + world + "/plans.csv").code, 0);
  // The client retries as fast as it can, so the key's rate limit (tested elsewhere) is lifted:
  // a 429 would fail the replays below for a reason this test is not about.
  Server server(dir, FreePort(),
                {"TALLY_SERVE_RATE_PER_KEY=1000000", "TALLY_SERVE_BURST_PER_KEY=1000000"});
  server.Start();
  constexpr int kAccounts = 4, kRecharges = 800;
  std::map<int, int64_t> expected;  // subscriber -> balance after activation, plus its recharges
  {
    HttpClient c("127.0.0.1", server.port(), 5s);
    server.Authorize(c);
    for (int sub = 1; sub <= kAccounts; ++sub) {
      auto r = c.Post("/v1/subscribers",
                      "{\"subscriber_id\":" + std::to_string(sub) +
                          ",\"partner_id\":0,\"plan_id\":1,\"region\":\"North America\"}",
                      "application/json");
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 201) << r->body;
      expected[sub] = JsonInt(r->body, "balance_minor");
    }
  }
  for (int k = 0; k < kRecharges; ++k) expected[1 + k % kAccounts] += 100 + k % 9;
  std::atomic<int> failures{0};
  std::atomic<int> acked{0};
  std::thread client([&] {
    HttpClient c("127.0.0.1", server.port(), 5s);
    server.Authorize(c);
    for (int k = 0; k < kRecharges; ++k) {
      const std::string body = "{\"subscriber_id\":" + std::to_string(1 + k % kAccounts) +
                               ",\"amount_minor\":" + std::to_string(100 + k % 9) + "}";
      for (;;) {
        auto r = c.Post("/v1/recharges", body, "application/json",
                        {{"Idempotency-Key", "pay-" + std::to_string(k)}});
        if (r.ok() && (r->status == 201 || r->status == 200)) break;
        ++failures;
        std::this_thread::sleep_for(20ms);
      }
      ++acked;
    }
  });
  // Kills at points of progress, not of time: a fast server must not finish before them.
  std::mt19937 rng(5);
  for (int threshold : {100, 300, 500}) {
    const int at = threshold + static_cast<int>(rng() % 100);
    while (acked.load() < at) std::this_thread::sleep_for(1ms);
    server.Kill(SIGKILL);
    std::this_thread::sleep_for(100ms);
    server.Start();
  }
  client.join();
  EXPECT_GT(failures.load(), 0) << "the kills should have interrupted some requests";
  HttpClient c("127.0.0.1", server.port(), 5s);
  server.Authorize(c);
  // Every recharge is stored once: sending it again replays it.
  for (int k = 0; k < kRecharges; k += 7) {
    auto r = c.Post("/v1/recharges",
                    "{\"subscriber_id\":" + std::to_string(1 + k % kAccounts) +
                        ",\"amount_minor\":" + std::to_string(100 + k % 9) + "}",
                    "application/json", {{"Idempotency-Key", "pay-" + std::to_string(k)}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  for (const auto& [sub, balance] : expected) {
    auto r = c.Get("/v1/subscribers/" + std::to_string(sub) + "/balance");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(JsonInt(r->body, "balance_minor"), balance)
        << "subscriber " << sub << ": " << r->body;
  }
  EXPECT_EQ(WEXITSTATUS(server.Kill(SIGTERM)), 0);
  // The outbox caught up: the store has every recharge once, and the totals reconcile.
  {
    StoreFixture s(dir);
    EXPECT_EQ(s.Rows(EventFamily::kRecharge), kRecharges);
    EXPECT_EQ(s.DistinctIds(EventFamily::kRecharge), kRecharges);
  }
  auto rec = RunTally("reconcile --data " + dir);
  EXPECT_EQ(rec.code, 0) << rec.out;
  fs::remove_all(dir);
  fs::remove_all(world);
  fs::remove(dir + ".log");
}

}  // namespace
}  // namespace tally::testing
