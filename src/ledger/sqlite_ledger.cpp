// The SQLite ledger. One writer thread owns the connection and the in-memory account state; every
// call is queued to it as an operation. The writer takes every waiting operation into one
// transaction (group commit: one fsync for the group), runs each inside a savepoint so a failing
// one leaves the others intact, and answers the callers after COMMIT. docs/ledger.md describes the
// model and its rules.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
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
#include "ledger/ledger.h"
#include "ledger/sqlite_db.h"
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

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS partners (partner_id INTEGER PRIMARY KEY, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_versions (
  plan_id INTEGER NOT NULL, region TEXT NOT NULL, version INTEGER NOT NULL, row TEXT NOT NULL,
  PRIMARY KEY (plan_id, region, version));
CREATE TABLE IF NOT EXISTS accounts (
  subscriber_id INTEGER PRIMARY KEY, partner_id INTEGER NOT NULL, region TEXT NOT NULL,
  billing_type TEXT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, status_day INTEGER,
  activated_us INTEGER NOT NULL, cycle_day INTEGER NOT NULL, balance_minor INTEGER NOT NULL,
  profile TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_history (
  subscriber_id INTEGER NOT NULL, from_us INTEGER NOT NULL, plan_id INTEGER NOT NULL,
  PRIMARY KEY (subscriber_id, from_us));
CREATE TABLE IF NOT EXISTS cycles (
  cycle_id INTEGER PRIMARY KEY, subscriber_id INTEGER NOT NULL, start_day INTEGER NOT NULL,
  end_day INTEGER NOT NULL, plan_id INTEGER NOT NULL, plan_version INTEGER NOT NULL,
  plan_price INTEGER NOT NULL, data_mb_left INTEGER NOT NULL, voice_min_left INTEGER NOT NULL,
  sms_left INTEGER NOT NULL, fee_minor INTEGER NOT NULL, usage_minor INTEGER NOT NULL,
  adjustment_minor INTEGER NOT NULL, closed INTEGER NOT NULL,
  UNIQUE (subscriber_id, start_day));
CREATE TABLE IF NOT EXISTS recharges (
  recharge_id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, request_hash INTEGER NOT NULL,
  subscriber_id INTEGER NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
  channel TEXT NOT NULL, state TEXT NOT NULL, ts_us INTEGER NOT NULL, balance_after INTEGER NOT NULL,
  event_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS compensations (
  idempotency_key TEXT PRIMARY KEY, recharge_id INTEGER NOT NULL UNIQUE, kind TEXT NOT NULL,
  ts_us INTEGER NOT NULL, balance_after INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
  entry_id INTEGER PRIMARY KEY, subscriber_id INTEGER NOT NULL, ts_us INTEGER NOT NULL,
  kind TEXT NOT NULL, amount_minor INTEGER NOT NULL, balance_after INTEGER NOT NULL, ref TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS day_totals (
  day INTEGER PRIMARY KEY, recharges INTEGER NOT NULL, recharge_minor INTEGER NOT NULL,
  usage_charges INTEGER NOT NULL, usage_charge_minor INTEGER NOT NULL, fee_minor INTEGER NOT NULL,
  compensation_minor INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rated_batches (batch_id INTEGER PRIMARY KEY, day INTEGER NOT NULL, fingerprints BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS rated_batches_day ON rated_batches (day);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL,
  body TEXT NOT NULL, rows INTEGER NOT NULL);
)sql";

class SqliteLedger final : public Ledger {
 public:
  SqliteLedger(std::unique_ptr<SqliteDb> db, SqliteLedgerOptions options, int lock_fd)
      : lock_(lock_fd), db_(std::move(db)), options_(options) {}
  ~SqliteLedger() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    // The statements, then the connection, then (last, lock_ is the first member) the lock.
  }

  Status Init() {
    TALLY_RETURN_IF_ERROR(db_->Exec(kSchema));
    TALLY_RETURN_IF_ERROR(Prepare());
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
        TALLY_RETURN_IF_ERROR(st_upsert_partner_.Bind(p.partner_id.value(), row.view()).Run());
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
        TALLY_RETURN_IF_ERROR(
            st_insert_plan_.Bind(v.plan_id.value(), Name(v.region), int64_t{v.version}, row.view())
                .Run());
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
          st_insert_plan_history_.Bind(acc.id.value(), ts.micros, r.plan_id.value()).Run());
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
          st_insert_plan_history_.Bind(id.value(), ts.micros, plan.value()).Run());
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
      st_invoices_.Bind(id.value());
      for (;;) {
        TALLY_ASSIGN_OR_RETURN(bool row, st_invoices_.Step());
        if (!row) break;
        Invoice inv;
        inv.invoice_id = st_invoices_.Int(0);
        inv.subscriber_id = id;
        inv.period_start = Date{static_cast<int32_t>(st_invoices_.Int(1))};
        inv.period_end = Date{static_cast<int32_t>(st_invoices_.Int(2))};
        inv.fee_minor = st_invoices_.Int(3);
        inv.usage_minor = st_invoices_.Int(4);
        inv.adjustment_minor = st_invoices_.Int(5);
        inv.closed = st_invoices_.Int(6) != 0;
        inv.currency = acc->currency;
        inv.total_minor = inv.fee_minor + inv.usage_minor + inv.adjustment_minor;
        out.push_back(inv);
      }
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<LedgerDayTotals>> DayTotals() override {
    std::vector<LedgerDayTotals> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op&) -> Status {
      TALLY_ASSIGN_OR_RETURN(SqliteStmt s,
                             db_->Prepare("SELECT day, recharges, recharge_minor, usage_charges, "
                                          "usage_charge_minor, fee_minor, "
                                          "compensation_minor FROM day_totals ORDER BY day"));
      for (;;) {
        TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        out.push_back({Date{static_cast<int32_t>(s.Int(0))}, s.Int(1), s.Int(2), s.Int(3), s.Int(4),
                       s.Int(5), s.Int(6)});
      }
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<OutboxBatch>> PendingOutbox(size_t max_batches) override {
    std::vector<OutboxBatch> out;
    TALLY_RETURN_IF_ERROR(Run([&](Op&) -> Status {
      st_pending_.Bind(delivered_seq_, static_cast<int64_t>(max_batches));
      for (;;) {
        TALLY_ASSIGN_OR_RETURN(bool row, st_pending_.Step());
        if (!row) break;
        out.push_back({st_pending_.Int(0), std::string(st_pending_.Text(1)),
                       std::string(st_pending_.Text(2)), st_pending_.Int(3)});
      }
      return Status::Ok();
    }));
    return out;
  }

  int64_t account_count() const override { return account_count_.load(); }

  Status MarkDelivered(int64_t seq) override {
    return Run([&](Op&) -> Status {
      if (seq <= delivered_seq_) return Status::Ok();
      TALLY_RETURN_IF_ERROR(st_meta_.Bind("delivered_seq", std::to_string(seq)).Run());
      TALLY_RETURN_IF_ERROR(st_delete_outbox_.Bind(seq).Run());
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
    Status begin = db_->Exec("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (auto& op : group) op->done.set_value(begin);
      return;
    }
    std::unordered_map<int64_t, std::optional<struct Account>> group_undo;
    std::map<std::string, std::string> outbox;
    std::map<std::string, int64_t> outbox_rows;
    std::map<int32_t, LedgerDayTotals> totals;
    for (auto& op : group) {
      Status sp = st_savepoint_.Bind().Run();  // prepared once: one per call adds up
      op->status = sp.ok() ? op->fn(*op) : sp;
      if (op->status.ok()) {
        op->status = st_release_.Bind().Run();
      }
      if (!op->status.ok()) {
        (void)db_->Exec("ROLLBACK TO op; RELEASE op");
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
        st = st_insert_outbox_.Bind(table, SqliteStmt::Borrowed{text}, outbox_rows[table]).Run();
      }
    }
    for (auto& [day, t] : totals) {
      if (st.ok()) {
        st = st_upsert_totals_
                 .Bind(int64_t{day}, t.recharges, t.recharge_minor, t.usage_charges,
                       t.usage_charge_minor, t.fee_minor, t.compensation_minor)
                 .Run();
      }
    }
    if (st.ok()) st = db_->Exec("COMMIT");
    if (!st.ok()) {
      (void)db_->Exec("ROLLBACK");
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
      // that ended before the rated window from memory (they stay in SQLite for invoices).
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
    return st_journal_.Bind(acc.id.value(), ts.micros, kind, amount, acc.balance, ref).Run();
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
    return st_upsert_account_
        .Bind(acc.id.value(), acc.partner.value(), Name(acc.region), Name(acc.billing),
              acc.currency.code(), Name(acc.status),
              acc.status_date ? std::optional<int64_t>(acc.status_date->days) : std::nullopt,
              acc.activated.micros, int64_t{acc.cycle_day}, acc.balance, *acc.profile)
        .Run();
  }

  // Saves balance only (the rating hot path: no profile row, no outbox subscriber row).
  Status SaveBalance(const struct Account& acc) {
    return st_update_balance_.Bind(acc.balance, acc.id.value()).Run();
  }

  // What rating changes in a cycle that EnsureCycle has already saved: an UPDATE in place, not a
  // replacement of the row and its index entries.
  Status SaveCycleUsage(const Cycle& c) {
    return st_update_cycle_usage_
        .Bind(c.left.data_mb_left, c.left.voice_min_left, c.left.sms_left, c.usage, c.id)
        .Run();
  }

  Status SaveCycle(const struct Account& acc, const Cycle& c) {
    return st_upsert_cycle_
        .Bind(c.id, acc.id.value(), int64_t{c.start.days}, int64_t{c.end.days}, c.plan.value(),
              int64_t{c.version}, c.plan_price, c.left.data_mb_left, c.left.voice_min_left,
              c.left.sms_left, c.fee, c.usage, c.adjust, int64_t{c.closed})
        .Run();
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
    st_find_recharge_.Bind(r.idempotency_key);
    TALLY_ASSIGN_OR_RETURN(bool found, st_find_recharge_.Step());
    if (found) {
      if (st_find_recharge_.Int(1) != hash) {
        return Status::AlreadyExists("idempotency key '" + r.idempotency_key +
                                     "' was used for a different recharge (" +
                                     std::to_string(st_find_recharge_.Int(0)) + ")");
      }
      ReadRecharge(st_find_recharge_, out);
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
    TALLY_RETURN_IF_ERROR(st_insert_recharge_
                              .Bind(id, r.idempotency_key, hash, acc->id.value(), r.amount_minor,
                                    currency.code(), Name(r.channel), ok ? "succeeded" : "failed",
                                    ts.micros, acc->balance, out->event_id)
                              .Run());
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

  static void ReadRecharge(const SqliteStmt& s, RechargeResult* out) {
    // recharge_id, request_hash, subscriber_id, amount, currency, channel, state, ts, balance,
    // event_id, key
    out->recharge_id = s.Int(0);
    out->subscriber_id = SubscriberId(s.Int(2));
    out->amount_minor = s.Int(3);
    out->currency = *Currency::Parse(s.Text(4));
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
  }

  Status DoCompensate(Op& op, const CompensateRequest& r, RechargeResult* out) {
    if (r.idempotency_key.empty() || r.idempotency_key.size() > kMaxKeyBytes) {
      return Status::InvalidArgument("idempotency key must be 1 to 128 bytes");
    }
    st_find_compensation_.Bind(r.idempotency_key);
    TALLY_ASSIGN_OR_RETURN(bool seen, st_find_compensation_.Step());
    if (seen) {
      if (st_find_compensation_.Int(0) != r.recharge_id ||
          (st_find_compensation_.Text(1) == "reversal") != r.reversal) {
        return Status::AlreadyExists("idempotency key '" + r.idempotency_key +
                                     "' was used for another refund or reversal");
      }
    }
    st_recharge_by_id_.Bind(r.recharge_id);
    TALLY_ASSIGN_OR_RETURN(bool found, st_recharge_by_id_.Step());
    if (!found)
      return Status::NotFound("recharge " + std::to_string(r.recharge_id) + " does not exist");
    ReadRecharge(st_recharge_by_id_, out);
    if (seen) {
      out->balance_minor = st_find_compensation_.Int(2);
      out->ts = Timestamp{st_find_compensation_.Int(3)};
      out->replayed = true;
      return Status::Ok();
    }
    if (out->state != RechargeState::kSucceeded) {
      return Status::InvalidArgument("recharge " + std::to_string(r.recharge_id) + " is " +
                                     std::string(st_recharge_by_id_.Text(6)) +
                                     "; only a succeeded recharge can be " +
                                     (r.reversal ? "reversed" : "refunded"));
    }
    TALLY_ASSIGN_OR_RETURN(struct Account * acc, Find(op, out->subscriber_id));
    const Timestamp ts = r.ts.value_or(WallClock());
    acc->balance -= out->amount_minor;
    const char* kind = r.reversal ? "reversal" : "refund";
    TALLY_RETURN_IF_ERROR(
        st_set_recharge_state_.Bind(r.reversal ? "reversed" : "refunded", r.recharge_id).Run());
    TALLY_RETURN_IF_ERROR(st_insert_compensation_
                              .Bind(r.idempotency_key, r.recharge_id, kind, ts.micros, acc->balance)
                              .Run());
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
      st_insert_rated_.Bind(next_batch_id_++, int64_t{day});
      st_insert_rated_.BindBlob(3, packed);
      TALLY_RETURN_IF_ERROR(st_insert_rated_.Run());
    }
    return Status::Ok();
  }

  // ---- Setup -------------------------------------------------------------------------------

  Status Prepare() {
    auto prep = [&](SqliteStmt* s, std::string_view sql) -> Status {
      TALLY_ASSIGN_OR_RETURN(*s, db_->Prepare(sql));
      return Status::Ok();
    };
    TALLY_RETURN_IF_ERROR(prep(&st_savepoint_, "SAVEPOINT op"));
    TALLY_RETURN_IF_ERROR(prep(&st_release_, "RELEASE op"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_upsert_partner_, "INSERT OR REPLACE INTO partners VALUES (?, ?)"));
    TALLY_RETURN_IF_ERROR(prep(&st_insert_plan_, "INSERT INTO plan_versions VALUES (?, ?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(prep(&st_upsert_account_,
                               "INSERT OR REPLACE INTO accounts VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_update_balance_, "UPDATE accounts SET balance_minor = ? WHERE subscriber_id = ?"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_insert_plan_history_, "INSERT OR REPLACE INTO plan_history VALUES (?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(prep(
        &st_upsert_cycle_, "INSERT OR REPLACE INTO cycles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_update_cycle_usage_,
             "UPDATE cycles SET data_mb_left = ?, voice_min_left = ?, sms_left = ?, "
             "usage_minor = ? WHERE cycle_id = ?"));
    TALLY_RETURN_IF_ERROR(prep(
        &st_invoices_,
        "SELECT cycle_id, start_day, end_day, fee_minor, usage_minor, adjustment_minor, closed "
        "FROM cycles WHERE subscriber_id = ? ORDER BY start_day"));
    constexpr std::string_view kRechargeCols =
        "recharge_id, request_hash, subscriber_id, amount_minor, currency, channel, state, ts_us, "
        "balance_after, "
        "event_id, idempotency_key FROM recharges ";
    TALLY_RETURN_IF_ERROR(prep(
        &st_find_recharge_, "SELECT " + std::string(kRechargeCols) + "WHERE idempotency_key = ?"));
    TALLY_RETURN_IF_ERROR(prep(&st_recharge_by_id_,
                               "SELECT " + std::string(kRechargeCols) + "WHERE recharge_id = ?"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_insert_recharge_, "INSERT INTO recharges VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_set_recharge_state_, "UPDATE recharges SET state = ? WHERE recharge_id = ?"));
    TALLY_RETURN_IF_ERROR(prep(&st_find_compensation_,
                               "SELECT recharge_id, kind, balance_after, ts_us FROM compensations "
                               "WHERE idempotency_key = ?"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_insert_compensation_, "INSERT INTO compensations VALUES (?, ?, ?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_journal_,
             "INSERT INTO journal (subscriber_id, ts_us, kind, amount_minor, balance_after, ref) "
             "VALUES (?, ?, ?, ?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_upsert_totals_,
             "INSERT INTO day_totals VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (day) DO "
             "UPDATE SET "
             "recharges = recharges + ?2, recharge_minor = recharge_minor + ?3, "
             "usage_charges = usage_charges + ?4, usage_charge_minor = usage_charge_minor + ?5, "
             "fee_minor = fee_minor + ?6, compensation_minor = compensation_minor + ?7"));
    TALLY_RETURN_IF_ERROR(prep(&st_insert_rated_, "INSERT INTO rated_batches VALUES (?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_insert_outbox_, "INSERT INTO outbox (table_name, body, rows) VALUES (?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(
        prep(&st_pending_,
             "SELECT seq, table_name, body, rows FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"));
    TALLY_RETURN_IF_ERROR(prep(&st_delete_outbox_, "DELETE FROM outbox WHERE seq <= ?"));
    TALLY_RETURN_IF_ERROR(prep(&st_meta_, "INSERT OR REPLACE INTO meta VALUES (?, ?)"));
    return Status::Ok();
  }

  Result<int64_t> ScalarInt(std::string_view sql) {
    TALLY_ASSIGN_OR_RETURN(SqliteStmt s, db_->Prepare(sql));
    TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
    return row && !s.IsNull(0) ? s.Int(0) : 0;
  }

  Status LoadState() {
    TALLY_ASSIGN_OR_RETURN(SqliteStmt s, db_->Prepare("SELECT row FROM partners"));
    JsonRecordReader<Partner> partner_reader;
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      TALLY_ASSIGN_OR_RETURN(Partner p, partner_reader.Parse(Chomp(s.Text(0))));
      partners_[p.partner_id.value()] = p;
    }
    TALLY_ASSIGN_OR_RETURN(
        s, db_->Prepare("SELECT row FROM plan_versions ORDER BY plan_id, region, version"));
    JsonRecordReader<PlanVersion> plan_reader;
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      TALLY_ASSIGN_OR_RETURN(PlanVersion v, plan_reader.Parse(Chomp(s.Text(0))));
      plans_[{v.plan_id.value(), static_cast<int>(v.region)}].push_back(v);
    }
    for (auto& [key, list] : plans_) {
      std::sort(list.begin(), list.end(), [](const PlanVersion& a, const PlanVersion& b) {
        return a.effective_from < b.effective_from;
      });
    }
    TALLY_ASSIGN_OR_RETURN(s,
                           db_->Prepare("SELECT subscriber_id, partner_id, region, billing_type, "
                                        "currency, status, status_day, activated_us, "
                                        "cycle_day, balance_minor, profile FROM accounts"));
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
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
    }
    TALLY_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT subscriber_id, from_us, plan_id FROM "
                                           "plan_history ORDER BY subscriber_id, from_us"));
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      auto it = accounts_.find(s.Int(0));
      if (it != accounts_.end()) it->second.plans.push_back({s.Int(1), PlanId(s.Int(2))});
    }
    for (auto& [id, a] : accounts_) {
      if (a.plans.empty())
        return Status::Corruption("ledger: account " + std::to_string(id) + " has no plan history");
    }
    // The last three cycles of every account (older ones only matter to invoices, read from SQL).
    TALLY_ASSIGN_OR_RETURN(
        s, db_->Prepare(
               "SELECT cycle_id, subscriber_id, start_day, end_day, plan_id, plan_version, "
               "plan_price, data_mb_left, "
               "voice_min_left, sms_left, fee_minor, usage_minor, adjustment_minor, closed FROM ("
               "SELECT *, row_number() OVER (PARTITION BY subscriber_id ORDER BY start_day DESC) "
               "AS rn FROM cycles) "
               "WHERE rn <= 3"));
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      auto it = accounts_.find(s.Int(1));
      if (it == accounts_.end()) continue;
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
    }
    TALLY_ASSIGN_OR_RETURN(next_cycle_id_, ScalarInt("SELECT max(cycle_id) FROM cycles"));
    ++next_cycle_id_;
    TALLY_ASSIGN_OR_RETURN(next_recharge_id_, ScalarInt("SELECT max(recharge_id) FROM recharges"));
    ++next_recharge_id_;
    TALLY_ASSIGN_OR_RETURN(next_batch_id_, ScalarInt("SELECT max(batch_id) FROM rated_batches"));
    ++next_batch_id_;
    TALLY_ASSIGN_OR_RETURN(newest_day_, ScalarInt("SELECT max(day) FROM rated_batches"));
    TALLY_ASSIGN_OR_RETURN(
        delivered_seq_,
        ScalarInt("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'delivered_seq'"));
    // The rated ids inside the window.
    TALLY_ASSIGN_OR_RETURN(
        s, db_->Prepare("SELECT day, fingerprints FROM rated_batches WHERE day >= ?"));
    s.Bind(newest_day_ - options_.rated_window_days);
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      std::string_view blob = s.Blob(1);
      if (blob.size() % sizeof(Fingerprint) != 0)
        return Status::Corruption("ledger: a rated batch is truncated");
      FingerprintSet& set = rated_[static_cast<int32_t>(s.Int(0))];
      for (size_t i = 0; i < blob.size(); i += sizeof(Fingerprint)) {
        Fingerprint f;
        std::memcpy(&f, blob.data() + i, sizeof f);
        set.Insert(f);
      }
    }
    return Status::Ok();
  }

  static std::string_view Chomp(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
    return s;
  }

  // Holds DIR/ledger.lock; closing the descriptor releases it.
  struct LockFile {
    int fd;
    explicit LockFile(int f) : fd(f) {}
    ~LockFile() { ::close(fd); }
  };
  LockFile lock_;
  std::unique_ptr<SqliteDb> db_;
  SqliteLedgerOptions options_;

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

  SqliteStmt st_upsert_partner_, st_insert_plan_, st_upsert_account_, st_update_balance_,
      st_insert_plan_history_, st_upsert_cycle_, st_update_cycle_usage_, st_savepoint_, st_release_,
      st_invoices_, st_find_recharge_, st_recharge_by_id_, st_insert_recharge_,
      st_set_recharge_state_, st_find_compensation_, st_insert_compensation_, st_journal_,
      st_upsert_totals_, st_insert_rated_, st_insert_outbox_, st_pending_, st_delete_outbox_,
      st_meta_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Op>> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace

Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& data_dir,
                                                 SqliteLedgerOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  const std::string lock_path = data_dir + "/ledger.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::Unavailable(data_dir +
                               ": the ledger is open in another tally process (is `tally serve` "
                               "running on this directory?)");
  }
  auto db = SqliteDb::Open(data_dir + "/ledger.sqlite");
  if (!db.ok()) {
    ::close(fd);
    return db.status();
  }
  auto ledger = std::make_unique<SqliteLedger>(std::move(*db), options, fd);
  TALLY_RETURN_IF_ERROR(ledger->Init());
  return std::unique_ptr<Ledger>(std::move(ledger));
}

}  // namespace tally
