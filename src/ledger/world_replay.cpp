#include "ledger/world_replay.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "ingest/csv_file.h"

namespace tally {

namespace {

namespace fs = std::filesystem;

// What one item of a subscriber's timeline is; at one instant activation comes first and
// deactivation last.
enum class ItemKind : uint8_t { kActivation, kPlanChange, kRecharge, kUsage, kDeactivation };

struct Item {
  int32_t day;
  int64_t subscriber;
  int64_t ts;
  ItemKind kind;
  uint32_t index;  // into the family's rows
};

Result<Date> WorldStart(const std::string& dir) {
  std::ifstream in(dir + "/manifest.json");
  if (!in) return Status::NotFound(dir + ": no manifest.json; is it a `tally generate` output?");
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const std::string key = "\"start\": \"";
  size_t at = s.find(key);
  if (at == std::string::npos) return Status::Corruption(dir + "/manifest.json: no start date");
  return ParseDate(std::string_view(s).substr(at + key.size(), 10));
}

template <typename Rec>
Result<std::vector<Rec>> ReadPart(const std::string& dir, std::string_view family,
                                  const std::string& part) {
  const std::string path = dir + "/" + std::string(family) + "/" + part;
  if (!fs::exists(path)) return std::vector<Rec>();
  return ReadCsvFile<Rec>(path);
}

class Replayer {
 public:
  Replayer(Ledger* ledger, const std::vector<PlanVersion>& plans, WorldReplayOptions options)
      : ledger_(ledger), plans_(plans), options_(options) {}

  // Reads one part's rows. Every part is read before the replay starts: the ledger rates in time
  // order across all subscribers (its rated window follows the newest record), and the parts split
  // subscribers, not time.
  Status Read(const std::string& dir, const std::string& part) {
    auto append = [](auto& into, auto rows) {
      into.insert(into.end(), std::make_move_iterator(rows.begin()),
                  std::make_move_iterator(rows.end()));
    };
    TALLY_ASSIGN_OR_RETURN(auto subs, ReadCsvFile<Subscriber>(dir + "/subscribers/" + part));
    append(subs_, std::move(subs));
    TALLY_ASSIGN_OR_RETURN(auto life,
                           ReadPart<LifecycleEvent>(dir, Name(EventFamily::kLifecycle), part));
    append(life_, std::move(life));
    TALLY_ASSIGN_OR_RETURN(auto recharges,
                           ReadPart<RechargeEvent>(dir, Name(EventFamily::kRecharge), part));
    append(recharges_, std::move(recharges));
    TALLY_ASSIGN_OR_RETURN(auto usage, ReadPart<UsageEvent>(dir, Name(EventFamily::kUsage), part));
    append(usage_, std::move(usage));
    return Status::Ok();
  }

  Status Replay(Date start) {
    if (usage_.size() + life_.size() + recharges_.size() > UINT32_MAX) {
      return Status::InvalidArgument("the world is too large to replay in one pass");
    }
    profiles_.clear();
    for (const Subscriber& s : subs_) profiles_[s.subscriber_id.value()] = &s;

    // The timeline, and each subscriber's plan when the world starts (the plan before its first
    // change; subscribers.csv holds the plan at the end).
    std::vector<Item> items;
    items.reserve(life_.size() + recharges_.size() + usage_.size());
    std::unordered_map<int64_t, PlanId> first_plan;
    std::unordered_map<int64_t, bool> acquired;
    for (uint32_t i = 0; i < life_.size(); ++i) {
      const LifecycleEvent& e = life_[i];
      ItemKind k = e.kind == LifecycleKind::kActivation   ? ItemKind::kActivation
                   : e.kind == LifecycleKind::kPlanChange ? ItemKind::kPlanChange
                                                          : ItemKind::kDeactivation;
      items.push_back({e.ts.date().days, e.subscriber_id.value(), e.ts.micros, k, i});
      if (k == ItemKind::kActivation) acquired[e.subscriber_id.value()] = true;
      if (k == ItemKind::kPlanChange && e.from_plan_id)
        first_plan.try_emplace(e.subscriber_id.value(), *e.from_plan_id);
    }
    for (uint32_t i = 0; i < recharges_.size(); ++i) {
      const RechargeEvent& e = recharges_[i];
      items.push_back(
          {e.ts.date().days, e.subscriber_id.value(), e.ts.micros, ItemKind::kRecharge, i});
    }
    for (uint32_t i = 0; i < usage_.size(); ++i) {
      const UsageEvent& e = usage_[i];
      items.push_back(
          {e.ts.date().days, e.subscriber_id.value(), e.ts.micros, ItemKind::kUsage, i});
    }
    // An activation goes first on its day: the generator lets a new subscriber use the service from
    // the start of the day it joins.
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
      const bool a_first = a.kind == ItemKind::kActivation,
                 b_first = b.kind == ItemKind::kActivation;
      return std::tie(a.day, a.subscriber, b_first, a.ts, a.kind, a.index) <
             std::tie(b.day, b.subscriber, a_first, b.ts, b.kind, b.index);
    });
    // The lifecycle plan changes are sorted by time: the first from_plan_id seen is the earliest
    // only if life_ is in time order per subscriber, which the generator guarantees.

    // Subscribers active when the world starts.
    std::vector<const Subscriber*> base;
    for (const Subscriber& s : subs_) {
      if (!acquired.count(s.subscriber_id.value())) base.push_back(&s);
    }
    Parallel(base.size(), [&](size_t i, WorldReplayReport& rep) {
      const Subscriber& s = *base[i];
      auto plan = first_plan.find(s.subscriber_id.value());
      Activate(s, plan == first_plan.end() ? s.plan_id : plan->second,
               StartOfDay(std::max(s.activation_date, start)), std::nullopt, rep);
    });

    // Day by day; within a day every subscriber's items in time order, subscribers in parallel.
    size_t i = 0;
    while (i < items.size()) {
      size_t end = i;
      std::vector<std::pair<size_t, size_t>> runs;  // one per subscriber
      while (end < items.size() && items[end].day == items[i].day) {
        size_t run_end = end;
        while (run_end < items.size() && items[run_end].day == items[i].day &&
               items[run_end].subscriber == items[end].subscriber) {
          ++run_end;
        }
        runs.push_back({end, run_end});
        end = run_end;
      }
      Parallel(runs.size(), [&](size_t r, WorldReplayReport& rep) {
        Run(items, runs[r].first, runs[r].second, rep);
      });
      i = end;
    }
    return Status::Ok();
  }

  WorldReplayReport& report() { return report_; }

 private:
  // Calls fn(i, report) for i in [0, n) from the option's number of threads.
  template <typename Fn>
  void Parallel(size_t n, Fn&& fn) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    const size_t t = std::min<size_t>(std::max(1, options_.threads), n);
    for (size_t k = 0; k < t; ++k) {
      threads.emplace_back([&] {
        WorldReplayReport rep;
        for (size_t i = next++; i < n; i = next++) fn(i, rep);
        Merge(rep);
      });
    }
    for (auto& th : threads) th.join();
  }

  void Merge(const WorldReplayReport& r) {
    std::lock_guard<std::mutex> lock(mu_);
    report_.accounts += r.accounts;
    report_.activations += r.activations;
    report_.recharges += r.recharges;
    report_.plan_changes += r.plan_changes;
    report_.deactivations += r.deactivations;
    report_.rating.rated += r.rating.rated;
    report_.rating.already_rated += r.rating.already_rated;
    report_.rating.no_account += r.rating.no_account;
    report_.rating.insufficient += r.rating.insufficient;
    report_.rating.too_old += r.rating.too_old;
    report_.rating.charged_minor += r.rating.charged_minor;
    report_.failures += r.failures;
    for (const auto& e : r.errors) {
      if (report_.errors.size() < 20) report_.errors.push_back(e);
    }
  }

  static void Fail(WorldReplayReport& rep, const std::string& what, const Status& st) {
    ++rep.failures;
    if (rep.errors.size() < 20) rep.errors.push_back(what + ": " + st.message());
  }

  void Activate(const Subscriber& s, PlanId plan, Timestamp ts, std::optional<std::string> event_id,
                WorldReplayReport& rep) {
    ActivateRequest r;
    r.subscriber_id = s.subscriber_id;
    r.partner_id = s.partner_id;
    r.plan_id = plan;
    r.region = s.region;
    r.ts = ts;
    r.cycle_day = std::min(28, CivilFromDays(s.activation_date.days).day);
    r.profile = s;
    r.existing = !event_id.has_value();  // the world's base: active before it starts
    r.event_id = std::move(event_id);
    // One month of the plan's price as opening credit (the generator starts every prepaid balance
    // near one month's price but does not write it out).
    for (const PlanVersion& v : plans_) {
      if (v.plan_id == plan && v.region == s.region && v.EffectiveOn(ts.date()) &&
          v.billing_type == BillingType::kPrepaid) {
        r.opening_balance_minor = v.monthly_price_minor;
      }
    }
    auto st = ledger_->Activate(r);
    if (!st.ok())
      return Fail(rep, "activate subscriber " + std::to_string(s.subscriber_id.value()),
                  st.status());
    ++rep.accounts;
  }

  void Run(const std::vector<Item>& items, size_t from, size_t to, WorldReplayReport& rep) {
    std::vector<UsageEvent> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      auto s = ledger_->RateUsage(batch);
      if (s.ok()) {
        rep.rating.rated += s->rated;
        rep.rating.already_rated += s->already_rated;
        rep.rating.no_account += s->no_account;
        rep.rating.insufficient += s->insufficient;
        rep.rating.too_old += s->too_old;
        rep.rating.charged_minor += s->charged_minor;
      } else {
        Fail(rep, "rate " + std::to_string(batch.size()) + " usage records", s.status());
      }
      batch.clear();
    };
    for (size_t k = from; k < to; ++k) {
      const Item& it = items[k];
      if (it.kind == ItemKind::kUsage) {
        batch.push_back(usage_[it.index]);
        continue;
      }
      flush();
      switch (it.kind) {
        case ItemKind::kActivation: {
          const LifecycleEvent& e = life_[it.index];
          auto p = profiles_.find(e.subscriber_id.value());
          if (p == profiles_.end()) {
            Fail(rep, e.event_id, Status::NotFound("no subscriber row"));
            break;
          }
          Activate(*p->second, e.plan_id, e.ts, e.event_id, rep);
          ++rep.activations;
          break;
        }
        case ItemKind::kPlanChange: {
          const LifecycleEvent& e = life_[it.index];
          auto r =
              ledger_->ChangePlan(PlanChangeRequest{e.subscriber_id, e.plan_id, e.ts, e.event_id});
          if (r.ok()) {
            ++rep.plan_changes;
          } else {
            Fail(rep, e.event_id, r.status());
          }
          break;
        }
        case ItemKind::kDeactivation: {
          const LifecycleEvent& e = life_[it.index];
          auto r = ledger_->SetStatus(StatusRequest{e.subscriber_id, AccountAction::kDeactivate,
                                                    e.ts, e.reason, e.event_id});
          if (r.ok()) {
            ++rep.deactivations;
          } else {
            Fail(rep, e.event_id, r.status());
          }
          break;
        }
        case ItemKind::kRecharge: {
          const RechargeEvent& e = recharges_[it.index];
          RechargeRequest r;
          r.idempotency_key = e.event_id;
          r.event_id = e.event_id;
          r.subscriber_id = e.subscriber_id;
          r.amount_minor = e.amount_minor;
          r.currency = e.currency;
          r.channel = e.channel;
          r.payment_status = e.payment_status;
          r.ts = e.ts;
          auto res = ledger_->Recharge(r);
          if (res.ok()) {
            ++rep.recharges;
          } else {
            Fail(rep, e.event_id, res.status());
          }
          break;
        }
        case ItemKind::kUsage:
          break;
      }
    }
    flush();
  }

  Ledger* ledger_;
  const std::vector<PlanVersion>& plans_;
  WorldReplayOptions options_;
  std::vector<Subscriber> subs_;
  std::vector<LifecycleEvent> life_;
  std::vector<RechargeEvent> recharges_;
  std::vector<UsageEvent> usage_;
  std::unordered_map<int64_t, const Subscriber*> profiles_;
  std::mutex mu_;
  WorldReplayReport report_;
};

}  // namespace

Result<WorldReplayReport> ReplayWorld(const std::string& world_dir, Ledger* ledger,
                                      WorldReplayOptions options) {
  TALLY_ASSIGN_OR_RETURN(Date start, WorldStart(world_dir));
  TALLY_ASSIGN_OR_RETURN(std::vector<Partner> partners,
                         ReadCsvFile<Partner>(world_dir + "/partners.csv"));
  TALLY_ASSIGN_OR_RETURN(std::vector<PlanVersion> plans,
                         ReadCsvFile<PlanVersion>(world_dir + "/plans.csv"));
  TALLY_RETURN_IF_ERROR(ledger->UpsertPartners(partners));
  TALLY_RETURN_IF_ERROR(ledger->AddPlanVersions(plans));
  std::vector<std::string> parts;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(world_dir + "/subscribers", ec)) {
    if (entry.path().extension() == ".csv") parts.push_back(entry.path().filename().string());
  }
  if (ec) return Status::IOError(world_dir + "/subscribers: " + ec.message());
  if (parts.empty()) {
    return Status::InvalidArgument(world_dir +
                                   ": no subscribers/part-*.csv; the ledger replays CSV worlds "
                                   "(tally generate --format csv)");
  }
  std::sort(parts.begin(), parts.end());
  Replayer replayer(ledger, plans, options);
  for (const std::string& part : parts) TALLY_RETURN_IF_ERROR(replayer.Read(world_dir, part));
  TALLY_RETURN_IF_ERROR(replayer.Replay(start));
  return replayer.report();
}

std::string WorldReplayReport::ToText() const {
  std::ostringstream out;
  out << "ledger: " << accounts << " accounts (" << activations << " activated during the world), "
      << recharges << " recharges, " << plan_changes << " plan changes, " << deactivations
      << " deactivations\n";
  out << "ledger: rated " << rating.rated << " usage records for " << rating.charged_minor
      << " minor units (" << rating.insufficient << " flagged for a short balance, "
      << rating.no_account << " without an account, " << rating.already_rated << " rated before, "
      << rating.too_old << " too old to rate)\n";
  if (failures > 0) {
    out << "ledger: " << failures << " events refused:\n";
    for (const auto& e : errors) out << "  " << e << "\n";
  }
  return out.str();
}

}  // namespace tally
