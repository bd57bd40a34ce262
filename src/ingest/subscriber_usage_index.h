#pragma once
// Per subscriber and day, in memory, the counters the per-subscriber usage API answers from
// (GET /v1/subscribers/{id}/usage and /summary). It holds the same numbers as the store's
// rollup_subscriber_day for eight measures, so a subscriber's series is a hash lookup instead of
// a query on the store's writer thread: the route serves thousands of requests a second on the
// HTTP threads, in parallel. The pipeline loads it at start and applies every commit's rollup
// delta after the commit is durable, so it never shows rows the store does not hold.
//
// Memory: about 60 bytes per subscriber-day with activity (1M subscribers x 30 days: ~2 GB), so
// it keeps only days within `keep_days` of the newest one, and `tally serve` can turn it off
// (serve.subscriber_index); the metrics layer answers the same questions without it.

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "core/time.h"
#include "store/event_store.h"
#include "store/rollup.h"

namespace tally {

//! One subscriber's counters for one UTC day.
struct SubscriberDayUsage {
  int32_t day = 0;  // days since 1970-01-01
  int32_t usage_events = 0;
  int32_t sms = 0;
  int32_t roaming_usage = 0;
  int32_t recharges = 0;
  int64_t voice_seconds = 0;
  int64_t data_bytes = 0;
  int64_t recharge_minor = 0;
  int64_t charge_minor = 0;
  SubscriberDayUsage& operator+=(const SubscriberDayUsage& o);
  bool zero() const;
};

class SubscriberUsageIndex {
 public:
  explicit SubscriberUsageIndex(int32_t keep_days) : keep_days_(keep_days) {}

  //! Reads rollup_subscriber_day (the last keep_days days) from `store`, in pages.
  Status Load(EventStore& store);
  //! Adds one durable commit's subscriber-day rows. Thread-safe.
  void Apply(const std::vector<SubscriberDayRow>& rows);
  //! Forgets days before `cutoff` (retention). Thread-safe.
  void DropBefore(Date cutoff);
  //! The days of `id` within [from, to] (inclusive), oldest first, one entry per day with
  //! activity. Thread-safe (readers share a lock).
  std::vector<SubscriberDayUsage> Days(SubscriberId id, Date from, Date to) const;
  //! The first day the index still holds for every subscriber (older days were not loaded or
  //! were dropped); a range starting before it cannot be answered from the index.
  Date first_day() const;
  size_t day_rows() const;

 private:
  void AddLocked(int64_t subscriber, const SubscriberDayUsage& u);
  void DropBeforeLocked(int32_t cutoff);
  const int32_t keep_days_;
  mutable std::shared_mutex mu_;
  std::unordered_map<int64_t, std::vector<SubscriberDayUsage>> map_;  // days sorted
  int32_t first_day_ = INT32_MIN;
  int32_t newest_day_ = INT32_MIN;
  size_t rows_ = 0;
};

}  // namespace tally
