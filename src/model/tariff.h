#pragma once
// Rating rules: what one usage event costs under a plan version, given what is left of the
// subscriber's bundles this billing cycle. The generator uses them to know bills (bill shock is a
// churn driver); the ledger's rating engine applies the same rules.
//
//   - Roaming usage is never covered by a bundle: roaming rates apply.
//   - An SMS to a premium-rate short code is never covered: the premium SMS rate applies.
//   - Otherwise the bundle is used first and the overage rate applies to the rest.
//   - Voice rounds up to whole minutes per call; data rounds up to whole MB (10^6 bytes) per
//     session; an unlimited bundle (-1) never runs out.

#include <cstdint>

#include "model/events.h"
#include "model/plan.h"

namespace tally {

//! What is left of the bundles in the current billing cycle.
struct BundleState {
  int64_t data_mb_left = 0;
  int64_t voice_min_left = 0;
  int64_t sms_left = 0;

  //! A fresh cycle of `plan`'s bundles.
  static BundleState For(const PlanVersion& plan) {
    return {plan.data_mb, plan.voice_minutes, plan.sms};
  }
};

struct Charge {
  int64_t minor = 0;
  ChargeKind kind = ChargeKind::kBundle;
};

inline int64_t DataMegabytes(int64_t bytes) { return (bytes + 999'999) / 1'000'000; }
inline int64_t VoiceMinutes(int64_t seconds) { return (seconds + 59) / 60; }

//! Takes `units` from a bundle counter; returns the units not covered.
inline int64_t DrawBundle(int64_t* left, int64_t units) {
  if (*left == kUnlimited) return 0;
  int64_t covered = units < *left ? units : *left;
  *left -= covered;
  return units - covered;
}

//! Rates one usage event and updates the bundles. Pure: no I/O, no clock.
inline Charge RateUsage(const PlanVersion& plan, const UsageEvent& e, BundleState* bundles) {
  switch (e.kind) {
    case UsageKind::kVoiceCall: {
      int64_t minutes = VoiceMinutes(e.duration_s.value_or(0));
      if (e.roaming) return {minutes * plan.roaming_voice_per_min_minor, ChargeKind::kRoaming};
      int64_t over = DrawBundle(&bundles->voice_min_left, minutes);
      return {over * plan.overage_voice_per_min_minor,
              over ? ChargeKind::kOverage : ChargeKind::kBundle};
    }
    case UsageKind::kSms: {
      if (e.roaming) return {plan.roaming_sms_minor, ChargeKind::kRoaming};
      if (e.destination == Destination::kPremium) {
        return {plan.premium_sms_minor, ChargeKind::kPremiumSms};
      }
      int64_t over = DrawBundle(&bundles->sms_left, 1);
      return {over * plan.overage_sms_minor, over ? ChargeKind::kOverage : ChargeKind::kBundle};
    }
    case UsageKind::kDataSession: {
      int64_t mb = DataMegabytes(e.bytes.value_or(0));
      if (e.roaming) return {mb * plan.roaming_data_per_mb_minor, ChargeKind::kRoaming};
      int64_t over = DrawBundle(&bundles->data_mb_left, mb);
      return {over * plan.overage_data_per_mb_minor,
              over ? ChargeKind::kOverage : ChargeKind::kBundle};
    }
  }
  return {};
}

}  // namespace tally
