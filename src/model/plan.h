#pragma once
// A plan version: the terms of one plan in one region from one date on. Prices change by adding
// a version, never by editing one, so an event is always rated on the terms of its own day.

#include <optional>
#include <string>
#include <tuple>

#include "model/field.h"

namespace tally {

//! Quotas use this value for "unlimited".
inline constexpr int32_t kUnlimited = -1;

//! One version of a plan's terms in one region. (plan_id, region, version) is unique; versions of
//! the same plan and region cover consecutive, non-overlapping date ranges.
struct PlanVersion {
  PlanId plan_id;
  int32_t version = 1;
  std::string name;
  Tier tier = Tier::kBasic;
  BillingType billing_type = BillingType::kPrepaid;
  Region region = Region::kNorthAmerica;
  Currency currency;
  int64_t monthly_price_minor = 0;
  int32_t data_mb = 0;       // monthly data bundle
  int32_t voice_minutes = 0;
  int32_t sms = 0;
  int64_t overage_data_per_mb_minor = 0;
  int64_t overage_voice_per_min_minor = 0;
  int64_t overage_sms_minor = 0;
  int64_t roaming_data_per_mb_minor = 0;
  int64_t roaming_voice_per_min_minor = 0;
  int64_t roaming_sms_minor = 0;
  int64_t premium_sms_minor = 0;
  Date effective_from;
  std::optional<Date> effective_to;  // exclusive; empty while current

  Money monthly_price() const { return Money{monthly_price_minor, currency}; }
  bool EffectiveOn(Date d) const {
    return effective_from <= d && (!effective_to || d < *effective_to);
  }

  static constexpr std::string_view kTable = "plans";
  static constexpr auto kFields = std::make_tuple(
      F("plan_id", &PlanVersion::plan_id, "", "Plan id, stable across versions and regions."),
      F("version", &PlanVersion::version, "", "Version number within (plan_id, region), from 1."),
      F("name", &PlanVersion::name, "", "Marketing name, e.g. 'Pro Prepaid'."),
      F("tier", &PlanVersion::tier, "", "Plan tier."),
      F("billing_type", &PlanVersion::billing_type, "",
        "prepaid plans draw down a balance; postpaid plans are invoiced monthly."),
      F("region", &PlanVersion::region, "", "Region whose subscribers these terms apply to."),
      F("currency", &PlanVersion::currency, "", "Currency of every amount in the row."),
      F("monthly_price_minor", &PlanVersion::monthly_price_minor, "minor units / month",
        "Recurring price of the plan."),
      F("data_mb", &PlanVersion::data_mb, "MB / month", "Data bundle; -1 means unlimited."),
      F("voice_minutes", &PlanVersion::voice_minutes, "minutes / month",
        "Voice bundle; -1 means unlimited."),
      F("sms", &PlanVersion::sms, "messages / month", "SMS bundle; -1 means unlimited."),
      F("overage_data_per_mb_minor", &PlanVersion::overage_data_per_mb_minor, "minor units / MB",
        "Home data rate once the bundle is used up."),
      F("overage_voice_per_min_minor", &PlanVersion::overage_voice_per_min_minor,
        "minor units / minute", "Home voice rate once the bundle is used up."),
      F("overage_sms_minor", &PlanVersion::overage_sms_minor, "minor units / message",
        "Home SMS rate once the bundle is used up."),
      F("roaming_data_per_mb_minor", &PlanVersion::roaming_data_per_mb_minor, "minor units / MB",
        "Data rate abroad; bundles never cover roaming."),
      F("roaming_voice_per_min_minor", &PlanVersion::roaming_voice_per_min_minor,
        "minor units / minute", "Voice rate abroad."),
      F("roaming_sms_minor", &PlanVersion::roaming_sms_minor, "minor units / message",
        "SMS rate abroad."),
      F("premium_sms_minor", &PlanVersion::premium_sms_minor, "minor units / message",
        "Charge for an SMS to a premium-rate short code; never covered by the bundle."),
      F("effective_from", &PlanVersion::effective_from, "", "First day these terms apply."),
      F("effective_to", &PlanVersion::effective_to, "",
        "Day the next version takes over (exclusive); empty for the current version."));
  friend bool operator==(const PlanVersion&, const PlanVersion&) = default;
};

}  // namespace tally
