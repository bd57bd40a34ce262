#pragma once
// Live rollups: additive counters per subscriber per day and per segment (partner, plan, region)
// per 5 minutes and per day, kept current on every ingest commit so subscriber pages and
// dashboards read a few rows instead of scanning raw events.
//
// Every measure is a sum, so a rollup table may hold several partial rows for one key (one per
// commit, until compaction merges them) and a reader always aggregates with SUM ... GROUP BY. That
// is the contract of ClickHouse's SummingMergeTree too, which lets both backends share the queries.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/time.h"
#include "model/enums.h"

namespace tally {

// name, meaning. The order is the column order of every rollup table.
#define TALLY_ROLLUP_MEASURES(X)                                                         \
  X(usage_events, "usage records (calls, SMS, data sessions)")                           \
  X(voice_calls, "voice calls")                                                          \
  X(voice_seconds, "seconds of voice calls")                                             \
  X(sms, "SMS sent")                                                                     \
  X(premium_sms, "SMS to premium-rate short codes")                                      \
  X(data_sessions, "data sessions")                                                      \
  X(data_bytes, "bytes of data sessions")                                                \
  X(roaming_usage, "usage records while roaming")                                        \
  X(recharges, "succeeded recharges")                                                    \
  X(recharges_failed, "failed recharge payments")                                        \
  X(recharge_minor, "amount of succeeded recharges, minor units of the plan's currency") \
  X(activations, "activations")                                                          \
  X(deactivations, "deactivations (churn)")                                              \
  X(plan_changes, "plan changes")                                                        \
  X(handovers, "tower handovers")                                                        \
  X(call_drops, "dropped calls")                                                         \
  X(roaming_starts, "stays abroad started")                                              \
  X(complaints, "complaints opened")                                                     \
  X(app_sessions, "app sessions")                                                        \
  X(app_errors, "app errors")                                                            \
  X(visits, "funnel visits")                                                             \
  X(signups, "funnel signups")                                                           \
  X(trials, "funnel trial starts")                                                       \
  X(conversions, "funnel paid conversions")                                              \
  X(conversion_minor, "first payments of paid conversions, minor units")                \
  X(exposures, "experiment exposures")                                                   \
  X(experiment_conversions, "experiment conversions")                                   \
  X(charge_minor, "billed by the ledger: usage charges, plan fees and prorations")        \
  X(usage_charge_minor, "rated usage charges, minor units")                              \
  X(fee_minor, "recurring plan fees and prorations, minor units")                        \
  X(flagged_charges, "prepaid usage charges the balance did not cover")                  \
  X(refund_minor, "recharges refunded or reversed, minor units")

enum class Measure : uint8_t {
#define TALLY_ENUM_ENTRY(name, doc) k_##name,
  TALLY_ROLLUP_MEASURES(TALLY_ENUM_ENTRY)
#undef TALLY_ENUM_ENTRY
};

inline constexpr std::array kMeasureNames = {
#define TALLY_NAME_ENTRY(name, doc) std::string_view(#name),
    TALLY_ROLLUP_MEASURES(TALLY_NAME_ENTRY)
#undef TALLY_NAME_ENTRY
};
inline constexpr std::array kMeasureDocs = {
#define TALLY_DOC_ENTRY(name, doc) std::string_view(doc),
    TALLY_ROLLUP_MEASURES(TALLY_DOC_ENTRY)
#undef TALLY_DOC_ENTRY
};
inline constexpr size_t kMeasureCount = kMeasureNames.size();

//! The counters of one rollup row.
struct Measures {
  std::array<int64_t, kMeasureCount> v{};
  int64_t& operator[](Measure m) { return v[static_cast<size_t>(m)]; }
  int64_t operator[](Measure m) const { return v[static_cast<size_t>(m)]; }
  Measures& operator+=(const Measures& o) {
    for (size_t i = 0; i < kMeasureCount; ++i) v[i] += o.v[i];
    return *this;
  }
};

//! A subscriber's counters for one UTC day.
struct SubscriberDayRow {
  Date day;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  Measures m;
};

//! A segment's counters for one bucket (a 5-minute slot or a day, by table). plan_id is 0 and
//! region is empty when the event's subscriber is unknown to the store.
struct SegmentRow {
  Timestamp bucket;
  PartnerId partner_id;
  int64_t plan_id = 0;
  std::string region;
  Measures m;
};

//! The days of one UTC month on which a subscriber had usage: bit d-1 of `active_days` is set
//! when it had a usage record on day d. The partner, plan and region are the ones the store knew
//! when it ingested them (as on the segment rollups; plan 0 and region empty when the subscriber
//! is unknown). This rollup is not a sum: partial rows of one key combine with a bitwise OR, and
//! readers count distinct subscribers whose bits meet a range (active subscribers over a month
//! read one row per subscriber instead of one per subscriber and day).
struct SubscriberMonthRow {
  Date month;  // the first day of the month
  SubscriberId subscriber_id;
  PartnerId partner_id;
  int64_t plan_id = 0;
  std::string region;
  int64_t active_days = 0;
};

//! The rollup rows one commit adds.
struct RollupDelta {
  std::vector<SubscriberDayRow> subscriber_day;
  std::vector<SegmentRow> segment_5m;
  std::vector<SegmentRow> segment_day;
  std::vector<SubscriberMonthRow> subscriber_month;
  bool empty() const {
    return subscriber_day.empty() && segment_5m.empty() && segment_day.empty() &&
           subscriber_month.empty();
  }
};

inline constexpr int64_t kFiveMinutes = 5 * kMicrosPerMinute;

}  // namespace tally
