#include "ingest/rollup_builder.h"

namespace tally {

namespace {

Measures One(Measure m, int64_t v = 1) {
  Measures out;
  out[m] = v;
  return out;
}

}  // namespace

void RollupBuilder::Apply(Timestamp ts, std::optional<SubscriberId> sub, PartnerId partner,
                          std::optional<PlanId> plan, std::optional<Region> region, const Measures& m) {
  if (sub) {
    if (const SubscriberInfo* info = subscribers_ ? subscribers_->Find(*sub) : nullptr) {
      plan = info->plan_id;
      region = info->region;
    }
    auto& [p, sum] = subscriber_day_[{sub->value(), ts.date().days}];
    p = partner;
    sum += m;
  }
  const int64_t plan_id = plan ? plan->value() : 0;
  const int region_code = region ? static_cast<int>(*region) + 1 : 0;
  const int64_t slot = ts.micros - ((ts.micros % kFiveMinutes) + kFiveMinutes) % kFiveMinutes;
  segment_5m_[{slot, partner.value(), plan_id, region_code}] += m;
  segment_day_[{StartOfDay(ts.date()).micros, partner.value(), plan_id, region_code}] += m;
}

void RollupBuilder::Add(const UsageEvent& e) {
  Measures m = One(Measure::k_usage_events);
  switch (e.kind) {
    case UsageKind::kVoiceCall:
      m[Measure::k_voice_calls] = 1;
      m[Measure::k_voice_seconds] = e.duration_s.value_or(0);
      break;
    case UsageKind::kSms:
      m[Measure::k_sms] = 1;
      if (e.destination == Destination::kPremium) m[Measure::k_premium_sms] = 1;
      break;
    case UsageKind::kDataSession:
      m[Measure::k_data_sessions] = 1;
      m[Measure::k_data_bytes] = e.bytes.value_or(0);
      break;
  }
  if (e.roaming) m[Measure::k_roaming_usage] = 1;
  Apply(e.ts, e.subscriber_id, e.partner_id, std::nullopt, std::nullopt, m);
}

void RollupBuilder::Add(const RechargeEvent& e) {
  Measures m;
  if (e.payment_status == PaymentStatus::kSucceeded) {
    m[Measure::k_recharges] = 1;
    m[Measure::k_recharge_minor] = e.amount_minor;
  } else {
    m[Measure::k_recharges_failed] = 1;
  }
  Apply(e.ts, e.subscriber_id, e.partner_id, std::nullopt, std::nullopt, m);
}

void RollupBuilder::Add(const LifecycleEvent& e) {
  Measure which = e.kind == LifecycleKind::kActivation     ? Measure::k_activations
                  : e.kind == LifecycleKind::kDeactivation ? Measure::k_deactivations
                                                           : Measure::k_plan_changes;
  Apply(e.ts, e.subscriber_id, e.partner_id, e.plan_id, std::nullopt, One(which));
}

void RollupBuilder::Add(const NetworkEvent& e) {
  Apply(e.ts, e.subscriber_id, e.partner_id, std::nullopt, std::nullopt,
        One(e.kind == NetworkKind::kCallDrop ? Measure::k_call_drops : Measure::k_handovers));
}

void RollupBuilder::Add(const RoamingEvent& e) {
  if (e.kind != RoamingKind::kRoamingStart) return;
  Apply(e.ts, e.subscriber_id, e.partner_id, std::nullopt, std::nullopt, One(Measure::k_roaming_starts));
}

void RollupBuilder::Add(const ComplaintEvent& e) {
  Apply(e.ts, e.subscriber_id, e.partner_id, std::nullopt, std::nullopt, One(Measure::k_complaints));
}

void RollupBuilder::Add(const AppEvent& e) {
  Measures m;
  switch (e.kind) {
    case AppKind::kVisit: m[Measure::k_visits] = 1; break;
    case AppKind::kSignup: m[Measure::k_signups] = 1; break;
    case AppKind::kTrialStart: m[Measure::k_trials] = 1; break;
    case AppKind::kPaidConversion:
      m[Measure::k_conversions] = 1;
      m[Measure::k_conversion_minor] = e.amount_minor.value_or(0);
      break;
    case AppKind::kSession: m[Measure::k_app_sessions] = 1; break;
    case AppKind::kError: m[Measure::k_app_errors] = 1; break;
  }
  // Funnel events before the paid conversion belong to a visitor, not a subscriber.
  std::optional<SubscriberId> sub = e.kind == AppKind::kPaidConversion ? std::nullopt : e.subscriber_id;
  Apply(e.ts, sub, e.partner_id, e.plan_id, e.region, m);
}

void RollupBuilder::Add(const ExperimentEvent& e) {
  Measures m = One(e.kind == ExperimentKind::kExposure ? Measure::k_exposures : Measure::k_experiment_conversions);
  Apply(e.ts, std::nullopt, e.partner_id, std::nullopt, std::nullopt, m);
}

void RollupBuilder::Add(const ChargeEvent& e) {
  Measures m;
  if (e.entry == ChargeEntry::kUsage) {
    m[Measure::k_charge_minor] = e.amount_minor;
    m[Measure::k_usage_charge_minor] = e.amount_minor;
    if (e.insufficient_balance) m[Measure::k_flagged_charges] = 1;
  } else if (e.entry == ChargeEntry::kPlanFee || e.entry == ChargeEntry::kProration) {
    m[Measure::k_charge_minor] = e.amount_minor;
    m[Measure::k_fee_minor] = e.amount_minor;
  } else {
    m[Measure::k_refund_minor] = e.amount_minor;
  }
  Apply(e.ts, e.subscriber_id, e.partner_id, e.plan_id, std::nullopt, m);
}

RollupDelta RollupBuilder::Take() {
  RollupDelta d;
  d.subscriber_day.reserve(subscriber_day_.size());
  for (const auto& [key, v] : subscriber_day_) {
    d.subscriber_day.push_back({Date{key.day}, SubscriberId(key.subscriber), v.first, v.second});
  }
  auto region_name = [](int code) {
    return code == 0 ? std::string() : std::string(Name(static_cast<Region>(code - 1)));
  };
  // The activity rollup, from the subscriber-day rows: a bit per day with usage, one row per
  // subscriber and month (with its partner, and its plan and region as the directory knows them).
  struct MonthKey {
    int64_t subscriber, partner, plan;
    int32_t month;
    int region;
    bool operator==(const MonthKey&) const = default;
  };
  struct MonthHash {
    size_t operator()(const MonthKey& k) const {
      return static_cast<size_t>(static_cast<uint64_t>(k.subscriber) * 1000003u ^
                                 static_cast<uint32_t>(k.month) ^
                                 static_cast<uint64_t>(k.plan) * 104729u);
    }
  };
  std::unordered_map<MonthKey, int64_t, MonthHash> months;
  for (const auto& [key, v] : subscriber_day_) {
    if (v.second[Measure::k_usage_events] == 0) continue;
    const CivilDate civil = CivilFromDays(key.day);
    MonthKey mk{key.subscriber, v.first.value(), 0, DaysFromCivil(civil.year, civil.month, 1), 0};
    if (const SubscriberInfo* info =
            subscribers_ ? subscribers_->Find(SubscriberId(key.subscriber)) : nullptr) {
      mk.plan = info->plan_id.value();
      mk.region = static_cast<int>(info->region) + 1;
    }
    months[mk] |= int64_t{1} << (civil.day - 1);
  }
  d.subscriber_month.reserve(months.size());
  for (const auto& [k, bits] : months) {
    d.subscriber_month.push_back({Date{k.month}, SubscriberId(k.subscriber), PartnerId(k.partner),
                                  k.plan, region_name(k.region), bits});
  }
  for (const auto& [key, m] : segment_5m_) {
    d.segment_5m.push_back({Timestamp{key.bucket}, PartnerId(key.partner), key.plan, region_name(key.region), m});
  }
  for (const auto& [key, m] : segment_day_) {
    d.segment_day.push_back({Timestamp{key.bucket}, PartnerId(key.partner), key.plan, region_name(key.region), m});
  }
  subscriber_day_.clear();
  segment_5m_.clear();
  segment_day_.clear();
  return d;
}

}  // namespace tally
