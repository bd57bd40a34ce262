#pragma once
// The two CSV files of the dashboard seed (telemetry-monetization-dashboard.md), imported as they
// are: pricing_elasticity.csv and funnel_data.csv. `tally generate` writes both under seed/.

#include <string>
#include <tuple>

#include "model/field.h"

namespace tally {

//! One row of pricing_elasticity.csv: price sensitivity of a plan tier in a region and year.
struct SeedElasticityRow {
  Tier plan = Tier::kBasic;
  Region region = Region::kNorthAmerica;
  int32_t year = 0;
  double elasticity = 0;
  double conversion_rate = 0;

  static constexpr std::string_view kTable = "seed_pricing_elasticity";
  static constexpr auto kFields = std::make_tuple(
      F("plan", &SeedElasticityRow::plan, "", "Plan tier."),
      F("region", &SeedElasticityRow::region, "", "Region."),
      F("year", &SeedElasticityRow::year, "", "Calendar year."),
      F("elasticity", &SeedElasticityRow::elasticity, "",
        "Price elasticity of demand as a positive magnitude: % fall in conversions per % rise in price."),
      F("conversion_rate", &SeedElasticityRow::conversion_rate, "fraction 0..1", "Trial to paid conversion rate."));
  friend bool operator==(const SeedElasticityRow&, const SeedElasticityRow&) = default;
};

//! One row of funnel_data.csv: the count reaching one funnel step for a cohort.
struct SeedFunnelRow {
  std::string step;
  int64_t count = 0;
  int32_t step_order = 0;
  Region region = Region::kNorthAmerica;
  Tier plan = Tier::kBasic;
  int32_t year = 0;

  static constexpr std::string_view kTable = "seed_funnel_data";
  static constexpr auto kFields = std::make_tuple(
      F("step", &SeedFunnelRow::step, "", "Step name, e.g. Visitor, Signup, Trial, Paid."),
      F("count", &SeedFunnelRow::count, "", "Units that reached the step."),
      F("step_order", &SeedFunnelRow::step_order, "", "Position of the step in the funnel, from 1."),
      F("region", &SeedFunnelRow::region, "", "Region of the cohort."),
      F("plan", &SeedFunnelRow::plan, "", "Plan tier of the cohort."),
      F("year", &SeedFunnelRow::year, "", "Year of the cohort."));
  friend bool operator==(const SeedFunnelRow&, const SeedFunnelRow&) = default;
};

}  // namespace tally
