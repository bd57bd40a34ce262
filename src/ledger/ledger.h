#pragma once
// The ledger: the transactional tier behind subscribers' money. Partners, versioned plans,
// subscriber lifecycles, prepaid balances with bundle buckets, postpaid billing cycles and
// invoices, idempotent recharges, and the rating of usage.
//
// Every change also writes its events (recharge, lifecycle, charge, subscriber rows) to an outbox
// in the same transaction; a relay delivers the outbox to the event store, whose dedup by event id
// makes the delivery exactly-once (docs/ledger.md). Implementations are thread-safe, and every
// call that returns ok has been made durable.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/events.h"
#include "model/partner.h"
#include "model/plan.h"
#include "model/subscriber.h"

namespace tally {

//! A new subscriber account.
struct ActivateRequest {
  SubscriberId subscriber_id;
  PartnerId partner_id;
  PlanId plan_id;
  Region region = Region::kNorthAmerica;
  std::optional<Timestamp> ts;        // when it takes effect; default: now
  int64_t opening_balance_minor = 0;  // prepaid only: credit carried over from elsewhere
  //! Profile for the store's subscribers table (msisdn, name, city, device...). Its id, partner,
  //! plan, billing type, region, activation date and status are set by the ledger.
  Subscriber profile;
  //! The activation event's id in the store (default "ledger-l<id>-activation"); a source with its
  //! own event ids (a replayed world) passes them so the store counts each event once.
  std::optional<std::string> event_id;
  //! Day of the month billing cycles start (1..28); default: the activation day (29-31 become 28).
  std::optional<int> cycle_day;
  //! The account existed before the ledger (a migration or a replayed world's base): it is opened
  //! at `ts` without an activation event, which would count as a new subscriber.
  bool existing = false;
};

//! A change of status. Suspend and resume only change the status (usage while suspended is still
//! rated, and its charge says so); deactivate is churn: the current cycle closes, no new one opens.
enum class AccountAction : uint8_t { kSuspend, kResume, kDeactivate };

struct StatusRequest {
  SubscriberId subscriber_id;
  AccountAction action = AccountAction::kSuspend;
  std::optional<Timestamp> ts;                           // default: now
  LifecycleReason reason = LifecycleReason::kVoluntary;  // of a deactivation
  std::optional<std::string> event_id;                   // of a deactivation's lifecycle event
};

struct PlanChangeRequest {
  SubscriberId subscriber_id;
  PlanId plan_id;
  std::optional<Timestamp> ts;          // default: now
  std::optional<std::string> event_id;  // of the plan_change lifecycle event
};

//! The state of one account, as the API shows it.
struct AccountView {
  SubscriberId subscriber_id;
  PartnerId partner_id;
  PlanId plan_id;
  int32_t plan_version = 0;
  BillingType billing_type = BillingType::kPrepaid;
  Region region = Region::kNorthAmerica;
  SubscriberStatus status = SubscriberStatus::kActive;
  Currency currency;
  int64_t balance_minor = 0;  // prepaid: money left (may be negative after flagged charges)
  Date cycle_start;           // current billing cycle [cycle_start, cycle_end)
  Date cycle_end;
  int64_t data_mb_left = 0;  // bundles of the current cycle; -1 unlimited
  int64_t voice_min_left = 0;
  int64_t sms_left = 0;
  std::optional<int64_t> open_invoice_id;  // postpaid
  int64_t open_invoice_minor = 0;          // postpaid: the bill so far
};

//! A recharge as the payment gateway reported it. The idempotency key makes retries safe.
struct RechargeRequest {
  std::string idempotency_key;  // 1..128 bytes, required
  SubscriberId subscriber_id;
  int64_t amount_minor = 0;          // > 0, in the account's currency
  std::optional<Currency> currency;  // must match the account's when given
  RechargeChannel channel = RechargeChannel::kApp;
  PaymentStatus payment_status = PaymentStatus::kSucceeded;  // failed payments credit nothing
  std::optional<Timestamp> ts;                               // default: now
  //! The recharge event's id in the store; default "ledger-r<recharge_id>". A source that already
  //! has an event id for the payment (a recharge file, a gateway callback) passes it, so the store
  //! counts the payment once whichever way it arrives.
  std::optional<std::string> event_id;
};

enum class RechargeState : uint8_t { kSucceeded, kFailed, kRefunded, kReversed };

//! What a recharge did. A retry with the same key returns the original result (replayed = true).
struct RechargeResult {
  int64_t recharge_id = 0;
  std::string event_id;  // the recharge event's id in the store
  std::string idempotency_key;
  SubscriberId subscriber_id;
  int64_t amount_minor = 0;
  Currency currency;
  RechargeChannel channel = RechargeChannel::kApp;
  RechargeState state = RechargeState::kSucceeded;
  int64_t balance_minor = 0;  // the balance right after this recharge was applied
  Timestamp ts;
  bool replayed = false;
};

//! Undoing a succeeded recharge: a refund (money back to the payer) or a reversal (a chargeback or
//! an operator's correction). Both are compensating entries; the recharge row is never edited
//! beyond its state.
struct CompensateRequest {
  std::string idempotency_key;
  int64_t recharge_id = 0;
  bool reversal = false;  // false: refund
  std::optional<Timestamp> ts;
};

//! The outcome of a plan change, with its proration.
struct PlanChangeResult {
  PlanId from_plan;
  PlanId to_plan;
  int64_t credit_minor = 0;       // unused share of the old plan's fee, returned
  int64_t charge_minor = 0;       // remaining share of the new plan's fee
  double remaining_fraction = 0;  // share of the cycle left when the change took effect
  int64_t balance_minor = 0;
};

//! The outcome of rating a batch of usage records.
struct RatingSummary {
  int64_t rated = 0;          // records rated now
  int64_t already_rated = 0;  // records whose event_id was rated before (skipped)
  int64_t no_account = 0;    // records of subscribers the ledger does not know (charged 0, flagged)
  int64_t insufficient = 0;  // prepaid charges the balance did not cover (charged, flagged)
  int64_t too_old = 0;       // records older than the rated window: not rated, reported
  int64_t charged_minor = 0;  // sum of the charges made now, across currencies
};

//! A postpaid invoice.
struct Invoice {
  int64_t invoice_id = 0;
  SubscriberId subscriber_id;
  Date period_start;
  Date period_end;  // exclusive
  bool closed = false;
  Currency currency;
  int64_t fee_minor = 0;         // recurring fees and prorations
  int64_t usage_minor = 0;       // rated usage
  int64_t adjustment_minor = 0;  // refunds, reversals and other credits
  int64_t total_minor = 0;
};

//! Per-day totals, for reconciliation against the event store.
struct LedgerDayTotals {
  Date day;
  int64_t recharges = 0;  // succeeded, counted by recharge time
  int64_t recharge_minor = 0;
  int64_t usage_charges = 0;  // rated usage records
  int64_t usage_charge_minor = 0;
  int64_t fee_minor = 0;           // plan fees and prorations
  int64_t compensation_minor = 0;  // refunds and reversals (negative)
};

//! The outbox table of rated usage charges. A table name ending in ".csv" holds headerless CSV
//! rows of the family before the suffix, in its column order (`tally schema`); any other name
//! holds NDJSON. Rating writes one charge per usage record, so its rows take the compact form.
inline constexpr std::string_view kRatedChargeTable = "charge.csv";

//! A pending outbox batch: one family's rows (or reference rows).
struct OutboxBatch {
  int64_t seq = 0;
  std::string table;  // an event family name, "subscribers", or a family name + ".csv"
  std::string body;   // NDJSON, or headerless CSV when `table` ends in ".csv"
  int64_t rows = 0;
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // ---- Reference data
  virtual Status UpsertPartners(const std::vector<Partner>& partners) = 0;
  //! Adds plan versions. A version is immutable once stored: storing the same (plan, region,
  //! version) again with other terms is an error; a new price is a new version.
  virtual Status AddPlanVersions(const std::vector<PlanVersion>& versions) = 0;
  virtual Result<std::vector<PlanVersion>> PlanVersions() = 0;

  // ---- Accounts
  virtual Result<AccountView> Activate(const ActivateRequest& request) = 0;
  virtual Result<AccountView> SetStatus(const StatusRequest& request) = 0;
  Result<AccountView> SetStatus(SubscriberId id, AccountAction action,
                                std::optional<Timestamp> ts) {
    return SetStatus(StatusRequest{id, action, ts, LifecycleReason::kVoluntary, std::nullopt});
  }
  //! Moves the subscriber to another plan now (or at ts), prorating the fees of the cycle.
  virtual Result<PlanChangeResult> ChangePlan(const PlanChangeRequest& request) = 0;
  Result<PlanChangeResult> ChangePlan(SubscriberId id, PlanId plan, std::optional<Timestamp> ts) {
    return ChangePlan(PlanChangeRequest{id, plan, ts, std::nullopt});
  }
  virtual Result<AccountView> Account(SubscriberId id) = 0;

  // ---- Money
  virtual Result<RechargeResult> Recharge(const RechargeRequest& request) = 0;
  virtual Result<RechargeResult> Compensate(const CompensateRequest& request) = 0;

  //! Rates usage records against each subscriber's plan as it was at the record's time. A record
  //! already rated (same event_id) is skipped, so rating a batch again is safe.
  virtual Result<RatingSummary> RateUsage(const std::vector<UsageEvent>& usage) = 0;

  //! Closes every billing cycle that ended before `ts`: renews bundles, charges recurring fees and
  //! closes postpaid invoices. Operations on one account also do this for that account.
  virtual Status AdvanceTo(Timestamp ts) = 0;

  virtual Result<std::vector<Invoice>> Invoices(SubscriberId id) = 0;
  virtual Result<std::vector<LedgerDayTotals>> DayTotals() = 0;

  //! Accounts in the ledger (rating is skipped while there are none).
  virtual int64_t account_count() const = 0;

  // ---- Outbox
  //! Up to `max_batches` undelivered batches, oldest first.
  virtual Result<std::vector<OutboxBatch>> PendingOutbox(size_t max_batches) = 0;
  //! Marks batches up to and including `seq` delivered.
  virtual Status MarkDelivered(int64_t seq) = 0;
};

struct LedgerOptions {
  //! Group commit: requests waiting when a transaction starts join it, up to this many.
  size_t max_group = 4096;
  //! Rated event ids and billing cycles are kept this many days back from the newest record rated;
  //! older records are not rated (RatingSummary::too_old) rather than risk rating them twice.
  int rated_window_days = 35;
  //! PostgreSQL only: how long opening waits for another session to let go of the ledger before
  //! failing with Unavailable. A crashed process's session ends a moment after the process, not
  //! with it, so a restart right after a crash would otherwise be refused. (SQLite's file lock is
  //! released with the process, and another holder is refused at once.)
  std::chrono::milliseconds lock_wait{3000};
};

//! The SQLite ledger (WAL, synchronous=FULL) in DIR/ledger.sqlite. One process at a time: it holds
//! an exclusive lock on DIR/ledger.lock while open.
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& data_dir,
                                                 LedgerOptions options = {});

//! The PostgreSQL ledger in the database `conninfo` names (a libpq connection string or URI, e.g.
//! "host=127.0.0.1 port=5432 dbname=tally user=tally"); it creates its tables if missing. Same
//! semantics as the SQLite ledger; a call returns once its transaction committed with
//! synchronous_commit=on. One process at a time: it holds a session-level advisory lock in that
//! database while open, and fails with Unavailable (naming the holder) when another session keeps
//! it for longer than options.lock_wait. A lost connection makes every later call fail
//! (Unavailable): reopen the ledger, which reloads its state from the database. docs/ledger.md has
//! the details.
Result<std::unique_ptr<Ledger>> OpenPostgresLedger(const std::string& conninfo,
                                                   LedgerOptions options = {});

}  // namespace tally
