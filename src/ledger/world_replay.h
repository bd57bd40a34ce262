#pragma once
// Replaying a generated world (`tally generate`, CSV) through the ledger, so its accounts,
// balances, invoices and revenue follow from the world's own events.
//
// The ledger takes the world's partners and plan versions, opens an account for every subscriber,
// and then applies each subscriber's activations, recharges, plan changes, deactivations and usage
// in time order, one day at a time (subscribers in parallel, so group commit has company). The
// world's event ids are kept, so the store counts each recharge and lifecycle event once whichever
// way it arrives; usage is rated, and the charges reach the store through the outbox.
//
// The generator does not write opening balances: a subscriber who was already active when the
// world starts gets one month of its plan's price as opening credit, and pays the current cycle's
// fee for the days left in it (docs/ledger.md).

#include <string>
#include <vector>

#include "ledger/ledger.h"

namespace tally {

struct WorldReplayOptions {
  int threads = 128;  // concurrent callers into the ledger (more callers, larger group commits)
};

struct WorldReplayReport {
  int64_t accounts = 0;
  int64_t activations = 0;  // of subscribers acquired during the world
  int64_t recharges = 0;
  int64_t plan_changes = 0;
  int64_t deactivations = 0;
  RatingSummary rating;
  int64_t failures = 0;  // events the ledger refused (the first ones are in `errors`)
  std::vector<std::string> errors;
  std::string ToText() const;
};

//! Replays the CSV world in `world_dir` into `ledger`. Events are read part file by part file
//! (`subscribers/part-N.csv` with the same part of lifecycle, recharge and usage).
Result<WorldReplayReport> ReplayWorld(const std::string& world_dir, Ledger* ledger,
                                      WorldReplayOptions options = {});

}  // namespace tally
