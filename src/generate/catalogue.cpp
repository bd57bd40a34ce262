#include "generate/catalogue.h"

#include <algorithm>
#include <cmath>

namespace tally {

namespace {

constexpr std::array<std::string_view, 8> kPartnerNames = {
    "Nimbus Mobile", "Kite Telecom", "Orbit Talk", "Pulse Wireless",
    "Harbor Connect", "Summit Cellular", "Lumen SIM", "Vista Mobile"};

// Base terms by plan id - 1 (Basic/Pro/Enterprise x prepaid/postpaid), in US cents.
struct BaseTerms {
  int64_t price;
  int32_t data_mb, voice, sms;
  int64_t over_data, over_voice, over_sms;
  int64_t roam_data, roam_voice, roam_sms, premium_sms;
};
constexpr std::array<BaseTerms, kPlanCount> kBaseTerms = {{
    {1500, 5000, 300, 300, 1, 10, 5, 50, 100, 30, 250},
    {2000, 8000, 500, kUnlimited, 1, 8, 5, 50, 100, 30, 250},
    {3500, 25000, 1000, kUnlimited, 1, 8, 5, 40, 80, 25, 250},
    {4500, 40000, kUnlimited, kUnlimited, 1, 6, 5, 40, 80, 25, 250},
    {6000, 60000, kUnlimited, kUnlimited, 1, 5, 5, 25, 60, 20, 250},
    {8000, 100000, kUnlimited, kUnlimited, 1, 5, 5, 25, 60, 20, 250},
}};
constexpr std::array<double, kRegionCount> kRegionPrice = {1.00, 0.90, 0.75, 0.60};
constexpr std::array<double, kTierCount> kTierElasticity = {1.3, 0.9, 0.5};
constexpr std::array<double, kTierCount> kTierConversion = {0.30, 0.25, 0.20};

// Prices end in 99 cents (or whole units for zero-decimal display) as operators price them.
int64_t RetailPrice(double cents) {
  int64_t whole = static_cast<int64_t>(std::llround(cents / 100.0));
  if (whole < 1) whole = 1;
  return whole * 100 - 1;
}

}  // namespace

Catalogue Catalogue::Build(const GeneratorOptions& options) {
  Catalogue c;
  c.options_ = options;
  Rng rng(MixKeys(options.seed, 0xCA7A1061));

  // Partners: the operator's own brand holds ~60% of subscribers; MVNOs share the rest with
  // heavy-tailed sizes, each anchored in a home region.
  std::vector<double> weights;
  c.partners_.push_back(Partner{PartnerId(0), "Tally Mobile", PartnerKind::kOwnBrand,
                                Region::kNorthAmerica, Date{DaysFromCivil(2005, 1, 1)}, 0.0});
  weights.push_back(0.6);
  double mvno_total = 0;
  std::vector<double> mvno_w;
  for (int i = 0; i < options.partners; ++i) mvno_total += mvno_w.emplace_back(rng.Pareto(1, 1.5));
  for (int i = 0; i < options.partners; ++i) {
    Partner p;
    p.partner_id = PartnerId(i + 1);
    p.name = i < static_cast<int>(kPartnerNames.size())
                 ? std::string(kPartnerNames[i])
                 : "Partner " + std::to_string(i + 1);
    p.kind = i % 4 == 3 ? PartnerKind::kReseller : PartnerKind::kMvno;
    p.home_region = static_cast<Region>(i % kRegionCount);
    p.since = Date{options.start.days - 365 - static_cast<int32_t>(rng.Below(2500))};
    p.revenue_share = std::round(rng.Uniform(0.15, 0.35) * 100) / 100;
    c.partners_.push_back(std::move(p));
    weights.push_back(0.4 * mvno_w[i] / mvno_total);
  }
  c.partner_cumulative_ = Cumulative(weights);

  // Plans: a first version a year before the data starts, then a regional price change every
  // price_change_days. The multiplier drifts up a little on average (price rises happen) and is
  // clamped to +-35% of the base so plans stay recognisable.
  Date first_day{options.start.days - 365};
  Date last_day = options.end();
  for (int p = 0; p < kPlanCount; ++p) {
    PlanId pid(p + 1);
    const BaseTerms& b = kBaseTerms[p];
    for (int r = 0; r < kRegionCount; ++r) {
      double mult = 1.0;
      int32_t version = 1;
      for (Date from = first_day; from < last_day; ++version) {
        PlanVersion v;
        v.plan_id = pid;
        v.version = version;
        v.tier = TierOf(pid);
        v.billing_type = BillingOf(pid);
        v.name = std::string(Name(v.tier)) + (v.billing_type == BillingType::kPrepaid ? " Prepaid" : " Postpaid");
        v.region = static_cast<Region>(r);
        v.monthly_price_minor = RetailPrice(b.price * kRegionPrice[r] * mult);
        v.data_mb = b.data_mb;
        v.voice_minutes = b.voice;
        v.sms = b.sms;
        v.overage_data_per_mb_minor = b.over_data;
        v.overage_voice_per_min_minor = b.over_voice;
        v.overage_sms_minor = b.over_sms;
        v.roaming_data_per_mb_minor = b.roam_data;
        v.roaming_voice_per_min_minor = b.roam_voice;
        v.roaming_sms_minor = b.roam_sms;
        v.premium_sms_minor = b.premium_sms;
        v.effective_from = from;
        Date next{from.days + options.price_change_days};
        if (next < last_day) v.effective_to = next;
        c.versions_[p][r].push_back(c.plan_versions_.size());
        c.plan_versions_.push_back(std::move(v));
        from = next;
        mult = std::clamp(mult * std::exp(rng.Normal(0.01, 0.09)), 0.65, 1.35);
      }
    }
  }

  // Cities and towers. Tower counts follow population; most sites drop under 1% of calls, a few
  // degraded ones drop 3-7%.
  for (const City& city : Cities()) {
    c.region_cities_[int(city.region)].push_back(&city);
  }
  for (int r = 0; r < kRegionCount; ++r) {
    std::vector<double> w;
    for (const City* city : c.region_cities_[r]) w.push_back(city->population_m);
    c.region_city_cum_[r] = Cumulative(w);
  }
  c.tower_range_.assign(Cities().size() + 1, {0, 0});
  for (const City& city : Cities()) {
    size_t first = c.towers_.size();
    int n = 6 + static_cast<int>(std::lround(city.population_m * 4));
    for (int i = 0; i < n; ++i) {
      TowerTruth t;
      t.tower.tower_id = TowerId(static_cast<int64_t>(c.towers_.size()) + 1);
      t.tower.city_id = city.city_id;
      // ~15 km spread around the centre; one degree of latitude is ~111 km.
      double dist_km = 15 * std::sqrt(rng.Uniform());
      double angle = rng.Uniform(0, 2 * 3.141592653589793);
      t.tower.latitude = std::round((city.latitude + dist_km / 111.0 * std::sin(angle)) * 1e5) / 1e5;
      t.tower.longitude = std::round((city.longitude + dist_km / (111.0 * std::cos(city.latitude * 3.141592653589793 / 180)) * std::cos(angle)) * 1e5) / 1e5;
      t.tower.technology = rng.Bernoulli(0.4) ? "5G" : "4G";
      t.degraded = rng.Bernoulli(0.08);
      t.drop_rate = t.degraded ? rng.Uniform(0.03, 0.07) : std::min(0.02, rng.LogNormal(std::log(0.007), 0.35));
      c.towers_.push_back(std::move(t));
    }
    c.tower_range_[city.city_id.value()] = {first, c.towers_.size()};
  }

  // True elasticities and base conversions for every tier, region and year the data touches.
  c.first_year_ = CivilFromDays(options.start.days).year;
  int last_year = CivilFromDays(options.end().days - 1).year;
  for (int y = c.first_year_; y <= last_year; ++y) {
    for (int t = 0; t < kTierCount; ++t) {
      for (int r = 0; r < kRegionCount; ++r) {
        ElasticityTruth e;
        e.tier = static_cast<Tier>(t);
        e.region = static_cast<Region>(r);
        e.year = y;
        e.elasticity = std::round(kTierElasticity[t] * std::exp(rng.Normal(0, 0.2)) * 1000) / 1000;
        e.base_conversion = std::round(kTierConversion[t] * std::exp(rng.Normal(0, 0.1)) * 1000) / 1000;
        c.elasticities_.push_back(e);
      }
    }
  }

  // Experiments run over fixed fractions of the data's span.
  auto day_at = [&](double f) { return Date{options.start.days + static_cast<int32_t>(options.days * f)}; };
  c.experiments_ = {
      {"button_colour", ExperimentUnit::kVisitor, "signup", day_at(0.10), day_at(0.60), 0.08, 0.0},
      {"onboarding", ExperimentUnit::kVisitor, "trial_start", day_at(0.20), day_at(0.80), 0.10, 0.06},
      {"cta_recharge", ExperimentUnit::kSubscriber, "recharge", day_at(0.40), day_at(0.90), 0.15, 0.0},
  };
  return c;
}

const PlanVersion& Catalogue::PlanOn(PlanId plan, Region region, Date d) const {
  const auto& idx = versions_[plan.value() - 1][int(region)];
  // Few versions per plan and region: scan back from the newest.
  for (size_t i = idx.size(); i-- > 0;) {
    const PlanVersion& v = plan_versions_[idx[i]];
    if (v.effective_from <= d) return v;
  }
  return plan_versions_[idx.front()];
}

const PlanVersion& Catalogue::ReferencePlan(PlanId plan, Region region) const {
  return plan_versions_[versions_[plan.value() - 1][int(region)].front()];
}

const ElasticityTruth& Catalogue::Elasticity(Tier t, Region r, int year) const {
  int y = std::clamp(year - first_year_, 0, static_cast<int>(elasticities_.size() / (kTierCount * kRegionCount)) - 1);
  return elasticities_[(y * kTierCount + int(t)) * kRegionCount + int(r)];
}

const ExperimentSpec* Catalogue::FindExperiment(std::string_view key) const {
  for (const auto& e : experiments_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

}  // namespace tally
