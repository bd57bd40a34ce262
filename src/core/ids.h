#pragma once
// Typed identifiers. A SubscriberId cannot be passed where a PlanId is expected, although both are
// 64-bit integers on the wire and in storage.

#include <cstdint>
#include <functional>

namespace tally {

//! A 64-bit identifier tagged with the kind of thing it names.
template <typename Tag>
class TypedId {
 public:
  using Rep = int64_t;
  constexpr TypedId() = default;
  constexpr explicit TypedId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr bool valid() const { return v_ > 0 || (Tag::kZeroIsValid && v_ == 0); }
  friend constexpr bool operator==(TypedId a, TypedId b) { return a.v_ == b.v_; }
  friend constexpr auto operator<=>(TypedId a, TypedId b) { return a.v_ <=> b.v_; }

 private:
  Rep v_ = -1;
};

struct SubscriberTag { static constexpr bool kZeroIsValid = false; };
// Partner 0 is the operator's own brand.
struct PartnerTag { static constexpr bool kZeroIsValid = true; };
struct PlanTag { static constexpr bool kZeroIsValid = false; };
struct TowerTag { static constexpr bool kZeroIsValid = false; };
struct CityTag { static constexpr bool kZeroIsValid = false; };
struct VisitorTag { static constexpr bool kZeroIsValid = false; };
struct CaseTag { static constexpr bool kZeroIsValid = false; };

using SubscriberId = TypedId<SubscriberTag>;
using PartnerId = TypedId<PartnerTag>;
using PlanId = TypedId<PlanTag>;
using TowerId = TypedId<TowerTag>;
using CityId = TypedId<CityTag>;
using VisitorId = TypedId<VisitorTag>;
using CaseId = TypedId<CaseTag>;

}  // namespace tally

template <typename Tag>
struct std::hash<tally::TypedId<Tag>> {
  size_t operator()(tally::TypedId<Tag> id) const noexcept {
    return std::hash<int64_t>()(id.value());
  }
};
