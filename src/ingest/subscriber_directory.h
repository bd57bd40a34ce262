#pragma once
// The subscribers the store knows, in memory: the ingest pipeline checks every event's
// subscriber and partner against it (row-level security depends on partner_id being right) and
// the rollups take plan and region from it.

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "model/subscriber.h"
#include "store/event_store.h"

namespace tally {

struct SubscriberInfo {
  PartnerId partner_id;
  PlanId plan_id;
  Region region = Region::kNorthAmerica;
};

//! Subscriber id -> partner, plan and region. About 40 bytes per subscriber. Not thread-safe.
class SubscriberDirectory {
 public:
  //! Reads every stored subscriber.
  Status Load(EventStore& store);
  const SubscriberInfo* Find(SubscriberId id) const {
    auto it = map_.find(id.value());
    return it == map_.end() ? nullptr : &it->second;
  }
  void Upsert(const Subscriber& s) { map_[s.subscriber_id.value()] = {s.partner_id, s.plan_id, s.region}; }
  void SetPlan(SubscriberId id, PlanId plan) {
    auto it = map_.find(id.value());
    if (it != map_.end()) it->second.plan_id = plan;
  }
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<int64_t, SubscriberInfo> map_;
};

}  // namespace tally
