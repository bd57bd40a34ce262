#pragma once
// The fixed part of a synthetic world, decided before any subscriber is simulated: brands, plans
// and their price history, cities and cell sites, the true elasticities and the experiments.
// Everything here is a pure function of the options and seed.

#include <array>
#include <string>
#include <vector>

#include "core/rng.h"
#include "generate/options.h"
#include "model/geography.h"
#include "model/partner.h"
#include "model/plan.h"

namespace tally {

inline constexpr int kTierCount = 3;
inline constexpr int kRegionCount = 4;
inline constexpr int kPlanCount = 6;  // tiers x billing types

constexpr PlanId PlanIdOf(Tier t, BillingType b) {
  return PlanId(1 + static_cast<int>(t) * 2 + static_cast<int>(b));
}
constexpr Tier TierOf(PlanId p) { return static_cast<Tier>((p.value() - 1) / 2); }
constexpr BillingType BillingOf(PlanId p) { return static_cast<BillingType>((p.value() - 1) % 2); }

//! A cell site with its true call-drop rate (ground truth, not part of the towers table).
struct TowerTruth {
  Tower tower;
  double drop_rate = 0;
  bool degraded = false;  // one of the few sites with a chronic drop problem
};

//! The true price elasticity and base trial->paid conversion of one tier, region and year.
struct ElasticityTruth {
  Tier tier;
  Region region;
  int year;
  double elasticity;       // magnitude: conversions fall by e% per 1% price rise
  double base_conversion;  // trial -> paid at the reference (version 1) price
};

//! An A/B experiment with its true effect.
struct ExperimentSpec {
  std::string key;
  ExperimentUnit unit;
  std::string metric;        // the primary conversion metric
  Date start;
  Date end;                  // exclusive
  double relative_lift;      // true relative lift of treatment over control on the metric
  double treatment_loss;     // share of treatment exposures that are never logged (SRM)
};

//! The catalogue of a world. Immutable after Build; safe to share between threads.
class Catalogue {
 public:
  static Catalogue Build(const GeneratorOptions& options);

  const GeneratorOptions& options() const { return options_; }
  const std::vector<Partner>& partners() const { return partners_; }
  //! Weights for drawing a subscriber's partner, indexed like partners().
  const std::vector<double>& partner_cumulative() const { return partner_cumulative_; }
  const std::vector<PlanVersion>& plan_versions() const { return plan_versions_; }
  //! The version of `plan` in `region` in force on day `d` (versions cover all days).
  const PlanVersion& PlanOn(PlanId plan, Region region, Date d) const;
  //! The first version of `plan` in `region`: the reference price for elasticity.
  const PlanVersion& ReferencePlan(PlanId plan, Region region) const;

  const std::vector<TowerTruth>& towers() const { return towers_; }
  //! Index range [first, last) into towers() of a city's sites.
  std::pair<size_t, size_t> TowersOf(CityId city) const { return tower_range_[city.value()]; }
  const TowerTruth& tower(TowerId id) const { return towers_[id.value() - 1]; }

  //! Cities of a region and their cumulative population weights.
  const std::vector<const City*>& CitiesOf(Region r) const { return region_cities_[int(r)]; }
  const std::vector<double>& CityCumulative(Region r) const { return region_city_cum_[int(r)]; }

  const ElasticityTruth& Elasticity(Tier t, Region r, int year) const;
  const std::vector<ElasticityTruth>& elasticities() const { return elasticities_; }
  const std::vector<ExperimentSpec>& experiments() const { return experiments_; }
  const ExperimentSpec* FindExperiment(std::string_view key) const;

  //! Funnel step probabilities (before experiment effects), by tier.
  static constexpr std::array<double, kTierCount> kSignupRate = {0.30, 0.25, 0.20};
  static constexpr std::array<double, kTierCount> kTrialRate = {0.50, 0.55, 0.60};
  //! Regional multipliers on the signup rate.
  static constexpr std::array<double, kRegionCount> kRegionSignup = {1.00, 0.95, 1.05, 0.90};
  //! Where subscribers (and site visitors) are, by region.
  static constexpr std::array<double, kRegionCount> kRegionShare = {0.35, 0.30, 0.20, 0.15};
  //! Probability that a subscriber of a tier in a region is prepaid: prepaid dominates in APAC and
  //! LATAM, and enterprise accounts are mostly invoiced.
  static double PrepaidShare(Region r, Tier t) {
    static constexpr std::array<double, kRegionCount> kPrepaid = {0.35, 0.40, 0.70, 0.75};
    return kPrepaid[int(r)] * (t == Tier::kEnterprise ? 0.3 : 1.0);
  }

 private:
  GeneratorOptions options_;
  std::vector<Partner> partners_;
  std::vector<double> partner_cumulative_;
  std::vector<PlanVersion> plan_versions_;
  // versions_[plan-1][region] -> indices into plan_versions_, by effective_from
  std::array<std::array<std::vector<size_t>, kRegionCount>, kPlanCount> versions_;
  std::vector<TowerTruth> towers_;
  std::vector<std::pair<size_t, size_t>> tower_range_;
  std::array<std::vector<const City*>, kRegionCount> region_cities_;
  std::array<std::vector<double>, kRegionCount> region_city_cum_;
  int first_year_ = 0;
  std::vector<ElasticityTruth> elasticities_;
  std::vector<ExperimentSpec> experiments_;
};

}  // namespace tally
