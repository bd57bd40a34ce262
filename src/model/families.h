#pragma once
// Compile-time dispatch from a table's runtime name (an EventFamily, or a reference table) to the
// record type that defines its schema, so generic code (decoders, appenders, validators) is
// written once as a template over the record type.

#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

#include "model/events.h"
#include "model/geography.h"
#include "model/partner.h"
#include "model/plan.h"
#include "model/seed.h"
#include "model/subscriber.h"

namespace tally {

//! Calls fn(std::type_identity<Rec>{}) with the record type of `family` and returns its result.
template <typename Fn>
decltype(auto) VisitFamily(EventFamily family, Fn&& fn) {
  switch (family) {
    case EventFamily::kUsage: return fn(std::type_identity<UsageEvent>{});
    case EventFamily::kRecharge: return fn(std::type_identity<RechargeEvent>{});
    case EventFamily::kLifecycle: return fn(std::type_identity<LifecycleEvent>{});
    case EventFamily::kNetwork: return fn(std::type_identity<NetworkEvent>{});
    case EventFamily::kRoaming: return fn(std::type_identity<RoamingEvent>{});
    case EventFamily::kComplaint: return fn(std::type_identity<ComplaintEvent>{});
    case EventFamily::kApp: return fn(std::type_identity<AppEvent>{});
    case EventFamily::kExperiment: return fn(std::type_identity<ExperimentEvent>{});
    case EventFamily::kCharge: return fn(std::type_identity<ChargeEvent>{});
  }
  return fn(std::type_identity<UsageEvent>{});
}

//! Calls fn(family, std::type_identity<Rec>{}) for every event family, in enum order.
template <typename Fn>
void ForEachFamily(Fn&& fn) {
  for (int i = 0; i < kEventFamilyCount; ++i) {
    auto f = static_cast<EventFamily>(i);
    VisitFamily(f, [&](auto t) { fn(f, t); });
  }
}

//! The reference (dimension) tables: slowly changing rows keyed by an id, replaced on reload.
enum class ReferenceTable : uint8_t {
  kPartners, kPlans, kSubscribers, kCities, kTowers, kSeedPricingElasticity, kSeedFunnel
};
inline constexpr int kReferenceTableCount = 7;

template <typename Fn>
decltype(auto) VisitReference(ReferenceTable table, Fn&& fn) {
  switch (table) {
    case ReferenceTable::kPartners: return fn(std::type_identity<Partner>{});
    case ReferenceTable::kPlans: return fn(std::type_identity<PlanVersion>{});
    case ReferenceTable::kSubscribers: return fn(std::type_identity<Subscriber>{});
    case ReferenceTable::kCities: return fn(std::type_identity<CityRow>{});
    case ReferenceTable::kTowers: return fn(std::type_identity<Tower>{});
    case ReferenceTable::kSeedPricingElasticity: return fn(std::type_identity<SeedElasticityRow>{});
    case ReferenceTable::kSeedFunnel: return fn(std::type_identity<SeedFunnelRow>{});
  }
  return fn(std::type_identity<Partner>{});
}

template <typename Fn>
void ForEachReference(Fn&& fn) {
  for (int i = 0; i < kReferenceTableCount; ++i) {
    auto t = static_cast<ReferenceTable>(i);
    VisitReference(t, [&](auto type) { fn(t, type); });
  }
}

//! The columns that identify a reference row: a reload replaces rows with the same key.
template <typename Rec>
constexpr auto ReferenceKey() {
  if constexpr (std::is_same_v<Rec, PlanVersion>) {
    return std::to_array<std::string_view>({"plan_id", "region", "version"});
  } else if constexpr (std::is_same_v<Rec, Partner>) {
    return std::to_array<std::string_view>({"partner_id"});
  } else if constexpr (std::is_same_v<Rec, Subscriber>) {
    return std::to_array<std::string_view>({"subscriber_id"});
  } else if constexpr (std::is_same_v<Rec, CityRow>) {
    return std::to_array<std::string_view>({"city_id"});
  } else if constexpr (std::is_same_v<Rec, SeedElasticityRow>) {
    return std::to_array<std::string_view>({"plan", "region", "year"});
  } else if constexpr (std::is_same_v<Rec, SeedFunnelRow>) {
    return std::to_array<std::string_view>({"step", "region", "plan", "year"});
  } else {
    return std::to_array<std::string_view>({"tower_id"});
  }
}

//! Rows of any one table, typed.
using AnyRows = std::variant<std::vector<UsageEvent>, std::vector<RechargeEvent>,
                             std::vector<LifecycleEvent>, std::vector<NetworkEvent>,
                             std::vector<RoamingEvent>, std::vector<ComplaintEvent>,
                             std::vector<AppEvent>, std::vector<ExperimentEvent>,
                             std::vector<ChargeEvent>, std::vector<Partner>, std::vector<PlanVersion>, std::vector<Subscriber>,
                             std::vector<CityRow>, std::vector<Tower>, std::vector<SeedElasticityRow>,
                             std::vector<SeedFunnelRow>>;

//! The reference table named `name` (its kTable), if any.
inline std::optional<ReferenceTable> ReferenceTableNamed(std::string_view name) {
  std::optional<ReferenceTable> out;
  ForEachReference([&](ReferenceTable t, auto type) {
    if (decltype(type)::type::kTable == name) out = t;
  });
  return out;
}

}  // namespace tally
