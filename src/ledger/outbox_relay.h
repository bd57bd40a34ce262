#pragma once
// Delivers the ledger's outbox to the event store.
//
// Every ledger change wrote its events into the outbox in its own transaction. The relay reads
// pending batches in order, submits each to the ingest pipeline (events by family, subscriber rows
// as a reference table) and marks it delivered only after the pipeline says it is durable. A crash
// between the two delivers the batch again; the pipeline's dedup by event id counts it once, and
// subscriber rows replace themselves. So the store sees every ledger change exactly once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "ingest/pipeline.h"
#include "ledger/ledger.h"

namespace tally {

struct RelayStats {
  int64_t batches = 0;     // outbox batches delivered
  int64_t rows = 0;        // rows in them
  int64_t duplicates = 0;  // rows the store had already (redeliveries)
  int64_t rejected = 0;    // rows the store refused (a bug: they are quarantined and reported)
};

class OutboxRelay {
 public:
  //! Delivers everything pending now, on this thread. Stops at the first batch the store does not
  //! take (it stays pending) and returns that error.
  static Result<RelayStats> DrainOnce(Ledger* ledger, IngestPipeline* pipeline);

  //! A background relay that drains every `interval`, and at once after Nudge().
  static std::unique_ptr<OutboxRelay> Start(Ledger* ledger, IngestPipeline* pipeline,
                                            std::chrono::milliseconds interval);
  ~OutboxRelay();  // drains what is pending, then stops

  void Nudge();
  RelayStats stats() const;
  //! The last delivery error, if the last attempt failed.
  Status last_error() const;

 private:
  OutboxRelay(Ledger* ledger, IngestPipeline* pipeline, std::chrono::milliseconds interval);
  void Loop();

  Ledger* ledger_;
  IngestPipeline* pipeline_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool nudged_ = false;
  RelayStats stats_;
  Status last_error_;
  std::thread thread_;
};

}  // namespace tally
