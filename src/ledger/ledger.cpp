// The ledger, over any LedgerStore (SQLite or PostgreSQL). One writer thread owns the store and the
// in-memory account state; every call is queued to it as an operation. The writer takes every
// waiting operation into one transaction (group commit: one durable commit for the group), runs
// each inside a savepoint so a failing one leaves the others intact, and answers the callers after
// COMMIT. docs/ledger.md describes the model and its rules.

#include "ledger/ledger.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/text_buffer.h"
#include "ingest/fingerprint_set.h"
#include "ledger/ledger_store.h"
#include "model/record_codec.h"
#include "model/record_json.h"
#include "model/tariff.h"

namespace tally {

namespace {

constexpr int kMaxKeyBytes = 128;

// ---- Billing cycles ---------------------------------------------------------------------------

// The first day of the billing cycle holding `d`, for a cycle day 1..28.
Date CycleStartOf(Date d, int cycle_day) {
  CivilDate c = CivilFromDays(d.days);
  int y = c.year, m = c.month;
  if (c.day < cycle_day && --m == 0) {
    m = 12;
    --y;
  }
  return Date{DaysFromCivil(y, m, cycle_day)};
}

Date NextCycleStart(Date start, int cycle_day) {
  CivilDate c = CivilFromDays(start.days);
  int y = c.year, m = c.month + 1;
  if (m == 13) {
    m = 1;
    ++y;
  }
  return Date{DaysFromCivil(y, m, cycle_day)};
}

// ---- In-memory state ---------------------------------------------------------------------------

struct Cycle {
  int64_t id = 0;  // the invoice id of a postpaid account
  Date start, end;
  PlanId plan;
  int32_t version = 0;
  int64_t plan_price = 0;  // the monthly price the current plan charges this cycle (for prorations)
  BundleState left;
  int64_t fee = 0;
  int64_t usage = 0;
  int64_t adjust = 0;
  bool closed = false;
};

struct Account {
  SubscriberId id;
  PartnerId partner;
  Region region = Region::kNorthAmerica;
  BillingType billing = BillingType::kPrepaid;
  Currency currency;
  SubscriberStatus status = SubscriberStatus::kActive;
  std::optional<Date> status_date;
  Timestamp activated;
  int cycle_day = 1;
  int64_t balance = 0;
  std::vector<std::pair<int64_t, PlanId>> plans;  // (from ts micros, plan), ascending
  std::map<int32_t, Cycle> cycles;                // by start day; only recent ones
  // The Subscriber row, NDJSON. Shared and never changed in place (a change makes a new string),
  // so the undo copy every operation takes of an account it touches does not copy it.
  std::shared_ptr<const std::string> profile = std::make_shared<const std::string>();

  PlanId PlanAt(Timestamp ts) const {
    PlanId p = plans.front().second;
    for (const auto& [from, plan] : plans) {
      if (from <= ts.micros) p = plan;
    }
    return p;
  }
};

uint64_t RequestHash(const RechargeRequest& r, const Currency& currency) {
  std::string text = std::to_string(r.subscriber_id.value()) + "|" +
                     std::to_string(r.amount_minor) + "|" + std::string(currency.code()) + "|" +
                     std::string(Name(r.channel)) + "|" + std::string(Name(r.payment_status)) +
                     "|" + r.event_id.value_or("");
  return FingerprintOf(text).lo & 0x7fffffffffffffffULL;
}

std::string ChargeIdFor(std::string_view usage_event_id) {
  if (usage_event_id.size() + 2 <= kMaxKeyBytes) return "c:" + std::string(usage_event_id);
  Fingerprint f = FingerprintOf(usage_event_id);
  char buf[40];
  std::snprintf(buf, sizeof buf, "c#%016llx%016llx", static_cast<unsigned long long>(f.hi),
                static_cast<unsigned long long>(f.lo));
  return buf;
}

using S = LedgerStatement;

class StoreLedger final : public Ledger {
 public:
  StoreLedger(std::unique_ptr<LedgerStore> store, LedgerOptions options)
      : store_(std::move(store)), options_(options) {}
  ~StoreLedger() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  Status Init() {
    TALLY_RETURN_IF_ERROR(LoadState());
    account_count_.store(static_cast<int64_t>(accounts_.size()));
    writer_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  // ---- Reference data ----------------------------------------------------------------------

  Status UpsertPartners(const std::vector<Partner>& partners) override {
    return Run([&](Op&) -> Status {
      for (const Partner& p : partners) {
        TextBuffer row(256);
        WriteJsonRow(row, p);
        TALLY_RETURN_IF_ERROR(store_->Exec(S::kUpsertPartner, {p.partner_id.value(), row.view()}));
        partners_[p.partner_id.value()] = p;
      }
      return Status::Ok();
    });
  }

  Status AddPlanVersions(const std::vector<PlanVersion>& versions) override {
    return Run([&](Op&) -> Status {
      for (const PlanVersion& v : versions) {
        if (!v.plan_id.valid()) return Status::InvalidArgument("plan_id must be positive");
        auto& list = plans_[{v.plan_id.value(), static_cast<int>(v.region)}];
        auto same = std::find_if(list.begin(), list.end(),
                                 [&](const PlanVersion& x) { return x.version == v.version; });
        if (same != list.end()) {
          if (*same == v) continue;
          return Status::AlreadyExists("plan " + std::to_string(v.plan_id.value()) + " version " +
                                       std::to_string(v.version) + " in " +
                                       std::string(Name(v.region)) +
                                       " exists with other terms; a price change is a new version");
        }
        TextBuffer row(512);
        WriteJsonRow(row, v);
        TALLY_RETURN_IF_ERROR(store_->Exec(
            S::kInsertPlanVersion, {v.plan_id.value(), Name(v.region), v.version, row.view()}));
        list.push_back(v);
        std::sort(list.begin(), list.end(), [](const PlanVersion& a, const PlanVersion& b) {
          return a.effective_from < b.effective_from;
        });
      }
      return Status::Ok();
    });
  }

  Result<std::vector<PlanVersion>> PlanVersions() override {
    std::vector<PlanVersion> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op&) -> Status {
      for (const auto& [key, list] : plans_) out.insert(out.end(), list.begin(), list.end());
      return Status::Ok();
    }));
    return out;
  }

  // ---- Accounts ----------------------------------------------------------------------------

  Result<AccountView> Activate(const ActivateRequest& r) override {
    AccountView view;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status {
      if (!r.subscriber_id.valid())
        return Status::InvalidArgument("subscriber_id must be positive");
      if (accounts_.count(r.subscriber_id.value())) {
        return Status::AlreadyExists("subscriber " + std::to_string(r.subscriber_id.value()) +
                                     " has an account already");
      }
      if (!partners_.count(r.partner_id.value())) {
        return Status::NotFound("partner " + std::to_string(r.partner_id.value()) +
                                " is not known; add it first");
      }
      const Timestamp ts = r.ts.value_or(WallClock());
      const PlanVersion* pv = PlanOn(r.plan_id, r.region, ts.date());
      if (!pv) {
        return Status::NotFound("plan " + std::to_string(r.plan_id.value()) + " has no terms in " +
                                std::string(Name(r.region)) + " on " + FormatDate(ts.date()));
      }
      if (r.opening_balance_minor < 0)
        return Status::InvalidArgument("opening_balance_minor must not be negative");
      struct Account a;
      a.id = r.subscriber_id;
      a.partner = r.partner_id;
      a.region = r.region;
      a.billing = pv->billing_type;
      a.currency = pv->currency;
      a.activated = ts;
      if (r.cycle_day && (*r.cycle_day < 1 || *r.cycle_day > 28)) {
        return Status::InvalidArgument("cycle_day must be 1 to 28");
      }
      a.cycle_day = r.cycle_day.value_or(std::min(28, CivilFromDays(ts.date().days).day));
      a.plans.push_back({ts.micros, r.plan_id});
      Subscriber profile = r.profile;
      profile.subscriber_id = a.id;
      profile.partner_id = a.partner;
      profile.plan_id = r.plan_id;
      profile.billing_type = a.billing;
      profile.region = a.region;
      profile.activation_date = ts.date();
      profile.status = SubscriberStatus::kActive;
      profile.status_date.reset();
      TextBuffer row(512);
      WriteJsonRow(row, profile);
      a.profile = std::make_shared<const std::string>(row.view());
      op.Created(a.id.value());
      struct Account& acc = accounts_[a.id.value()] = std::move(a);
      TALLY_RETURN_IF_ERROR(
          store_->Exec(S::kUpsertPlanHistory, {acc.id.value(), ts.micros, r.plan_id.value()}));
      if (r.opening_balance_minor > 0) {
        acc.balance = r.opening_balance_minor;
        TALLY_RETURN_IF_ERROR(Journal(acc, ts, "opening_balance", r.opening_balance_minor, ""));
      }
      TALLY_RETURN_IF_ERROR(EnsureCycle(op, acc, ts).status());
      if (!r.existing) {
        EmitLifecycle(op, acc, LifecycleKind::kActivation, LifecycleReason::kNew, ts, r.plan_id,
                      std::nullopt, r.event_id, "activation");
      }
      TALLY_RETURN_IF_ERROR(SaveAccount(op, acc));
      view = View(acc);
      return Status::Ok();
    }));
    return view;
  }

  Result<AccountView> SetStatus(const StatusRequest& request) override {
    const SubscriberId id = request.subscriber_id;
    const AccountAction action = request.action;
    const std::optional<Timestamp> when = request.ts;
    AccountView view;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status {
      TALLY_ASSIGN_OR_RETURN(struct Account * acc, FindActive(op, id));
      const Timestamp ts = when.value_or(WallClock());
      TALLY_RETURN_IF_ERROR(EnsureCycle(op, *acc, ts).status());
      switch (action) {
        case AccountAction::kSuspend:
          acc->status = SubscriberStatus::kSuspended;
          break;
        case AccountAction::kResume:
          acc->status = SubscriberStatus::kActive;
          break;
        case AccountAction::kDeactivate: {
          acc->status = SubscriberStatus::kChurned;
          // The final invoice: the current cycle closes now.
          for (auto& [start, c] : acc->cycles) {
            if (!c.closed && c.start <= ts.date()) {
              c.closed = true;
              TALLY_RETURN_IF_ERROR(SaveCycle(*acc, c));
            }
          }
          EmitLifecycle(op, *acc, LifecycleKind::kDeactivation, request.reason, ts, acc->PlanAt(ts),
                        std::nullopt, request.event_id, "deactivation");
          break;
        }
      }
      acc->status_date = ts.date();
      TALLY_RETURN_IF_ERROR(SaveAccount(op, *acc));
      view = View(*acc);
      return Status::Ok();
    }));
    return view;
  }

  Result<PlanChangeResult> ChangePlan(const PlanChangeRequest& request) override {
    const SubscriberId id = request.subscriber_id;
    const PlanId plan = request.plan_id;
    const std::optional<Timestamp> when = request.ts;
    PlanChangeResult out;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status {
      TALLY_ASSIGN_OR_RETURN(struct Account * acc, FindActive(op, id));
      const Timestamp ts = when.value_or(WallClock());
      if (ts.micros < acc->plans.back().first) {
        return Status::InvalidArgument("a plan change must not be earlier than the last one (" +
                                       FormatTimestamp(Timestamp{acc->plans.back().first}) + ")");
      }
      const PlanVersion* to = PlanOn(plan, acc->region, ts.date());
      if (!to) {
        return Status::NotFound("plan " + std::to_string(plan.value()) + " has no terms in " +
                                std::string(Name(acc->region)) + " on " + FormatDate(ts.date()));
      }
      if (to->billing_type != acc->billing) {
        return Status::InvalidArgument("plan " + std::to_string(plan.value()) + " is " +
                                       std::string(Name(to->billing_type)) +
                                       "; moving between prepaid and "
                                       "postpaid needs a new account");
      }
      const PlanId from = acc->PlanAt(ts);
      if (from == plan)
        return Status::InvalidArgument("subscriber " + std::to_string(id.value()) + " is on plan " +
                                       std::to_string(plan.value()) + " already");
      TALLY_ASSIGN_OR_RETURN(Cycle * c, EnsureCycle(op, *acc, ts));
      // Proration by whole days: the day of the change counts as remaining.
      const int64_t cycle_days = c->end.days - c->start.days;
      const int64_t remaining = std::clamp<int64_t>(c->end.days - ts.date().days, 0, cycle_days);
      out.from_plan = from;
      out.to_plan = plan;
      out.remaining_fraction = static_cast<double>(remaining) / static_cast<double>(cycle_days);
      out.credit_minor = c->plan_price * remaining / cycle_days;
      out.charge_minor = to->monthly_price_minor * remaining / cycle_days;
      const std::string at = std::to_string(ts.micros);
      TALLY_RETURN_IF_ERROR(Fee(op, *acc, *c, ts, ChargeEntry::kProration, -out.credit_minor, from,
                                "ledger-p" + std::to_string(id.value()) + "-" + at + "-credit",
                                "plan change credit"));
      c->plan = plan;
      c->version = to->version;
      c->plan_price = to->monthly_price_minor;
      TALLY_RETURN_IF_ERROR(Fee(op, *acc, *c, ts, ChargeEntry::kProration, out.charge_minor, plan,
                                "ledger-p" + std::to_string(id.value()) + "-" + at + "-charge",
                                "plan change charge"));
      // The new plan's bundles, for the rest of the cycle.
      auto prorate = [&](int64_t units) {
        return units == kUnlimited ? kUnlimited : units * remaining / cycle_days;
      };
      c->left = BundleState{prorate(to->data_mb), prorate(to->voice_minutes), prorate(to->sms)};
      acc->plans.push_back({ts.micros, plan});
      TALLY_RETURN_IF_ERROR(
          store_->Exec(S::kUpsertPlanHistory, {id.value(), ts.micros, plan.value()}));
      TALLY_RETURN_IF_ERROR(SaveCycle(*acc, *c));
      const PlanVersion* old = PlanOn(from, acc->region, ts.date());
      EmitLifecycle(
          op, *acc, LifecycleKind::kPlanChange,
          old && to->tier < old->tier ? LifecycleReason::kDowngrade : LifecycleReason::kUpgrade, ts,
          plan, from, request.event_id, "plan-" + at);
      TALLY_RETURN_IF_ERROR(SaveAccount(op, *acc));
      out.balance_minor = acc->balance;
      return Status::Ok();
    }));
    return out;
  }

  Result<AccountView> Account(SubscriberId id) override {
    AccountView view;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status {
      TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, id));
      view = View(*acc);
      return Status::Ok();
    }));
    return view;
  }

  // ---- Money -------------------------------------------------------------------------------

  Result<RechargeResult> Recharge(const RechargeRequest& r) override {
    RechargeResult out;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status { return DoRecharge(op, r, &out); }));
    return out;
  }

  Result<RechargeResult> Compensate(const CompensateRequest& r) override {
    RechargeResult out;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status { return DoCompensate(op, r, &out); }));
    return out;
  }

  Result<RatingSummary> RateUsage(const std::vector<UsageEvent>& usage) override {
    RatingSummary out;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status { return DoRate(op, usage, &out); }));
    return out;
  }

  Status AdvanceTo(Timestamp ts) override {
    return Run([&](Op& op) -> Status {
      for (auto& [id, a] : accounts_) {
        if (a.status == SubscriberStatus::kChurned) continue;
        if (!a.cycles.empty() && a.cycles.rbegin()->second.end > ts.date()) continue;
        TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, a.id));
        TALLY_RETURN_IF_ERROR(EnsureCycle(op, *acc, ts).status());
        TALLY_RETURN_IF_ERROR(SaveBalance(*acc));
      }
      return Status::Ok();
    });
  }

  Result<std::vector<Invoice>> Invoices(SubscriberId id) override {
    std::vector<Invoice> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op& op) -> Status {
      TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, id));
      if (acc->billing != BillingType::kPostpaid) return Status::Ok();
      return store_->Query(S::kInvoices, {id.value()}, [&](const SqlRow& row) {
        Invoice inv;
        inv.invoice_id = row.Int(0);
        inv.subscriber_id = id;
        inv.period_start = Date{static_cast<int32_t>(row.Int(1))};
        inv.period_end = Date{static_cast<int32_t>(row.Int(2))};
        inv.fee_minor = row.Int(3);
        inv.usage_minor = row.Int(4);
        inv.adjustment_minor = row.Int(5);
        inv.closed = row.Int(6) != 0;
        inv.currency = acc->currency;
        inv.total_minor = inv.fee_minor + inv.usage_minor + inv.adjustment_minor;
        out.push_back(inv);
        return Status::Ok();
      });
    }));
    return out;
  }

  Result<std::vector<LedgerDayTotals>> DayTotals() override {
    std::vector<LedgerDayTotals> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op&) -> Status {
      return store_->Query(S::kDayTotals, {}, [&](const SqlRow& r) {
        out.push_back({Date{static_cast<int32_t>(r.Int(0))}, r.Int(1), r.Int(2), r.Int(3), r.Int(4),
                       r.Int(5), r.Int(6)});
        return Status::Ok();
      });
    }));
    return out;
  }

  Result<std::vector<OutboxBatch>> PendingOutbox(size_t max_batches) override {
    std::vector<OutboxBatch> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op&) -> Status {
      return store_->Query(
          S::kPendingOutbox, {delivered_seq_, static_cast<int64_t>(max_batches)},
          [&](const SqlRow& r) {
            out.push_back({r.Int(0), std::string(r.Text(1)), std::string(r.Text(2)), r.Int(3)});
            return Status::Ok();
          });
    }));
    return out;
  }

  int64_t account_count() const override { return account_count_.load(); }

  Status MarkDelivered(int64_t seq) override {
    return Run([&](Op&) -> Status {
      if (seq <= delivered_seq_) return Status::Ok();
      TALLY_RETURN_IF_ERROR(store_->Exec(S::kSetMeta, {"delivered_seq", std::to_string(seq)}));
      TALLY_RETURN_IF_ERROR(store_->Exec(S::kDeleteOutbox, {seq}));
      delivered_seq_ = seq;
      return Status::Ok();
    });
  }

 private:
  // One queued operation and what it changed, so a failing one can be undone.
  struct Op {
    std::function<Status(Op&)> fn;
    std::promise<Status> done;
    Status status;
    std::unordered_map<int64_t, std::optional<struct Account>> undo;  // nullopt: did not exist
    std::map<std::string, std::string> outbox;                        // table -> NDJSON
    std::map<std::string, int64_t> outbox_rows;
    std::map<int32_t, LedgerDayTotals> totals;
    std::vector<std::pair<int32_t, Fingerprint>> rated;

    void Created(int64_t id) { undo.try_emplace(id, std::nullopt); }
  };

  // Runs fn on the writer thread inside the next group transaction; returns once it is durable.
  Status Run(std::function<Status(Op&)> fn) {
    auto op = std::make_unique<Op>();
    op->fn = std::move(fn);
    std::future<Status> done = op->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return Status::Unavailable("the ledger is shutting down");
      queue_.push_back(std::move(op));
    }
    cv_.notify_one();
    return done.get();
  }

  void WriterLoop() {
    for (;;) {
      std::vector<std::unique_ptr<Op>> group;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        while (!queue_.empty() && group.size() < options_.max_group) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      RunGroup(group);
    }
  }

  void RunGroup(std::vector<std::unique_ptr<Op>>& group) {
    Status begin = store_->Begin();
    if (!begin.ok()) {
      for (auto& op : group) op->done.set_value(begin);
      return;
    }
    std::unordered_map<int64_t, std::optional<struct Account>> group_undo;
    std::map<std::string, std::string> outbox;
    std::map<std::string, int64_t> outbox_rows;
    std::map<int32_t, LedgerDayTotals> totals;
    for (auto& op : group) {
      Status sp = store_->BeginOp();
      op->status = sp.ok() ? op->fn(*op) : sp;
      if (op->status.ok()) {
        op->status = store_->EndOp();  // also reports a deferred error of the op's writes
      }
      if (!op->status.ok()) {
        (void)store_->UndoOp();
        Restore(op->undo);
        continue;
      }
      for (auto& [id, before] : op->undo) group_undo.try_emplace(id, std::move(before));
      for (auto& [table, text] : op->outbox) {
        std::string& into = outbox[table];
        if (into.empty()) {
          into = std::move(text);  // a rating batch is tens of megabytes: never copy it whole
        } else {
          into += text;
        }
      }
      for (auto& [table, n] : op->outbox_rows) outbox_rows[table] += n;
      for (auto& [day, t] : op->totals) Add(totals[day], t);
    }
    Status st = Status::Ok();
    for (auto& [table, text] : outbox) {
      if (st.ok()) {
        st = store_->Exec(S::kInsertOutbox, {table, text, outbox_rows[table]});
      }
    }
    for (auto& [day, t] : totals) {
      if (st.ok()) {
        st = store_->Exec(S::kAddDayTotals,
                          {day, t.recharges, t.recharge_minor, t.usage_charges,
                           t.usage_charge_minor, t.fee_minor, t.compensation_minor});
      }
    }
    if (st.ok()) st = store_->Commit();
    if (!st.ok()) {
      (void)store_->Rollback();
      Restore(group_undo);
      for (auto& op : group) op->done.set_value(op->status.ok() ? st : op->status);
      return;
    }
    account_count_.store(static_cast<int64_t>(accounts_.size()));
    for (auto& op : group) {
      if (op->status.ok()) {
        for (const auto& [day, f] : op->rated) rated_[day].Insert(f);
      }
      op->done.set_value(op->status);
    }
  }

  static void Add(LedgerDayTotals& into, const LedgerDayTotals& d) {
    into.recharges += d.recharges;
    into.recharge_minor += d.recharge_minor;
    into.usage_charges += d.usage_charges;
    into.usage_charge_minor += d.usage_charge_minor;
    into.fee_minor += d.fee_minor;
    into.compensation_minor += d.compensation_minor;
  }

  void Restore(std::unordered_map<int64_t, std::optional<struct Account>>& undo) {
    for (auto& [id, before] : undo) {
      if (before) {
        accounts_[id] = std::move(*before);
      } else {
        accounts_.erase(id);
      }
    }
  }

  // The account, saved for undo before the operation changes it.
  Result<struct Account*> Find(Op& op, SubscriberId id) {
    auto it = accounts_.find(id.value());
    if (it == accounts_.end()) {
      return Status::NotFound("subscriber " + std::to_string(id.value()) +
                              " has no account in the ledger");
    }
    if (op.undo.try_emplace(id.value(), it->second).second) {
      // First touch in this operation, before any pointer into its cycles is taken: drop cycles
      // that ended before the rated window from memory (they stay in the store for invoices).
      auto& cycles = it->second.cycles;
      const int64_t horizon = newest_day_ - options_.rated_window_days;
      while (cycles.size() > 2 && cycles.begin()->second.end.days < horizon)
        cycles.erase(cycles.begin());
    }
    return &it->second;
  }

  // Find, for a change a deactivated account must not take.
  Result<struct Account*> FindActive(Op& op, SubscriberId id) {
    TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, id));
    if (acc->status == SubscriberStatus::kChurned) {
      return Status::InvalidArgument("subscriber " + std::to_string(id.value()) +
                                     " is deactivated");
    }
    return acc;
  }

  // A lifecycle event into the outbox; its id is the caller's, or "ledger-l<subscriber>-<suffix>".
  void EmitLifecycle(Op& op, const struct Account& acc, LifecycleKind kind, LifecycleReason reason,
                     Timestamp ts, PlanId plan, std::optional<PlanId> from,
                     const std::optional<std::string>& event_id, const std::string& suffix) {
    LifecycleEvent le;
    le.event_id = event_id.value_or("ledger-l" + std::to_string(acc.id.value()) + "-" + suffix);
    le.ts = ts;
    le.kind = kind;
    le.subscriber_id = acc.id;
    le.partner_id = acc.partner;
    le.plan_id = plan;
    le.from_plan_id = from;
    le.reason = reason;
    Emit(op, le);
  }

  template <typename Rec>
  void Emit(Op& op, const Rec& rec) {
    TextBuffer line(512);
    WriteJsonRow(line, rec);
    const std::string table(Name(Rec::kFamily));
    op.outbox[table].append(line.view());
    ++op.outbox_rows[table];
  }

  void EmitSubscriberRow(Op& op, const struct Account& acc) {
    op.outbox["subscribers"] += *acc.profile;
    ++op.outbox_rows["subscribers"];
  }

  const PlanVersion* PlanOn(PlanId plan, Region region, Date d) const {
    auto it = plans_.find({plan.value(), static_cast<int>(region)});
    if (it == plans_.end()) return nullptr;
    const PlanVersion* out = nullptr;
    for (const PlanVersion& v : it->second) {
      if (v.EffectiveOn(d)) out = &v;
    }
    return out;
  }

  Status Journal(const struct Account& acc, Timestamp ts, std::string_view kind, int64_t amount,
                 std::string_view ref) {
    return store_->Exec(S::kJournal, {acc.id.value(), ts.micros, kind, amount, acc.balance, ref});
  }

  // A recurring fee or proration: off a prepaid balance, or onto the postpaid invoice.
  Status Fee(Op& op, struct Account& acc, Cycle& c, Timestamp ts, ChargeEntry entry, int64_t amount,
             PlanId plan, std::string event_id, std::string_view why) {
    if (amount == 0) return Status::Ok();
    ChargeEvent ce;
    if (acc.billing == BillingType::kPrepaid) {
      ce.insufficient_balance = amount > 0 && acc.balance < amount;
      acc.balance -= amount;
      ce.balance_minor = acc.balance;
    } else {
      ce.invoice_id = c.id;
    }
    c.fee += amount;
    ce.event_id = std::move(event_id);
    ce.ts = ts;
    ce.entry = entry;
    ce.subscriber_id = acc.id;
    ce.partner_id = acc.partner;
    ce.plan_id = plan;
    const PlanVersion* pv = PlanOn(plan, acc.region, ts.date());
    ce.plan_version = pv ? pv->version : c.version;
    ce.billing_type = acc.billing;
    ce.amount_minor = amount;
    ce.currency = acc.currency;
    ce.ref = FormatDate(c.start);
    Emit(op, ce);
    op.totals[ts.date().days].fee_minor += amount;
    return Journal(acc, ts, why, -amount, ce.event_id);
  }

  // Opens a cycle at `start` on the plan in force then, renewing the bundles and charging the fee
  // (a share of it when the account starts mid-cycle).
  Result<Cycle*> OpenCycle(Op& op, struct Account& acc, Date start) {
    Cycle c;
    c.id = next_cycle_id_++;
    c.start = start;
    c.end = NextCycleStart(start, acc.cycle_day);
    const Timestamp from = std::max(StartOfDay(start), acc.activated);
    c.plan = acc.PlanAt(from);
    const PlanVersion* pv = PlanOn(c.plan, acc.region, from.date());
    if (!pv) {
      return Status::NotFound("plan " + std::to_string(c.plan.value()) + " has no terms in " +
                              std::string(Name(acc.region)) + " on " + FormatDate(from.date()));
    }
    c.version = pv->version;
    c.plan_price = pv->monthly_price_minor;
    const int64_t days = c.end.days - c.start.days;
    const int64_t remaining = c.end.days - from.date().days;
    auto share = [&](int64_t units) {
      return units == kUnlimited ? kUnlimited : units * remaining / days;
    };
    c.left = BundleState{share(pv->data_mb), share(pv->voice_minutes), share(pv->sms)};
    Cycle& stored = acc.cycles[start.days] = c;
    TALLY_RETURN_IF_ERROR(Fee(
        op, acc, stored, from, ChargeEntry::kPlanFee, pv->monthly_price_minor * remaining / days,
        c.plan, "ledger-f" + std::to_string(acc.id.value()) + "-" + FormatDate(start), "plan fee"));
    TALLY_RETURN_IF_ERROR(SaveCycle(acc, stored));
    return &stored;
  }

  // The cycle holding `ts`, opening (and closing) cycles up to it as time moves on. Null when the
  // time is before the oldest cycle kept in memory.
  Result<Cycle*> EnsureCycle(Op& op, struct Account& acc, Timestamp ts) {
    const Date d = std::max(ts.date(), acc.activated.date());
    if (acc.cycles.empty()) {
      TALLY_RETURN_IF_ERROR(
          OpenCycle(op, acc, CycleStartOf(acc.activated.date(), acc.cycle_day)).status());
    }
    while (acc.cycles.rbegin()->second.end <= d) {
      Cycle& last = acc.cycles.rbegin()->second;
      if (acc.status == SubscriberStatus::kChurned) return &last;  // no cycles after churn
      last.closed = true;
      TALLY_RETURN_IF_ERROR(SaveCycle(acc, last));
      TALLY_RETURN_IF_ERROR(OpenCycle(op, acc, last.end).status());
    }
    auto it = acc.cycles.upper_bound(d.days);
    if (it == acc.cycles.begin()) return static_cast<Cycle*>(nullptr);
    return &std::prev(it)->second;
  }

  Status SaveAccount(Op& op, const struct Account& acc) {
    Subscriber profile;
    // The profile row follows the account: plan, status and status date.
    JsonRecordReader<Subscriber> reader;
    auto parsed = reader.Parse(std::string_view(*acc.profile).substr(0, acc.profile->size() - 1));
    if (parsed.ok()) {
      profile = *parsed;
      profile.plan_id = acc.plans.back().second;
      profile.status = acc.status;
      profile.status_date = acc.status_date;
      TextBuffer row(512);
      WriteJsonRow(row, profile);
      if (row.view() != *acc.profile) {
        const_cast<struct Account&>(acc).profile = std::make_shared<const std::string>(row.view());
      }
    }
    EmitSubscriberRow(op, acc);
    return store_->Exec(
        S::kUpsertAccount,
        {acc.id.value(), acc.partner.value(), Name(acc.region), Name(acc.billing),
         acc.currency.code(), Name(acc.status),
         acc.status_date ? std::optional<int64_t>(acc.status_date->days) : std::nullopt,
         acc.activated.micros, acc.cycle_day, acc.balance, *acc.profile});
  }

  // Saves balance only (the rating hot path: no profile row, no outbox subscriber row).
  Status SaveBalance(const struct Account& acc) {
    return store_->Exec(S::kUpdateBalance, {acc.balance, acc.id.value()});
  }

  // What rating changes in a cycle that EnsureCycle has already saved: an UPDATE in place, not a
  // replacement of the row and its index entries.
  Status SaveCycleUsage(const Cycle& c) {
    return store_->Exec(S::kUpdateCycleUsage, {c.left.data_mb_left, c.left.voice_min_left,
                                               c.left.sms_left, c.usage, c.id});
  }

  Status SaveCycle(const struct Account& acc, const Cycle& c) {
    return store_->Exec(S::kUpsertCycle,
                        {c.id, acc.id.value(), c.start.days, c.end.days, c.plan.value(), c.version,
                         c.plan_price, c.left.data_mb_left, c.left.voice_min_left, c.left.sms_left,
                         c.fee, c.usage, c.adjust, int64_t{c.closed}});
  }

  AccountView View(const struct Account& acc) const {
    AccountView v;
    v.subscriber_id = acc.id;
    v.partner_id = acc.partner;
    v.plan_id = acc.plans.back().second;
    v.billing_type = acc.billing;
    v.region = acc.region;
    v.status = acc.status;
    v.currency = acc.currency;
    v.balance_minor = acc.balance;
    if (!acc.cycles.empty()) {
      const Cycle& c = acc.cycles.rbegin()->second;
      v.plan_version = c.version;
      v.cycle_start = c.start;
      v.cycle_end = c.end;
      v.data_mb_left = c.left.data_mb_left;
      v.voice_min_left = c.left.voice_min_left;
      v.sms_left = c.left.sms_left;
      if (acc.billing == BillingType::kPostpaid) {
        v.open_invoice_id = c.id;
        v.open_invoice_minor = c.fee + c.usage + c.adjust;
      }
    }
    return v;
  }

  // ---- Recharges ---------------------------------------------------------------------------

  Status DoRecharge(Op& op, const RechargeRequest& r, RechargeResult* out) {
    if (r.idempotency_key.empty() || r.idempotency_key.size() > kMaxKeyBytes) {
      return Status::InvalidArgument("idempotency key must be 1 to 128 bytes");
    }
    if (r.amount_minor <= 0) return Status::InvalidArgument("amount_minor must be positive");
    if (r.event_id && (r.event_id->empty() || r.event_id->size() > kMaxKeyBytes)) {
      return Status::InvalidArgument("event_id must be 1 to 128 bytes");
    }
    auto it = accounts_.find(r.subscriber_id.value());
    if (it == accounts_.end()) {
      return Status::NotFound("subscriber " + std::to_string(r.subscriber_id.value()) +
                              " has no account in the ledger");
    }
    const Currency currency = r.currency.value_or(it->second.currency);
    const int64_t hash = static_cast<int64_t>(RequestHash(r, currency));
    // A key seen before: the original result, or a conflict when the request differs.
    bool found = false;
    int64_t found_hash = 0;
    TALLY_RETURN_IF_ERROR(
        store_->Query(S::kFindRecharge, {r.idempotency_key}, [&](const SqlRow& row) {
          found = true;
          found_hash = row.Int(1);
          return ReadRecharge(row, out);
        }));
    if (found) {
      if (found_hash != hash) {
        return Status::AlreadyExists("idempotency key '" + r.idempotency_key +
                                     "' was used for a different recharge (" +
                                     std::to_string(out->recharge_id) + ")");
      }
      out->replayed = true;
      return Status::Ok();
    }
    TALLY_ASSIGN_OR_RETURN(struct Account * acc, FindActive(op, r.subscriber_id));
    if (acc->billing != BillingType::kPrepaid) {
      return Status::InvalidArgument("subscriber " + std::to_string(acc->id.value()) +
                                     " is postpaid: recharges are for prepaid balances");
    }
    if (currency != acc->currency) {
      return Status::InvalidArgument("currency " + std::string(currency.code()) +
                                     " is not the account's (" + std::string(acc->currency.code()) +
                                     ")");
    }
    const Timestamp ts = r.ts.value_or(WallClock());
    TALLY_RETURN_IF_ERROR(EnsureCycle(op, *acc, ts).status());
    const bool ok = r.payment_status == PaymentStatus::kSucceeded;
    if (ok) acc->balance += r.amount_minor;
    const int64_t id = next_recharge_id_++;
    out->recharge_id = id;
    out->event_id = r.event_id.value_or("ledger-r" + std::to_string(id));
    out->idempotency_key = r.idempotency_key;
    out->subscriber_id = acc->id;
    out->amount_minor = r.amount_minor;
    out->currency = currency;
    out->channel = r.channel;
    out->state = ok ? RechargeState::kSucceeded : RechargeState::kFailed;
    out->balance_minor = acc->balance;
    out->ts = ts;
    out->replayed = false;
    TALLY_RETURN_IF_ERROR(store_->Exec(
        S::kInsertRecharge,
        {id, r.idempotency_key, hash, acc->id.value(), r.amount_minor, currency.code(),
         Name(r.channel), ok ? "succeeded" : "failed", ts.micros, acc->balance, out->event_id}));
    if (ok) {
      TALLY_RETURN_IF_ERROR(SaveBalance(*acc));
      TALLY_RETURN_IF_ERROR(Journal(*acc, ts, "recharge", r.amount_minor, out->event_id));
      auto& t = op.totals[ts.date().days];
      ++t.recharges;
      t.recharge_minor += r.amount_minor;
    }
    RechargeEvent ev;
    ev.event_id = out->event_id;
    ev.ts = ts;
    ev.subscriber_id = acc->id;
    ev.partner_id = acc->partner;
    ev.amount_minor = r.amount_minor;
    ev.currency = currency;
    ev.channel = r.channel;
    ev.payment_status = r.payment_status;
    Emit(op, ev);
    return Status::Ok();
  }

  // A row of kFindRecharge or kRechargeById.
  static Status ReadRecharge(const SqlRow& s, RechargeResult* out) {
    // recharge_id, request_hash, subscriber_id, amount, currency, channel, state, ts, balance,
    // event_id, key
    out->recharge_id = s.Int(0);
    out->subscriber_id = SubscriberId(s.Int(2));
    out->amount_minor = s.Int(3);
    TALLY_ASSIGN_OR_RETURN(out->currency, Currency::Parse(s.Text(4)));
    auto channel = ParseEnum<RechargeChannel>(s.Text(5));
    out->channel = channel.ok() ? *channel : RechargeChannel::kApp;
    std::string_view state = s.Text(6);
    out->state = state == "succeeded"  ? RechargeState::kSucceeded
                 : state == "failed"   ? RechargeState::kFailed
                 : state == "refunded" ? RechargeState::kRefunded
                                       : RechargeState::kReversed;
    out->ts = Timestamp{s.Int(7)};
    out->balance_minor = s.Int(8);
    out->event_id = std::string(s.Text(9));
    out->idempotency_key = std::string(s.Text(10));
    return Status::Ok();
  }

  Status DoCompensate(Op& op, const CompensateRequest& r, RechargeResult* out) {
    if (r.idempotency_key.empty() || r.idempotency_key.size() > kMaxKeyBytes) {
      return Status::InvalidArgument("idempotency key must be 1 to 128 bytes");
    }
    // The key seen before: (recharge id, reversal, balance after, time) of that compensation.
    struct Seen {
      int64_t recharge_id;
      bool reversal;
      int64_t balance;
      int64_t ts;
    };
    std::optional<Seen> seen;
    TALLY_RETURN_IF_ERROR(
        store_->Query(S::kFindCompensation, {r.idempotency_key}, [&](const SqlRow& row) {
          seen = Seen{row.Int(0), row.Text(1) == "reversal", row.Int(2), row.Int(3)};
          return Status::Ok();
        }));
    if (seen && (seen->recharge_id != r.recharge_id || seen->reversal != r.reversal)) {
      return Status::AlreadyExists("idempotency key '" + r.idempotency_key +
                                   "' was used for another refund or reversal");
    }
    bool found = false;
    std::string state;  // as stored
    TALLY_RETURN_IF_ERROR(store_->Query(S::kRechargeById, {r.recharge_id}, [&](const SqlRow& row) {
      found = true;
      state = row.Text(6);
      return ReadRecharge(row, out);
    }));
    if (!found)
      return Status::NotFound("recharge " + std::to_string(r.recharge_id) + " does not exist");
    if (seen) {
      out->balance_minor = seen->balance;
      out->ts = Timestamp{seen->ts};
      out->replayed = true;
      return Status::Ok();
    }
    if (out->state != RechargeState::kSucceeded) {
      return Status::InvalidArgument("recharge " + std::to_string(r.recharge_id) + " is " + state +
                                     "; only a succeeded recharge can be " +
                                     (r.reversal ? "reversed" : "refunded"));
    }
    TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, out->subscriber_id));
    const Timestamp ts = r.ts.value_or(WallClock());
    acc->balance -= out->amount_minor;
    const char* kind = r.reversal ? "reversal" : "refund";
    TALLY_RETURN_IF_ERROR(
        store_->Exec(S::kSetRechargeState, {r.reversal ? "reversed" : "refunded", r.recharge_id}));
    TALLY_RETURN_IF_ERROR(store_->Exec(
        S::kInsertCompensation, {r.idempotency_key, r.recharge_id, kind, ts.micros, acc->balance}));
    TALLY_RETURN_IF_ERROR(SaveBalance(*acc));
    TALLY_RETURN_IF_ERROR(Journal(*acc, ts, kind, -out->amount_minor, out->event_id));
    ChargeEvent ce;
    ce.event_id = std::string(r.reversal ? "ledger-v" : "ledger-x") + std::to_string(r.recharge_id);
    ce.ts = ts;
    ce.entry = r.reversal ? ChargeEntry::kReversal : ChargeEntry::kRefund;
    ce.subscriber_id = acc->id;
    ce.partner_id = acc->partner;
    ce.plan_id = acc->PlanAt(ts);
    const PlanVersion* pv = PlanOn(*ce.plan_id, acc->region, ts.date());
    ce.plan_version = pv ? pv->version : 0;
    ce.billing_type = acc->billing;
    ce.amount_minor = out->amount_minor;
    ce.currency = acc->currency;
    ce.balance_minor = acc->balance;
    ce.ref = out->event_id;
    Emit(op, ce);
    op.totals[ts.date().days].compensation_minor += out->amount_minor;
    out->state = r.reversal ? RechargeState::kReversed : RechargeState::kRefunded;
    out->balance_minor = acc->balance;
    out->ts = ts;
    out->replayed = false;
    return Status::Ok();
  }

  // ---- Rating ------------------------------------------------------------------------------

  bool AlreadyRated(int32_t day, Fingerprint f) const {
    auto it = rated_.find(day);
    if (it != rated_.end() && it->second.Contains(f)) return true;
    // Within this operation (the same id twice in one batch).
    return op_rated_.Contains(f);
  }

  Status DoRate(Op& op, const std::vector<UsageEvent>& usage, RatingSummary* out) {
    op_rated_ = FingerprintSet();
    // Per subscriber seen in this batch: its account (null without one, or before the first
    // record that needs it), the sum charged (for the journal), the cycles drawn from, and the
    // last cycle and plan terms used, which the next record of the same day usually reuses.
    struct Touched {
      struct Account* acc = nullptr;
      bool looked_up = false;
      int64_t charged = 0;
      std::vector<Cycle*> cycles;
      Cycle* last_cycle = nullptr;
      int32_t last_day = 0;
      PlanId last_plan;
      const PlanVersion* last_terms = nullptr;
    };
    std::unordered_map<int64_t, Touched> touched;
    touched.reserve(std::min<size_t>(usage.size(), accounts_.size()));
    std::map<int32_t, std::string> fingerprints;  // day -> packed fingerprints
    for (const UsageEvent& e : usage) {
      newest_day_ = std::max<int64_t>(newest_day_, e.ts.date().days);
    }
    const int64_t horizon = newest_day_ - options_.rated_window_days;
    // Rated charges go out as headerless CSV (see kRatedChargeTable): half the bytes of NDJSON
    // to write, commit and decode, at rating's volume.
    std::string& charge_rows = op.outbox[std::string(kRatedChargeTable)];
    int64_t& charge_count = op.outbox_rows[std::string(kRatedChargeTable)];
    charge_rows.reserve(charge_rows.size() + usage.size() * 200);  // a CSV charge is ~150 bytes
    TextBuffer line(512);
    // Records come in time order, so the day's fingerprints and totals are looked up once a day.
    int32_t current_day = std::numeric_limits<int32_t>::min();
    std::string* day_fingerprints = nullptr;
    LedgerDayTotals* day_totals = nullptr;
    for (const UsageEvent& e : usage) {
      const int32_t day = e.ts.date().days;
      if (day < horizon) {
        ++out->too_old;
        continue;
      }
      const Fingerprint f = FingerprintOf(e.event_id);
      if (AlreadyRated(day, f)) {
        ++out->already_rated;
        continue;
      }
      op_rated_.Insert(f);
      op.rated.push_back({day, f});
      if (day != current_day) {
        current_day = day;
        day_fingerprints = &fingerprints[day];
        day_totals = &op.totals[day];
      }
      day_fingerprints->append(reinterpret_cast<const char*>(&f), sizeof f);
      ChargeEvent ce;
      ce.event_id = ChargeIdFor(e.event_id);
      ce.ts = e.ts;
      ce.entry = ChargeEntry::kUsage;
      ce.subscriber_id = e.subscriber_id;
      ce.partner_id = e.partner_id;
      ce.usage_event_id = e.event_id;
      Touched& t = touched[e.subscriber_id.value()];
      if (!t.looked_up) {
        t.looked_up = true;
        if (accounts_.count(e.subscriber_id.value())) {
          TALLY_ASSIGN_OR_RETURN(t.acc, Find(op, e.subscriber_id));
        }
      }
      struct Account* acc = t.acc;
      Cycle* c = nullptr;
      const PlanVersion* pv = nullptr;
      if (acc) {
        // The cycle holding the record's day: the last one used when it still does (no cycle
        // opens or closes inside it), else EnsureCycle rolls the account forward.
        const int32_t d = std::max(day, acc->activated.date().days);
        if (t.last_cycle && t.last_cycle->start.days <= d && d < t.last_cycle->end.days) {
          c = t.last_cycle;
        } else {
          TALLY_ASSIGN_OR_RETURN(c, EnsureCycle(op, *acc, e.ts));
          t.last_cycle = c;
        }
      }
      if (c) {
        const PlanId plan = acc->PlanAt(e.ts);
        if (t.last_terms && t.last_day == day && t.last_plan == plan) {
          pv = t.last_terms;
        } else {
          pv = PlanOn(plan, acc->region, e.ts.date());
          t.last_day = day;
          t.last_plan = plan;
          t.last_terms = pv;
        }
      }
      if (!pv) {
        // No account (or no terms): recorded at zero and flagged, never dropped.
        ++out->no_account;
        ce.ref = acc ? "no plan terms for this time" : "no account in the ledger";
        if (acc) {
          ce.currency = acc->currency;
          ce.billing_type = acc->billing;
        }
        line.Clear();
        WriteCsvRow(line, ce);
        charge_rows.append(line.view());
        ++charge_count;
        continue;
      }
      const BundleState before = c->left;
      const Charge charge = tally::RateUsage(*pv, e, &c->left);
      ce.plan_id = pv->plan_id;
      ce.plan_version = pv->version;
      ce.billing_type = acc->billing;
      ce.amount_minor = charge.minor;
      ce.currency = acc->currency;
      ce.kind = charge.kind;
      int64_t units = 1, drawn = 0;
      switch (e.kind) {
        case UsageKind::kVoiceCall:
          units = VoiceMinutes(e.duration_s.value_or(0));
          drawn = before.voice_min_left == kUnlimited
                      ? (charge.kind == ChargeKind::kBundle ? units : 0)
                      : before.voice_min_left - c->left.voice_min_left;
          break;
        case UsageKind::kSms:
          drawn = before.sms_left == kUnlimited ? (charge.kind == ChargeKind::kBundle ? 1 : 0)
                                                : before.sms_left - c->left.sms_left;
          break;
        case UsageKind::kDataSession:
          units = DataMegabytes(e.bytes.value_or(0));
          drawn = before.data_mb_left == kUnlimited
                      ? (charge.kind == ChargeKind::kBundle ? units : 0)
                      : before.data_mb_left - c->left.data_mb_left;
          break;
      }
      ce.units = units;
      ce.bundle_units = drawn;
      if (acc->billing == BillingType::kPrepaid) {
        ce.insufficient_balance = charge.minor > 0 && acc->balance < charge.minor;
        if (ce.insufficient_balance) ++out->insufficient;
        acc->balance -= charge.minor;
        ce.balance_minor = acc->balance;
      } else {
        c->usage += charge.minor;
        ce.invoice_id = c->id;
      }
      if (acc->status != SubscriberStatus::kActive)
        ce.ref = std::string("account ") + std::string(Name(acc->status));
      t.charged += charge.minor;
      if (std::find(t.cycles.begin(), t.cycles.end(), c) == t.cycles.end()) t.cycles.push_back(c);
      ++out->rated;
      out->charged_minor += charge.minor;
      ++day_totals->usage_charges;
      day_totals->usage_charge_minor += charge.minor;
      line.Clear();
      WriteCsvRow(line, ce);
      charge_rows.append(line.view());
      ++charge_count;
    }
    const Timestamp now = WallClock();
    for (const auto& [id, t] : touched) {
      if (t.cycles.empty()) continue;  // no account, or nothing rated on it
      struct Account& acc = *t.acc;
      for (Cycle* c : t.cycles) TALLY_RETURN_IF_ERROR(SaveCycleUsage(*c));
      TALLY_RETURN_IF_ERROR(SaveBalance(acc));
      TALLY_RETURN_IF_ERROR(Journal(acc, now, "usage", -t.charged, "rating batch"));
    }
    for (const auto& [day, packed] : fingerprints) {
      TALLY_RETURN_IF_ERROR(
          store_->Exec(S::kInsertRatedBatch, {next_batch_id_++, day, SqlValue::Bytes(packed)}));
    }
    return Status::Ok();
  }

  // ---- Setup -------------------------------------------------------------------------------

  Status LoadState() {
    JsonRecordReader<Partner> partner_reader;
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadPartners, {}, [&](const SqlRow& s) -> Status {
      TALLY_ASSIGN_OR_RETURN(Partner p, partner_reader.Parse(Chomp(s.Text(0))));
      partners_[p.partner_id.value()] = p;
      return Status::Ok();
    }));
    JsonRecordReader<PlanVersion> plan_reader;
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadPlanVersions, {}, [&](const SqlRow& s) -> Status {
      TALLY_ASSIGN_OR_RETURN(PlanVersion v, plan_reader.Parse(Chomp(s.Text(0))));
      plans_[{v.plan_id.value(), static_cast<int>(v.region)}].push_back(v);
      return Status::Ok();
    }));
    for (auto& [key, list] : plans_) {
      std::sort(list.begin(), list.end(), [](const PlanVersion& a, const PlanVersion& b) {
        return a.effective_from < b.effective_from;
      });
    }
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadAccounts, {}, [&](const SqlRow& s) -> Status {
      struct Account a;
      a.id = SubscriberId(s.Int(0));
      a.partner = PartnerId(s.Int(1));
      TALLY_ASSIGN_OR_RETURN(a.region, ParseEnum<Region>(s.Text(2)));
      TALLY_ASSIGN_OR_RETURN(a.billing, ParseEnum<BillingType>(s.Text(3)));
      TALLY_ASSIGN_OR_RETURN(a.currency, Currency::Parse(s.Text(4)));
      TALLY_ASSIGN_OR_RETURN(a.status, ParseEnum<SubscriberStatus>(s.Text(5)));
      if (!s.IsNull(6)) a.status_date = Date{static_cast<int32_t>(s.Int(6))};
      a.activated = Timestamp{s.Int(7)};
      a.cycle_day = static_cast<int>(s.Int(8));
      a.balance = s.Int(9);
      a.profile = std::make_shared<const std::string>(s.Text(10));
      accounts_[a.id.value()] = std::move(a);
      return Status::Ok();
    }));
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadPlanHistory, {}, [&](const SqlRow& s) {
      auto it = accounts_.find(s.Int(0));
      if (it != accounts_.end()) it->second.plans.push_back({s.Int(1), PlanId(s.Int(2))});
      return Status::Ok();
    }));
    for (auto& [id, a] : accounts_) {
      if (a.plans.empty())
        return Status::Corruption("ledger: account " + std::to_string(id) + " has no plan history");
    }
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadRecentCycles, {}, [&](const SqlRow& s) {
      auto it = accounts_.find(s.Int(1));
      if (it == accounts_.end()) return Status::Ok();
      Cycle c;
      c.id = s.Int(0);
      c.start = Date{static_cast<int32_t>(s.Int(2))};
      c.end = Date{static_cast<int32_t>(s.Int(3))};
      c.plan = PlanId(s.Int(4));
      c.version = static_cast<int32_t>(s.Int(5));
      c.plan_price = s.Int(6);
      c.left = BundleState{s.Int(7), s.Int(8), s.Int(9)};
      c.fee = s.Int(10);
      c.usage = s.Int(11);
      c.adjust = s.Int(12);
      c.closed = s.Int(13) != 0;
      it->second.cycles[c.start.days] = c;
      return Status::Ok();
    }));
    TALLY_RETURN_IF_ERROR(store_->Query(S::kLoadCounters, {}, [&](const SqlRow& s) {
      auto value = [&](int col) { return s.IsNull(col) ? 0 : s.Int(col); };
      next_cycle_id_ = value(0) + 1;
      next_recharge_id_ = value(1) + 1;
      next_batch_id_ = value(2) + 1;
      newest_day_ = value(3);
      delivered_seq_ = value(4);
      return Status::Ok();
    }));
    // The rated ids inside the window.
    return store_->Query(S::kLoadRatedBatches, {newest_day_ - options_.rated_window_days},
                         [&](const SqlRow& s) -> Status {
                           std::string_view blob = s.Bytes(1);
                           if (blob.size() % sizeof(Fingerprint) != 0)
                             return Status::Corruption("ledger: a rated batch is truncated");
                           FingerprintSet& set = rated_[static_cast<int32_t>(s.Int(0))];
                           for (size_t i = 0; i < blob.size(); i += sizeof(Fingerprint)) {
                             Fingerprint f;
                             std::memcpy(&f, blob.data() + i, sizeof f);
                             set.Insert(f);
                           }
                           return Status::Ok();
                         });
  }

  static std::string_view Chomp(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
    return s;
  }

  std::unique_ptr<LedgerStore> store_;
  LedgerOptions options_;

  // Writer-thread state.
  std::unordered_map<int64_t, Partner> partners_;
  std::map<std::pair<int64_t, int>, std::vector<PlanVersion>> plans_;
  std::unordered_map<int64_t, struct Account> accounts_;
  std::unordered_map<int32_t, FingerprintSet> rated_;
  FingerprintSet op_rated_;
  int64_t next_cycle_id_ = 1;
  int64_t next_recharge_id_ = 1;
  int64_t next_batch_id_ = 1;
  int64_t newest_day_ = 0;
  int64_t delivered_seq_ = 0;
  std::atomic<int64_t> account_count_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Op>> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace

Result<std::unique_ptr<Ledger>> OpenLedgerOnStore(std::unique_ptr<LedgerStore> store,
                                                  LedgerOptions options) {
  auto ledger = std::make_unique<StoreLedger>(std::move(store), options);
  TALLY_RETURN_IF_ERROR(ledger->Init());
  return std::unique_ptr<Ledger>(std::move(ledger));
}

}  // namespace tally
