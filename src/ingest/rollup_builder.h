#pragma once
// Turns accepted events into rollup rows (see store/rollup.h): one partial row per subscriber
// and day, and per segment (partner, plan, region) and 5-minute slot or day, for one commit.

#include <unordered_map>

#include "ingest/subscriber_directory.h"
#include "model/events.h"
#include "store/rollup.h"

namespace tally {

//! Accumulates the rollup delta of one commit. Not thread-safe.
class RollupBuilder {
 public:
  explicit RollupBuilder(const SubscriberDirectory* subscribers) : subscribers_(subscribers) {}

  void Add(const UsageEvent& e);
  void Add(const RechargeEvent& e);
  void Add(const LifecycleEvent& e);
  void Add(const NetworkEvent& e);
  void Add(const RoamingEvent& e);
  void Add(const ComplaintEvent& e);
  void Add(const AppEvent& e);
  void Add(const ExperimentEvent& e);
  void Add(const ChargeEvent& e);

  //! The rows accumulated so far; the builder is empty afterwards.
  RollupDelta Take();

 private:
  //! Adds `m` to every rollup the event belongs to.
  void Apply(Timestamp ts, std::optional<SubscriberId> sub, PartnerId partner, std::optional<PlanId> plan,
             std::optional<Region> region, const Measures& m);

  struct SegmentKey {
    int64_t bucket;
    int64_t partner;
    int64_t plan;
    int region;  // Region + 1; 0 when unknown
    friend bool operator==(const SegmentKey&, const SegmentKey&) = default;
  };
  struct SubscriberDayKey {
    int64_t subscriber;
    int32_t day;
    friend bool operator==(const SubscriberDayKey&, const SubscriberDayKey&) = default;
  };
  struct KeyHash {
    // Unsigned arithmetic: the products wrap by design.
    size_t operator()(const SegmentKey& k) const {
      return static_cast<size_t>(static_cast<uint64_t>(k.bucket) * 1000003u ^
                                 static_cast<uint64_t>(k.partner) * 7919u ^ static_cast<uint64_t>(k.plan) * 104729u ^
                                 static_cast<uint64_t>(k.region));
    }
    size_t operator()(const SubscriberDayKey& k) const {
      return static_cast<size_t>(static_cast<uint64_t>(k.subscriber) * 1000003u ^ static_cast<uint32_t>(k.day));
    }
  };
  const SubscriberDirectory* subscribers_;
  std::unordered_map<SubscriberDayKey, std::pair<PartnerId, Measures>, KeyHash> subscriber_day_;
  std::unordered_map<SegmentKey, Measures, KeyHash> segment_5m_;
  std::unordered_map<SegmentKey, Measures, KeyHash> segment_day_;
};

}  // namespace tally
