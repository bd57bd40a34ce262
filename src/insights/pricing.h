#pragma once
// Pricing insights: price elasticity of trial-to-paid conversion per tier, region and year,
// estimated from the plans' price changes by a weighted log-log regression with confidence
// intervals; ARPU by tier and the spread of subscribers across plans. docs/insights.md gives the
// method and its defaults.

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/analyses.h"
#include "metrics/metrics_engine.h"
#include "model/seed.h"

namespace tally {

//! Trials of one plan decided at one price.
struct PricePoint {
  int64_t plan_id = 0;
  int64_t price_minor = 0;
  int64_t ref_price_minor = 0;  // the plan's first price in the region
  int64_t trials = 0;
  int64_t paid = 0;
};

struct ElasticityEstimate {
  std::string tier;
  std::string region;
  int year = 0;
  // Not set when the segment cannot be estimated (see note).
  std::optional<double> elasticity;  // magnitude: conversion falls e% per 1% price rise
  std::optional<double> standard_error;
  std::optional<double> ci_low, ci_high;  // at the report's confidence
  std::optional<double> base_conversion;  // fitted conversion at the reference price
  double dispersion = 1;                  // phi: residual chi-square / (points - 2), at least 1
  int price_levels = 0;                   // distinct price ratios
  int64_t trials = 0;
  int64_t paid = 0;
  std::string note;
  std::vector<PricePoint> points;
};

//! Fits ln p = a - e ln(price / reference) by weighted least squares over `points`, weights
//! n p / (1 - p) (the inverse variance of ln p-hat), p-hat = (paid + 0.5) / (trials + 1).
//! The standard error is scaled by the dispersion when the points scatter more than binomial
//! sampling explains; the interval is normal at `confidence`.
ElasticityEstimate FitElasticity(std::vector<PricePoint> points, double confidence);

struct TierSummary {
  std::string tier;
  std::optional<double> arpu;
  std::optional<double> active_subscribers;
  double share = 0;  // of active subscribers
};
struct PlanShare {
  std::string plan;
  double active_subscribers = 0;
  double share = 0;
};

struct PricingOptions {
  TimeRange range = AllTime();  // trials started in this range
  int trial_days = 14;          // a trial's outcome is known this long after it starts
  double confidence = 0.95;
  //! ARPU and plan spread over this range; unset: the 30 days up to the newest event.
  std::optional<TimeRange> summary_range;
};

struct PricingReport {
  double confidence = 0.95;
  std::vector<ElasticityEstimate> elasticities;
  std::vector<TierSummary> tiers;
  std::vector<PlanShare> plans;
  std::optional<TimeRange> summary_range;
  std::string source;

  std::string ToJson() const;
  std::string ToCsv() const;  // the elasticity table
};

Result<PricingReport> PricingFromEvents(MetricsEngine& engine, const PricingOptions& options,
                                        const SecurityScope& scope);

//! The dashboard seed's pricing_elasticity.csv (plan,region,year,elasticity,conversion_rate):
//! its elasticities as given (no intervals: the file has none). Errors name the line and column.
Result<PricingReport> PricingFromSeedCsv(const std::string& path);
//! The same from the seed_pricing_elasticity table `tally load` imported into the store (scoped
//! callers are refused).
Result<PricingReport> PricingFromStoredSeed(MetricsEngine& engine, const SecurityScope& scope);
//! Seed rows as a report; `origin` names them in errors ("<origin>:<line>").
Result<PricingReport> PricingFromSeedRows(const std::vector<SeedElasticityRow>& rows,
                                          const std::string& origin, const std::string& source);

}  // namespace tally
