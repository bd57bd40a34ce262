// Deadlines on store reads (IngestPipeline::RunExclusive with a deadline): a read still queued
// at its deadline is not run, one still running is interrupted in DuckDB, both fail with
// DeadlineExceeded, and the store answers the next query normally.
//
// Reads beside ingest (IngestPipeline::RunRead on the store's readers): they run while the writer
// is busy, they are interrupted at their deadline too, compaction waits for the reads in progress,
// and reads racing ingest and compaction see every acknowledged row once.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "store_fixture.h"
#include "world_fixture.h"

namespace tally {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// About a minute of work for DuckDB on this machine, were it not stopped.
constexpr const char* kSlowSql = "SELECT count(*) FROM range(100000000000) t WHERE t.range % 7 = 3";

TEST(Deadline, ARunningReadIsInterruptedAndTheNextQueryWorks) {
  const std::string dir = testing::TempDir("deadline_running");
  {
    testing::StoreFixture f(dir);
    const auto t0 = Clock::now();
    Status st = f.pipeline().RunExclusive(
        [](EventStore& store) { return store.Query(kSlowSql).status(); }, t0 + 300ms);
    const auto took = Clock::now() - t0;
    EXPECT_EQ(st.code(), Status::Code::kDeadlineExceeded) << st.ToString();
    EXPECT_NE(st.message().find("300 ms"), std::string::npos) << st.message();
    EXPECT_LT(took, 30s) << "the query was not interrupted";
    TextTable t;
    Status next = f.pipeline().RunExclusive(
        [&](EventStore& store) {
          TALLY_ASSIGN_OR_RETURN(t, store.Query("SELECT 41 + 1"));
          return Status::Ok();
        },
        Clock::now() + 10s);
    ASSERT_TRUE(next.ok()) << next.ToString();
    EXPECT_EQ(t.rows.at(0).at(0), "42");
  }
  std::filesystem::remove_all(dir);
}

TEST(Deadline, AReadQueuedPastItsDeadlineIsNotRun) {
  const std::string dir = testing::TempDir("deadline_queued");
  {
    testing::StoreFixture f(dir);
    std::thread busy([&] {
      (void)f.pipeline().RunExclusive([](EventStore&) {
        std::this_thread::sleep_for(600ms);  // the writer is busy (a long commit, say)
        return Status::Ok();
      });
    });
    std::this_thread::sleep_for(100ms);
    bool ran = false;
    Status st = f.pipeline().RunExclusive(
        [&](EventStore&) {
          ran = true;
          return Status::Ok();
        },
        Clock::now() + 200ms);
    busy.join();
    EXPECT_EQ(st.code(), Status::Code::kDeadlineExceeded) << st.ToString();
    EXPECT_NE(st.message().find("behind ingest"), std::string::npos) << st.message();
    EXPECT_FALSE(ran);
    // A read that finishes in time is untouched.
    EXPECT_TRUE(f.pipeline()
                    .RunExclusive([](EventStore& s) { return s.Query("SELECT 1").status(); },
                                  Clock::now() + 10s)
                    .ok());
  }
  std::filesystem::remove_all(dir);
}

std::string UsageLine(int batch, int i) {
  const int minute = (batch * 7 + i) % 60;
  return "{\"event_id\":\"b" + std::to_string(batch) + "-" + std::to_string(i) +
         "\",\"ts\":\"2024-07-0" + std::to_string(1 + i % 5) + "T10:" + (minute < 10 ? "0" : "") +
         std::to_string(minute) + ":00Z\",\"kind\":\"data_session\",\"subscriber_id\":" +
         std::to_string(1 + i % 50) +
         ",\"partner_id\":0,\"duration_s\":30,\"bytes\":1000,\"roaming\":false,"
         "\"session_ref\":\"r\"}\n";
}

// Rows and distinct ids of the usage family, read through `store`.
Status CountUsage(StoreReader& store, int64_t* rows, int64_t* ids) {
  TALLY_ASSIGN_OR_RETURN(
      EventRelation rel,
      store.Relation(EventFamily::kUsage,
                     TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})}));
  TALLY_ASSIGN_OR_RETURN(TextTable t,
                         store.Query("SELECT count(*), count(DISTINCT event_id) FROM (" + rel.sql + ")"));
  *rows = std::stoll(t.rows.at(0).at(0).value_or("-1"));
  *ids = std::stoll(t.rows.at(0).at(1).value_or("-1"));
  return Status::Ok();
}

TEST(StoreReaders, AReadRunsWhileTheWriterIsBusy) {
  const std::string dir = testing::TempDir("readers_busy_writer");
  {
    testing::StoreFixture f(dir);
    std::promise<void> read_done;
    std::future<void> read_done_f = read_done.get_future();
    std::atomic<bool> read_while_busy{false};
    // The writer holds until the read is done (or 30 s pass): the read cannot be queued on it.
    std::thread busy([&] {
      (void)f.pipeline().RunExclusive([&](EventStore&) {
        read_while_busy = read_done_f.wait_for(30s) == std::future_status::ready;
        return Status::Ok();
      });
    });
    std::this_thread::sleep_for(100ms);
    TextTable t;
    Status st = f.pipeline().RunRead([&](StoreReader& r) {
      TALLY_ASSIGN_OR_RETURN(t, r.Query("SELECT 41 + 1"));
      return Status::Ok();
    });
    read_done.set_value();
    busy.join();
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(t.rows.at(0).at(0), "42");
    EXPECT_TRUE(read_while_busy) << "the read waited for the writer";
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreReaders, WithNoReadConnectionsReadsRunOnTheWriterThread) {
  const std::string dir = testing::TempDir("readers_none");
  {
    PipelineOptions o;
    o.read_connections = 0;
    testing::StoreFixture f(dir, o);
    std::thread::id reader_thread, writer_thread;
    ASSERT_TRUE(f.pipeline()
                    .RunExclusive([&](EventStore&) {
                      writer_thread = std::this_thread::get_id();
                      return Status::Ok();
                    })
                    .ok());
    for (auto deadline : {std::optional<Clock::time_point>(), std::optional(Clock::now() + 10s)}) {
      Status st = f.pipeline().RunRead(
          [&](StoreReader& r) {
            reader_thread = std::this_thread::get_id();
            return r.Query("SELECT 1").status();
          },
          deadline);
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(reader_thread, writer_thread);
      EXPECT_NE(reader_thread, std::this_thread::get_id());
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreReaders, ARunningReadIsInterruptedAtItsDeadline) {
  const std::string dir = testing::TempDir("readers_deadline");
  {
    testing::StoreFixture f(dir);
    const auto t0 = Clock::now();
    Status st = f.pipeline().RunRead(
        [](StoreReader& r) { return r.Query(kSlowSql).status(); }, t0 + 300ms);
    EXPECT_EQ(st.code(), Status::Code::kDeadlineExceeded) << st.ToString();
    EXPECT_NE(st.message().find("ms allowed"), std::string::npos) << st.message();
    EXPECT_LT(Clock::now() - t0, 30s) << "the query was not interrupted";
    // The reader goes back to the pool and answers the next read.
    TextTable t;
    Status next = f.pipeline().RunRead(
        [&](StoreReader& r) {
          TALLY_ASSIGN_OR_RETURN(t, r.Query("SELECT 41 + 1"));
          return Status::Ok();
        },
        Clock::now() + 10s);
    ASSERT_TRUE(next.ok()) << next.ToString();
    EXPECT_EQ(t.rows.at(0).at(0), "42");
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreReaders, CompactionWaitsForTheReadsInProgress) {
  const std::string dir = testing::TempDir("readers_compaction");
  {
    testing::StoreFixture f(dir);
    std::string body;
    for (int i = 0; i < 100; ++i) body += UsageLine(0, i);
    ASSERT_TRUE(f.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, body).ack.status.ok());
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> named;
    std::atomic<bool> compacted{false};
    int64_t rows = 0, ids = 0;
    bool compacted_before_query = true;
    std::thread reader([&] {
      Status st = f.pipeline().RunRead([&](StoreReader& r) -> Status {
        // The relation names the staged rows; compaction would move them into files.
        TALLY_ASSIGN_OR_RETURN(
            EventRelation rel,
            r.Relation(EventFamily::kUsage,
                       TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})}));
        named.set_value();
        released.wait_for(30s);
        compacted_before_query = compacted.load();
        TALLY_ASSIGN_OR_RETURN(TextTable t, r.Query("SELECT count(*), count(DISTINCT event_id) FROM (" +
                                                    rel.sql + ")"));
        rows = std::stoll(t.rows.at(0).at(0).value_or("-1"));
        ids = std::stoll(t.rows.at(0).at(1).value_or("-1"));
        return Status::Ok();
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
    named.get_future().wait();
    std::thread compactor([&] {
      EXPECT_TRUE(f.pipeline().Compact().ok());
      compacted = true;
    });
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(compacted.load()) << "compaction ran under a read in progress";
    release.set_value();
    reader.join();
    compactor.join();
    EXPECT_FALSE(compacted_before_query);
    EXPECT_EQ(rows, 100);
    EXPECT_EQ(ids, 100);
    EXPECT_EQ(f.Int("SELECT count(*) FROM partition_files") > 0, true) << "nothing was compacted";
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreReaders, ReadsBesideIngestAndCompactionSeeEveryAcknowledgedRowOnce) {
  const std::string dir = testing::TempDir("readers_race");
  {
    PipelineOptions o;
    o.read_connections = 2;  // three readers share two connections: one always waits
    testing::StoreFixture f(dir, o);
    constexpr int kBatches = 40, kRows = 150;
    std::atomic<int64_t> acked{0};
    std::atomic<bool> done{false};
    std::atomic<int> reads{0}, bad{0};
    std::vector<std::thread> readers;
    for (int k = 0; k < 3; ++k) {
      readers.emplace_back([&] {
        while (!done) {
          const int64_t before = acked.load();
          int64_t rows = -1, ids = -1;
          Status st = f.pipeline().RunRead([&](StoreReader& r) { return CountUsage(r, &rows, &ids); });
          if (!st.ok() || rows < before || rows != ids || rows > int64_t{kBatches} * kRows) {
            ADD_FAILURE() << st.ToString() << " rows " << rows << " ids " << ids << " acknowledged "
                          << before;
            ++bad;
          }
          ++reads;
        }
      });
    }
    for (int b = 0; b < kBatches; ++b) {
      std::string body;
      for (int i = 0; i < kRows; ++i) body += UsageLine(b, i);
      IngestResult res = f.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, body);
      ASSERT_TRUE(res.ack.status.ok()) << res.ack.status.ToString();
      acked += kRows;
      if (b % 8 == 7) {
        ASSERT_TRUE(f.pipeline().Compact().ok());
      }
    }
    done = true;
    for (auto& t : readers) t.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_GT(reads.load(), 3);
    int64_t rows = 0, ids = 0;
    ASSERT_TRUE(f.pipeline().RunRead([&](StoreReader& r) { return CountUsage(r, &rows, &ids); }).ok());
    EXPECT_EQ(rows, int64_t{kBatches} * kRows);
    EXPECT_EQ(ids, rows);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally
