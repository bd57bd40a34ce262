// Deadlines on store reads (IngestPipeline::RunExclusive with a deadline): a read still queued
// at its deadline is not run, one still running is interrupted in DuckDB, both fail with
// DeadlineExceeded, and the store answers the next query normally.

#include <gtest/gtest.h>

#include <filesystem>
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

}  // namespace
}  // namespace tally
