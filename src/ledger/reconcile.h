#pragma once
// Reconciliation: the ledger's per-day totals against what the event store holds, day by day.
//
// The ledger counts, in the same transaction as every change, the day's succeeded recharges, rated
// usage charges, plan fees and prorations, and refunds and reversals. The store is read back for
// the same figures from its recharge and charge families. Once the outbox is delivered they must be
// equal; a difference names the day, the figure and both values. Usage records the ledger never
// rated (loaded while it had no accounts, or with ledger.rating = off) are counted separately:
// they are not a mismatch of totals, but they are reported.

#include <string>
#include <vector>

#include "ingest/pipeline.h"
#include "ledger/ledger.h"

namespace tally {

struct ReconcileLine {
  Date day;
  std::string figure;  // recharges, recharge_minor, usage_charges, usage_charge_minor, fee_minor,
                       // refund_minor
  int64_t ledger = 0;
  int64_t store = 0;
};

struct ReconcileReport {
  int days = 0;  // days with any ledger or store figure
  std::vector<ReconcileLine> mismatches;
  int64_t pending_outbox_batches = 0;   // not yet delivered when the check ran
  int64_t unrated_usage = 0;            // usage records in the store without a charge entry
  std::vector<LedgerDayTotals> ledger;  // for the report
  bool ok() const { return mismatches.empty(); }
  std::string ToText() const;
  std::string ToJson() const;
};

//! Compares the ledger with the store. Run it after the outbox is drained (`tally reconcile` does);
//! the store is read on the pipeline's writer thread.
Result<ReconcileReport> Reconcile(Ledger* ledger, IngestPipeline* pipeline);

}  // namespace tally
