#include "insights/plan_advice.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_map>

#include "insights/json_out.h"
#include "metrics/analyses.h"
#include "metrics/result_cells.h"
#include "model/record_codec.h"

namespace tally {

namespace {

int64_t Over(int64_t units, int32_t bundle) {
  return bundle == kUnlimited ? 0 : std::max<int64_t>(0, units - bundle);
}

// Month index (year x 12 + month - 1) and day of month -> date. The day is at most 28.
Date CycleDate(int month_index, int day) {
  return Date{DaysFromCivil(month_index / 12, month_index % 12 + 1, day)};
}

int MonthIndexOf(Date d) {
  const CivilDate c = CivilFromDays(d.days);
  return c.year * 12 + c.month - 1;
}

// The three home usage kinds the trend looks at.
struct Kind {
  const char* name;
  const char* unit;
  int64_t CycleUsage::*units;
  int32_t PlanVersion::*bundle;
};
constexpr Kind kKinds[] = {
    {"data", "MB", &CycleUsage::data_mb, &PlanVersion::data_mb},
    {"voice", "minutes", &CycleUsage::voice_min, &PlanVersion::voice_minutes},
    {"SMS", "messages", &CycleUsage::sms, &PlanVersion::sms},
};

// Least-squares slope of v over 0..n-1 as a share of its mean, and whether it never falls and
// ends above where it started.
struct Trend {
  double slope = 0, mean = 0, growth = 0;
  bool rising = false;
};
Trend TrendOf(const std::vector<CycleUsage>& cycles, int64_t CycleUsage::*units) {
  Trend t;
  const size_t n = cycles.size();
  if (n == 0) return t;
  for (const CycleUsage& c : cycles) t.mean += static_cast<double>(c.*units);
  t.mean /= static_cast<double>(n);
  if (n < 2) return t;
  const double xbar = static_cast<double>(n - 1) / 2;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = static_cast<double>(i) - xbar;
    sxy += dx * (static_cast<double>(cycles[i].*units) - t.mean);
    sxx += dx * dx;
  }
  t.slope = sxy / sxx;
  t.growth = t.mean > 0 ? t.slope / t.mean : 0;
  t.rising = cycles.back().*units > cycles.front().*units;
  for (size_t i = 1; i < n; ++i) t.rising = t.rising && cycles[i].*units >= cycles[i - 1].*units;
  return t;
}

std::string MoneyText(int64_t minor, Currency c) {
  return Money{minor, c}.ToString();
}

std::string PlanName(const PlanVersion& p) {
  return "'" + p.name + "'";
}

std::string Percent(double share) {
  return std::to_string(std::llround(share * 100)) + "%";
}

}  // namespace

int64_t CycleCost(const PlanVersion& p, const CycleUsage& u) {
  return p.monthly_price_minor +
         Over(u.voice_min, p.voice_minutes) * p.overage_voice_per_min_minor +
         Over(u.sms, p.sms) * p.overage_sms_minor +
         Over(u.data_mb, p.data_mb) * p.overage_data_per_mb_minor +
         u.roaming_voice_min * p.roaming_voice_per_min_minor + u.roaming_sms * p.roaming_sms_minor +
         u.roaming_data_mb * p.roaming_data_per_mb_minor + u.premium_sms * p.premium_sms_minor;
}

PlanAdvice Advise(const PlanVersion& current, const std::vector<PlanVersion>& candidates,
                  std::vector<CycleUsage> cycles, const PlanAdviceOptions& o) {
  PlanAdvice a;
  a.current_plan = current.plan_id.value();
  a.region = current.region;
  a.billing_type = current.billing_type;
  a.currency = current.currency;
  a.cycles = std::move(cycles);
  const std::vector<CycleUsage>& cs = a.cycles;
  const size_t n = cs.size();
  if (n == 0) {
    a.action = "stay";
    a.reason = "No complete billing cycle to price yet.";
    return a;
  }

  // The next cycle's usage: the trend for a growing kind, the mean for the others.
  auto mean_of = [&](int64_t CycleUsage::*units) {
    double s = 0;
    for (const CycleUsage& c : cs) s += static_cast<double>(c.*units);
    return std::llround(s / static_cast<double>(n));
  };
  CycleUsage& next = a.projected;
  next.start = cs.back().end;
  {
    const CivilDate e = CivilFromDays(cs.back().end.days);
    next.end = CycleDate(e.year * 12 + e.month, e.day);
  }
  for (auto units : {&CycleUsage::roaming_voice_min, &CycleUsage::roaming_sms,
                     &CycleUsage::roaming_data_mb, &CycleUsage::premium_sms}) {
    next.*units = mean_of(units);
  }
  const Kind* fastest = nullptr;
  double fastest_growth = 0;
  for (const Kind& k : kKinds) {
    const Trend t = TrendOf(cs, k.units);
    const bool grows = n >= 3 && t.rising && t.growth >= o.growth_min;
    next.*k.units = grows ? std::max<int64_t>(
                                0, std::llround(static_cast<double>(cs.back().*k.units) + t.slope))
                          : mean_of(k.units);
    if (k.units == &CycleUsage::data_mb) a.data_growth = t.growth;
    if (k.units == &CycleUsage::voice_min) a.voice_growth = t.growth;
    if (k.units == &CycleUsage::sms) a.sms_growth = t.growth;
    if (grows) {
      a.growing = true;
      if (!fastest || t.growth > fastest_growth) {
        fastest = &k;
        fastest_growth = t.growth;
      }
    }
  }

  // Every candidate's price: per cycle, on average, and for the projected cycle.
  const PlanCost* cur = nullptr;
  for (const PlanVersion& p : candidates) {
    PlanCost c;
    c.plan = p;
    for (const CycleUsage& u : cs) {
      c.cycle_minor.push_back(CycleCost(p, u));
      c.total_minor += c.cycle_minor.back();
    }
    c.mean_minor = static_cast<double>(c.total_minor) / static_cast<double>(n);
    c.projected_minor = CycleCost(p, next);
    a.costs.push_back(std::move(c));
  }
  std::sort(a.costs.begin(), a.costs.end(), [](const PlanCost& x, const PlanCost& y) {
    return x.plan.plan_id.value() < y.plan.plan_id.value();
  });
  for (const PlanCost& c : a.costs) {
    if (c.plan.plan_id == current.plan_id) cur = &c;
  }
  if (!cur) {
    a.action = "stay";
    a.reason = "The current plan has no terms to price in this region.";
    return a;
  }
  // What the next cycle is expected to cost: the projection when usage grows, else the average
  // of the cycles as they were.
  auto expected = [&](const PlanCost& c) {
    return a.growing ? static_cast<double>(c.projected_minor) : c.mean_minor;
  };
  const PlanCost* best = cur;
  for (const PlanCost& c : a.costs) {
    const double e = expected(c), b = expected(*best);
    if (e < b ||
        (e == b && best != cur && c.plan.monthly_price_minor < best->plan.monthly_price_minor)) {
      best = &c;
    }
  }
  const double e_cur = expected(*cur);
  const double threshold =
      std::max(static_cast<double>(o.min_saving_minor), o.min_saving_share * e_cur);
  const std::string cycles_text =
      n == 1 ? "the last billing cycle" : "the last " + std::to_string(n) + " billing cycles";
  if (best != cur && e_cur - expected(*best) >= threshold) {
    a.suggested_plan = best->plan.plan_id.value();
    a.saving_minor = std::llround(e_cur - expected(*best));
    a.revenue_minor = -a.saving_minor;
    const double history_saving = cur->mean_minor - best->mean_minor;
    if (a.growing && history_saving < threshold) {
      a.action = "ahead_of_growth";
      const int64_t was = cs.back().*fastest->units, will = next.*fastest->units;
      std::string kind = fastest->name;
      kind[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(kind[0])));
      a.reason = kind + " use grows " + Percent(fastest_growth) + " a cycle (" +
                 std::to_string(was) + " " + fastest->unit + " last cycle, " +
                 std::to_string(will) + " expected next); at that pace plan " +
                 PlanName(best->plan) + " would cost " +
                 MoneyText(best->projected_minor, a.currency) + " next cycle instead of " +
                 MoneyText(cur->projected_minor, a.currency) + ".";
    } else {
      a.action = best->plan.monthly_price_minor < current.monthly_price_minor ? "cheaper_plan"
                                                                              : "bigger_bundle";
      a.reason = "Plan " + PlanName(best->plan) + " would have cost " +
                 MoneyText(best->total_minor, a.currency) + " over " + cycles_text +
                 " instead of " + MoneyText(cur->total_minor, a.currency) + " on " +
                 PlanName(current) + ": " + MoneyText(a.saving_minor, a.currency) +
                 " a cycle less" +
                 (a.action == "bigger_bundle" ? ", its bundle absorbing the overage." : ".");
    }
    return a;
  }

  // An upsell: a bundle nearly used up, and the next plan up of the same billing type for a
  // small step in price.
  const CycleUsage& recent = a.growing ? next : cs.back();
  const Kind* fullest = nullptr;
  double use = 0;
  for (const Kind& k : kKinds) {
    const int32_t bundle = current.*k.bundle;
    if (bundle == kUnlimited || bundle <= 0) continue;
    const double share = static_cast<double>(recent.*k.units) / bundle;
    if (share > use) {
      use = share;
      fullest = &k;
    }
  }
  const PlanCost* up = nullptr;
  for (const PlanCost& c : a.costs) {
    if (c.plan.billing_type != current.billing_type ||
        c.plan.monthly_price_minor <= current.monthly_price_minor) {
      continue;
    }
    if (!up || c.plan.monthly_price_minor < up->plan.monthly_price_minor) up = &c;
  }
  if (fullest && use >= o.upsell_use && up && expected(*up) - e_cur <= o.upsell_max_share * e_cur) {
    a.action = "upsell";
    a.suggested_plan = up->plan.plan_id.value();
    a.saving_minor = std::llround(e_cur - expected(*up));
    a.revenue_minor = -a.saving_minor;
    const int32_t more = up->plan.*fullest->bundle;
    const std::string price =
        a.revenue_minor > 0   ? MoneyText(a.revenue_minor, a.currency) + " a cycle more"
        : a.revenue_minor < 0 ? MoneyText(-a.revenue_minor, a.currency) + " a cycle less"
                              : "the same";
    a.reason = Percent(use) + " of the " + fullest->name + " bundle (" +
               std::to_string(current.*fullest->bundle) + " " + fullest->unit + ") used " +
               (a.growing ? "at next cycle's expected pace" : "last cycle") + "; plan " +
               PlanName(up->plan) + " (" +
               (more == kUnlimited ? std::string("unlimited")
                                   : std::to_string(more) + " " + fullest->unit) +
               ") would cost " + price + ".";
    return a;
  }
  a.action = "stay";
  a.reason = PlanName(current) + " is the cheapest fit for " + cycles_text + ".";
  return a;
}

Result<std::vector<PlanVersion>> ReadPlanVersions(MetricsEngine& engine,
                                                  const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.RunAnalysis(PlanVersionsAnalysis(), scope));
  std::vector<PlanVersion> out;
  for (size_t row = 0; row < r.rows.size(); ++row) {
    PlanVersion p;
    Status st;
    size_t i = 0;
    ForEachField<PlanVersion>([&](const auto& f) {
      const ResultCell& cell = r.rows[row][i++];
      if (st.ok()) st = ParseFieldText(f, cell.value_or(""), cell.has_value(), &p);
    });
    if (!st.ok()) return st.WithContext("plans row " + std::to_string(row + 1));
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

struct SubscriberPlan {
  int64_t id = 0, partner = 0, plan = 0;
  bool active = false;
  int cycle_day = 1;
  BillingType billing = BillingType::kPrepaid;
  Region region = Region::kNorthAmerica;
  Date activated;
};

Result<std::vector<SubscriberPlan>> ReadSubscriberPlans(MetricsEngine& engine, TimeRange range,
                                                        std::optional<int64_t> subscriber,
                                                        const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult r,
                         engine.RunAnalysis(SubscriberPlansAnalysis(range, subscriber), scope));
  std::vector<SubscriberPlan> out;
  for (const auto& row : r.rows) {
    SubscriberPlan s;
    s.id = CellInt(row[0]);
    s.partner = CellInt(row[1]);
    s.plan = CellInt(row[2]);
    TALLY_RETURN_IF_ERROR(ValueCodec<BillingType>::Parse(row[3].value_or(""), &s.billing)
                              .WithContext("subscriber " + std::to_string(s.id) + " billing_type"));
    TALLY_RETURN_IF_ERROR(ValueCodec<Region>::Parse(row[4].value_or(""), &s.region)
                              .WithContext("subscriber " + std::to_string(s.id) + " region"));
    TALLY_ASSIGN_OR_RETURN(s.activated, ParseDate(row[5].value_or("")));
    s.active = row[6] == "active";
    s.cycle_day = static_cast<int>(std::clamp<int64_t>(CellInt(row[7]), 1, 28));
    out.push_back(s);
  }
  return out;
}

// Per subscriber: its cycles' rows by cycle month index.
using CycleRows = std::unordered_map<int64_t, std::map<int, CycleUsage>>;

Result<CycleRows> ReadCycles(MetricsEngine& engine, TimeRange range,
                             std::optional<int64_t> subscriber, const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult r,
                         engine.RunAnalysis(SubscriberCyclesAnalysis(range, subscriber), scope));
  CycleRows out;
  for (const auto& row : r.rows) {
    CycleUsage u;
    u.voice_min = CellInt(row[2]);
    u.sms = CellInt(row[3]);
    u.data_mb = CellInt(row[4]);
    u.roaming_voice_min = CellInt(row[5]);
    u.roaming_sms = CellInt(row[6]);
    u.roaming_data_mb = CellInt(row[7]);
    u.premium_sms = CellInt(row[8]);
    u.billed_minor = CellInt(row[9]);
    if (row[10] && row[10] == row[11]) u.billed_plan = CellInt(row[10]);
    if (row[12] && row[12] == row[13]) u.billed_version = static_cast<int32_t>(CellInt(row[12]));
    out[CellInt(row[0])][static_cast<int>(CellInt(row[1]))] = u;
  }
  return out;
}

double Value(const PlanAdvice& a) {
  for (const PlanCost& c : a.costs) {
    if (c.plan.plan_id.value() == a.current_plan) {
      const double e = a.growing ? static_cast<double>(c.projected_minor) : c.mean_minor;
      return e > 0 ? std::abs(static_cast<double>(a.saving_minor)) / e : 0;
    }
  }
  return 0;
}

}  // namespace

Result<PlanAdviceReport> RecommendPlans(MetricsEngine& engine, const PlanAdviceOptions& o,
                                        const SecurityScope& scope) {
  if (o.cycles < 1 || o.cycles > 12) return Status::InvalidArgument("cycles: must be 1 to 12");
  if (o.limit < 0) return Status::InvalidArgument("limit: must be 0 (all) or more");
  if (!(o.min_saving_share >= 0 && o.min_saving_share < 1)) {
    return Status::InvalidArgument("min_saving_share: must be at least 0 and below 1");
  }
  if (o.min_saving_minor < 0) return Status::InvalidArgument("min_saving_minor: must be >= 0");
  if (!(o.growth_min > 0)) return Status::InvalidArgument("growth_min: must be > 0");
  if (!(o.upsell_use > 0)) return Status::InvalidArgument("upsell_use: must be > 0");
  if (!(o.upsell_max_share >= 0)) return Status::InvalidArgument("upsell_max_share: must be >= 0");
  if (o.action && *o.action != "all" && *o.action != "stay" && *o.action != "cheaper_plan" &&
      *o.action != "bigger_bundle" && *o.action != "upsell" && *o.action != "ahead_of_growth") {
    return Status::InvalidArgument(
        "action: '" + o.action->substr(0, 32) +
        "' is not one of all, stay, cheaper_plan, bigger_bundle, upsell, ahead_of_growth");
  }
  PlanAdviceReport report;
  report.options = o;
  const std::optional<Timestamp> newest = engine.Watermark();
  if (o.as_of) {
    // Cycles after the data would be priced as if nothing had been used.
    if (newest && o.as_of->days > newest->date().days + 1) {
      return Status::InvalidArgument("as_of: " + FormatDate(*o.as_of) +
                                     " is after the newest event in the store (" +
                                     FormatDate(newest->date()) + ")");
    }
    report.as_of = *o.as_of;
  } else if (newest) {
    report.as_of = newest->date();
  } else {
    return Status::NotFound("the store holds no events yet: no billing cycle to price");
  }
  const int as_of_month = MonthIndexOf(report.as_of);
  const TimeRange range{StartOfDay(CycleDate(as_of_month - o.cycles - 1, 1)),
                        StartOfDay(report.as_of)};

  TALLY_ASSIGN_OR_RETURN(std::vector<PlanVersion> versions, ReadPlanVersions(engine, scope));
  TALLY_ASSIGN_OR_RETURN(std::vector<SubscriberPlan> subs,
                         ReadSubscriberPlans(engine, range, o.subscriber, scope));
  if (o.subscriber && subs.empty()) {
    return Status::NotFound("subscriber " + std::to_string(*o.subscriber) + ": no such subscriber");
  }
  // Cycles the store holds in full start no earlier than the first day it has usage for.
  TALLY_ASSIGN_OR_RETURN(MetricsResult start, engine.RunAnalysis(UsageStartAnalysis(range), scope));
  Date data_start = report.as_of;
  if (!start.rows.empty() && start.rows[0][0]) {
    TALLY_ASSIGN_OR_RETURN(Timestamp first, CellTime(start.rows[0][0]));
    data_start = first.date();
  }
  TALLY_ASSIGN_OR_RETURN(CycleRows rows, ReadCycles(engine, range, o.subscriber, scope));

  // The terms in force on the as-of day, per region.
  std::map<Region, std::vector<PlanVersion>> terms;
  for (const PlanVersion& v : versions) {
    if (v.EffectiveOn(report.as_of)) terms[v.region].push_back(v);
  }

  std::vector<PlanAdvice> all;
  for (const SubscriberPlan& s : subs) {
    if (!s.active) {
      ++report.inactive;
      continue;
    }
    const int cycle_day = s.cycle_day;
    const CivilDate a = CivilFromDays(report.as_of.days);
    // The newest cycle that ends on or before the as-of day.
    const int last = as_of_month - (a.day >= cycle_day ? 1 : 2);
    std::vector<CycleUsage> cycles;
    auto it = rows.find(s.id);
    for (int m = last - o.cycles + 1; m <= last; ++m) {
      const Date start = CycleDate(m, cycle_day);
      if (start < s.activated || start < data_start) continue;
      CycleUsage u;
      if (it != rows.end()) {
        if (auto c = it->second.find(m); c != it->second.end()) u = c->second;
      }
      u.start = start;
      u.end = CycleDate(m + 1, cycle_day);
      cycles.push_back(u);
    }
    const PlanVersion* current = nullptr;
    std::vector<PlanVersion> candidates;
    for (const PlanVersion& v : terms[s.region]) {
      if (v.plan_id.value() == s.plan) current = &v;
      if (o.any_billing || v.billing_type == s.billing) candidates.push_back(v);
    }
    if (!current) {
      ++report.unpriced;
      continue;
    }
    if (cycles.empty()) {
      ++report.too_new;
      continue;
    }
    if (std::none_of(candidates.begin(), candidates.end(),
                     [&](const PlanVersion& v) { return v.plan_id == current->plan_id; })) {
      candidates.push_back(*current);
    }
    PlanAdvice adv = Advise(*current, candidates, std::move(cycles), o);
    adv.subscriber_id = s.id;
    adv.partner_id = s.partner;
    ++report.subscribers;
    ++report.actions[adv.action];
    auto& [saving, revenue] = report.totals[std::string(adv.currency.code())];
    if (adv.action == "upsell") {
      revenue += adv.revenue_minor;
    } else if (adv.action != "stay") {
      saving += adv.saving_minor;
    }
    all.push_back(std::move(adv));
  }
  if (o.subscriber) {
    report.advice = std::move(all);
    return report;
  }
  std::erase_if(all, [&](const PlanAdvice& a) {
    if (!o.action) return a.action == "stay";
    return *o.action != "all" && a.action != *o.action;
  });
  std::stable_sort(all.begin(), all.end(),
                   [](const PlanAdvice& x, const PlanAdvice& y) { return Value(x) > Value(y); });
  if (o.limit > 0 && all.size() > static_cast<size_t>(o.limit)) all.resize(o.limit);
  report.advice = std::move(all);
  return report;
}

namespace {

void WriteUnits(JsonOut& j, const CycleUsage& u) {
  j.Key("start");
  j.String(FormatDate(u.start));
  j.Key("end");
  j.String(FormatDate(u.end));
  const std::pair<const char*, int64_t> units[] = {
      {"voice_min", u.voice_min},     {"sms", u.sms},
      {"data_mb", u.data_mb},         {"roaming_voice_min", u.roaming_voice_min},
      {"roaming_sms", u.roaming_sms}, {"roaming_data_mb", u.roaming_data_mb},
      {"premium_sms", u.premium_sms}};
  for (const auto& [k, v] : units) {
    j.Key(k);
    j.w.Int64(v);
  }
}

void WritePlan(JsonOut& j, const PlanVersion& p) {
  j.Key("plan_id");
  j.w.Int64(p.plan_id.value());
  j.Key("version");
  j.w.Int(p.version);
  j.Key("name");
  j.String(p.name);
  j.Key("tier");
  j.String(Name(p.tier));
  j.Key("billing_type");
  j.String(Name(p.billing_type));
  j.Key("monthly_price_minor");
  j.w.Int64(p.monthly_price_minor);
  j.Key("data_mb");
  j.w.Int(p.data_mb);
  j.Key("voice_minutes");
  j.w.Int(p.voice_minutes);
  j.Key("sms");
  j.w.Int(p.sms);
}

const PlanCost* CostOf(const PlanAdvice& a, std::optional<int64_t> plan) {
  if (!plan) return nullptr;
  for (const PlanCost& c : a.costs) {
    if (c.plan.plan_id.value() == *plan) return &c;
  }
  return nullptr;
}

}  // namespace

std::string PlanAdviceReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("as_of");
  j.String(FormatDate(as_of));
  j.Key("cycles");
  j.w.Int(options.cycles);
  j.Key("subscribers");
  j.w.Int64(subscribers);
  j.Key("too_new");
  j.w.Int64(too_new);
  j.Key("unpriced");
  j.w.Int64(unpriced);
  j.Key("inactive");
  j.w.Int64(inactive);
  j.Key("actions");
  j.w.StartObject();
  for (const auto& [k, v] : actions) {
    j.Key(k);
    j.w.Int64(v);
  }
  j.w.EndObject();
  j.Key("totals");
  j.w.StartArray();
  for (const auto& [currency, t] : totals) {
    j.w.StartObject();
    j.Key("currency");
    j.String(currency);
    j.Key("saving_minor");
    j.w.Int64(t.first);
    j.Key("revenue_minor");
    j.w.Int64(t.second);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("advice");
  j.w.StartArray();
  for (const PlanAdvice& a : advice) {
    j.w.StartObject();
    j.Key("subscriber_id");
    j.w.Int64(a.subscriber_id);
    j.Key("partner_id");
    j.w.Int64(a.partner_id);
    j.Key("region");
    j.String(Name(a.region));
    j.Key("billing_type");
    j.String(Name(a.billing_type));
    j.Key("currency");
    j.String(a.currency.code());
    j.Key("current_plan");
    j.w.Int64(a.current_plan);
    j.Key("action");
    j.String(a.action);
    j.Key("suggested_plan");
    j.Int(a.suggested_plan);
    j.Key("saving_minor");
    j.w.Int64(a.saving_minor);
    j.Key("revenue_minor");
    j.w.Int64(a.revenue_minor);
    j.Key("reason");
    j.String(a.reason);
    j.Key("growth");
    j.w.StartObject();
    j.Field("data", a.data_growth);
    j.Field("voice", a.voice_growth);
    j.Field("sms", a.sms_growth);
    j.Key("growing");
    j.w.Bool(a.growing);
    j.w.EndObject();
    j.Key("cycles");
    j.w.StartArray();
    for (const CycleUsage& u : a.cycles) {
      j.w.StartObject();
      WriteUnits(j, u);
      j.Key("billed_minor");
      j.w.Int64(u.billed_minor);
      j.Key("billed_plan");
      j.Int(u.billed_plan);
      j.Key("billed_version");
      j.Int(u.billed_version ? std::optional<int64_t>(*u.billed_version) : std::nullopt);
      j.w.EndObject();
    }
    j.w.EndArray();
    j.Key("projected");
    j.w.StartObject();
    WriteUnits(j, a.projected);
    j.w.EndObject();
    j.Key("plans");
    j.w.StartArray();
    for (const PlanCost& c : a.costs) {
      j.w.StartObject();
      WritePlan(j, c.plan);
      j.Key("cycle_minor");
      j.w.StartArray();
      for (int64_t x : c.cycle_minor) j.w.Int64(x);
      j.w.EndArray();
      j.Key("total_minor");
      j.w.Int64(c.total_minor);
      j.Field("mean_minor", c.mean_minor);
      j.Key("projected_minor");
      j.w.Int64(c.projected_minor);
      j.w.EndObject();
    }
    j.w.EndArray();
    j.w.EndObject();
  }
  j.w.EndArray();
  j.w.EndObject();
  return j.Take();
}

std::string PlanAdviceReport::ToCsv() const {
  CsvOut c;
  c.Header({"subscriber_id", "partner_id", "currency", "current_plan", "action", "suggested_plan",
            "saving_minor", "revenue_minor", "current_mean_minor", "suggested_mean_minor",
            "suggested_projected_minor", "data_growth", "reason"});
  for (const PlanAdvice& a : advice) {
    const PlanCost* cur = CostOf(a, a.current_plan);
    const PlanCost* sug = CostOf(a, a.suggested_plan);
    c.Field(std::to_string(a.subscriber_id));
    c.Field(std::to_string(a.partner_id));
    c.Field(a.currency.code());
    c.Field(std::to_string(a.current_plan));
    c.Field(a.action);
    c.Field(a.suggested_plan ? std::to_string(*a.suggested_plan) : "");
    c.Field(std::to_string(a.saving_minor));
    c.Field(std::to_string(a.revenue_minor));
    c.Number(cur ? std::optional<double>(cur->mean_minor) : std::nullopt);
    c.Number(sug ? std::optional<double>(sug->mean_minor) : std::nullopt);
    c.Number(sug ? std::optional<double>(static_cast<double>(sug->projected_minor)) : std::nullopt);
    c.Number(a.data_growth);
    c.Field(a.reason);
    c.EndRow();
  }
  return c.Take();
}

}  // namespace tally
