#pragma once
// A partner brand: the operator's own brand (partner 0) or an MVNO/reseller riding its network.

#include <string>
#include <tuple>

#include "model/field.h"

namespace tally {

//! A brand that owns subscribers. Every subscriber row and event carries its partner id, which is
//! what row-level security for partners keys on.
struct Partner {
  PartnerId partner_id;
  std::string name;
  PartnerKind kind = PartnerKind::kOwnBrand;
  Region home_region = Region::kNorthAmerica;
  Date since;
  double revenue_share = 0;  // the partner's share of its subscribers' revenue, 0..1

  static constexpr std::string_view kTable = "partners";
  static constexpr auto kFields = std::make_tuple(
      F("partner_id", &Partner::partner_id, "", "Partner id; 0 is the operator's own brand."),
      F("name", &Partner::name, "", "Brand name shown to users."),
      F("kind", &Partner::kind, "", "own_brand for partner 0, otherwise mvno or reseller."),
      F("home_region", &Partner::home_region, "", "Region where most of its subscribers live."),
      F("since", &Partner::since, "", "Date the wholesale agreement started."),
      F("revenue_share", &Partner::revenue_share, "fraction 0..1",
        "Share of subscriber revenue kept by the partner."));
  friend bool operator==(const Partner&, const Partner&) = default;
};

}  // namespace tally
