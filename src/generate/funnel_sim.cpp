#include "generate/funnel_sim.h"

#include <algorithm>
#include <cmath>

namespace tally {

namespace {

constexpr std::array<double, kTierCount> kTierInterest = {0.50, 0.35, 0.15};
constexpr std::array<double, 7> kVisitWeek = {1.0, 1.05, 1.05, 1.0, 0.95, 0.85, 0.8};
constexpr std::array<double, 24> kVisitHours = {0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7,
                                               1.0, 1.2, 1.3, 1.3, 1.3, 1.3, 1.2, 1.2,
                                               1.2, 1.3, 1.4, 1.5, 1.5, 1.3, 0.9, 0.5};
constexpr std::array<double, 5> kDeviceShare = {0.50, 0.30, 0.0, 0.05, 0.0};

void MakeVisitorId(std::string* out, uint64_t visitor, int step) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "v%llxx%d", static_cast<unsigned long long>(visitor), step);
  out->assign(buf, n);
}

Timestamp Later(Timestamp t, Rng& rng, double mean_hours) {
  return Timestamp{t.micros + static_cast<int64_t>(rng.Exponential(mean_hours) * kMicrosPerHour)};
}

}  // namespace

void SimulateFunnel(const Catalogue& cat, int64_t first_id, ChunkFiles* files,
                    AcquiredStore* acquired, FunnelCounts* counts) {
  const GeneratorOptions& o = cat.options();
  Rng rng(MixKeys(o.seed, 0xF022E1));
  const std::vector<double> tier_cum = Cumulative(kTierInterest);
  const std::vector<double> region_cum = Cumulative(Catalogue::kRegionShare);
  const std::vector<double> hour_cum = Cumulative(kVisitHours);
  const std::vector<double> device_cum = Cumulative(kDeviceShare);
  const ExperimentSpec* button = cat.FindExperiment("button_colour");
  const ExperimentSpec* onboarding = cat.FindExperiment("onboarding");
  const Date end = o.end();
  const int64_t per_day = o.VisitorsPerDay();
  uint64_t visitor = 0;
  int64_t next_id = first_id;

  AppEvent a;
  ExperimentEvent x;
  auto expose = [&](const ExperimentSpec& spec, bool treated, Timestamp ts, uint64_t unit,
                    PartnerId partner) {
    MakeVisitorId(&x.event_id, unit, 10 + static_cast<int>(&spec - cat.experiments().data()));
    x.ts = ts;
    x.kind = ExperimentKind::kExposure;
    x.experiment = spec.key;
    x.variant = treated ? "treatment" : "control";
    x.unit = ExperimentUnit::kVisitor;
    x.unit_id = static_cast<int64_t>(unit);
    x.partner_id = partner;
    x.metric.reset();
    x.value_minor.reset();
    files->experiment().Write(x);
  };
  auto convert = [&](const ExperimentSpec& spec, bool treated, Timestamp ts, uint64_t unit,
                     PartnerId partner, const char* metric, std::optional<int64_t> value, int tag) {
    MakeVisitorId(&x.event_id, unit, 20 + tag);
    x.ts = ts;
    x.kind = ExperimentKind::kConversion;
    x.experiment = spec.key;
    x.variant = treated ? "treatment" : "control";
    x.unit = ExperimentUnit::kVisitor;
    x.unit_id = static_cast<int64_t>(unit);
    x.partner_id = partner;
    x.metric = metric;
    x.value_minor = value;
    files->experiment().Write(x);
  };

  for (Date day = o.start; day < end; day = Date{day.days + 1}) {
    int64_t n = rng.Poisson(static_cast<double>(per_day) * kVisitWeek[Weekday(day)]);
    for (int64_t i = 0; i < n; ++i) {
      ++visitor;
      Region region = static_cast<Region>(rng.Pick(region_cum));
      const City* city = cat.CitiesOf(region)[rng.Pick(cat.CityCumulative(region))];
      Tier tier = static_cast<Tier>(rng.Pick(tier_cum));
      BillingType billing = rng.Bernoulli(Catalogue::PrepaidShare(region, tier))
                                ? BillingType::kPrepaid
                                : BillingType::kPostpaid;
      PlanId plan = PlanIdOf(tier, billing);
      PartnerId partner = cat.partners()[rng.Pick(cat.partner_cumulative())].partner_id;
      DeviceType device = static_cast<DeviceType>(rng.Pick(device_cum));
      int year = CivilFromDays(day.days).year;

      a = AppEvent{};
      a.visitor_id = VisitorId(static_cast<int64_t>(visitor));
      a.partner_id = partner;
      a.region = region;
      a.city = std::string(city->name);
      a.plan_id = plan;
      a.device_type = device;
      auto emit = [&](AppKind kind, Timestamp ts, int step) {
        if (ts.date() >= end) return false;
        MakeVisitorId(&a.event_id, visitor, step);
        a.kind = kind;
        a.ts = ts;
        files->app().Write(a);
        ++counts->steps[{step, int(region), int(tier), year}];
        return true;
      };

      Timestamp visit{StartOfDay(day).micros + static_cast<int64_t>(rng.Pick(hour_cum)) * kMicrosPerHour +
                      static_cast<int64_t>(rng.Below(3600)) * kMicrosPerSecond};
      emit(AppKind::kVisit, visit, 0);

      // Experiment 1: the sign-up button's colour, randomised per visitor at the visit.
      const bool in_button = button->start <= day && day < button->end;
      const bool button_treated = HashUnit(MixKeys(o.seed, 0xB077, visitor)) < 0.5;
      if (in_button) expose(*button, button_treated, visit, visitor, partner);

      double p_signup = Catalogue::kSignupRate[int(tier)] * Catalogue::kRegionSignup[int(region)] *
                        (in_button && button_treated ? 1 + button->relative_lift : 1.0);
      if (!rng.Bernoulli(p_signup)) continue;
      Timestamp signup = Later(visit, rng, 6);
      if (!emit(AppKind::kSignup, signup, 1)) continue;
      if (in_button) convert(*button, button_treated, signup, visitor, partner, "signup", std::nullopt, 0);

      // Experiment 2: onboarding flow, randomised at sign-up. A logging bug loses some treatment
      // exposures: the sample-ratio mismatch the analysis must catch.
      const bool in_onboarding = onboarding->start <= signup.date() && signup.date() < onboarding->end;
      const bool onb_treated = HashUnit(MixKeys(o.seed, 0x0B0A, visitor)) < 0.5;
      const bool onb_logged = in_onboarding && !(onb_treated && rng.Bernoulli(onboarding->treatment_loss));
      if (onb_logged) expose(*onboarding, onb_treated, signup, visitor, partner);
      double p_trial = Catalogue::kTrialRate[int(tier)] *
                       (in_onboarding && onb_treated ? 1 + onboarding->relative_lift : 1.0);
      if (!rng.Bernoulli(p_trial)) continue;
      Timestamp trial = Later(signup, rng, 18);
      if (!emit(AppKind::kTrialStart, trial, 2)) continue;
      if (onb_logged) convert(*onboarding, onb_treated, trial, visitor, partner, "trial_start", std::nullopt, 1);

      // Trials last kTrialDays; the trial converts (or not) when it ends, at that day's price.
      Timestamp decision{trial.micros + kTrialDays * kMicrosPerDay};
      Date dday = decision.date();
      const PlanVersion& price_now = cat.PlanOn(plan, region, dday);
      const PlanVersion& ref = cat.ReferencePlan(plan, region);
      const ElasticityTruth& e = cat.Elasticity(tier, region, CivilFromDays(dday.days).year);
      double p_paid = e.base_conversion *
                      std::pow(static_cast<double>(price_now.monthly_price_minor) / ref.monthly_price_minor,
                               -e.elasticity);
      if (dday < end) ++counts->trials_paid[{int(tier), int(region), CivilFromDays(dday.days).year}].first;
      if (!rng.Bernoulli(std::min(0.95, p_paid))) continue;
      if (dday >= end) continue;
      ++counts->trials_paid[{int(tier), int(region), CivilFromDays(dday.days).year}].second;
      SubscriberId sid(next_id++);
      a.subscriber_id = sid;
      a.amount_minor = price_now.monthly_price_minor;
      a.currency = price_now.currency;
      emit(AppKind::kPaidConversion, decision, 3);
      if (onb_logged) {
        convert(*onboarding, onb_treated, decision, visitor, partner, "paid",
                price_now.monthly_price_minor, 2);
      }
      acquired->Append(AcquiredSubscriber{decision, plan, region, city->city_id, partner,
                                             device, VisitorId(static_cast<int64_t>(visitor))});
    }
  }
}

}  // namespace tally
