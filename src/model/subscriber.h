#pragma once
// A subscriber (a SIM on the network) as of the end of the data: who, where, which brand and plan.

#include <optional>
#include <string>
#include <tuple>

#include "model/field.h"

namespace tally {

//! A subscriber. msisdn, imsi and name are personal data: the API masks them by role.
struct Subscriber {
  SubscriberId subscriber_id;
  std::string msisdn;
  std::string imsi;
  std::string name;
  PartnerId partner_id;
  PlanId plan_id;
  BillingType billing_type = BillingType::kPrepaid;
  Region region = Region::kNorthAmerica;
  std::string country;
  std::string city;
  double latitude = 0;
  double longitude = 0;
  DeviceType device_type = DeviceType::kAndroid;
  Date activation_date;
  SubscriberStatus status = SubscriberStatus::kActive;
  std::optional<Date> status_date;  // when status last changed; empty if never

  static constexpr std::string_view kTable = "subscribers";
  static constexpr auto kFields = std::make_tuple(
      F("subscriber_id", &Subscriber::subscriber_id, "", "Subscriber id."),
      F("msisdn", &Subscriber::msisdn, "E.164", "Phone number, e.g. +12125550123. Personal data."),
      F("imsi", &Subscriber::imsi, "15 digits", "SIM identity: MCC + MNC + MSIN. Personal data."),
      F("name", &Subscriber::name, "", "Account holder's name. Personal data."),
      F("partner_id", &Subscriber::partner_id, "", "Brand the subscriber belongs to."),
      F("plan_id", &Subscriber::plan_id, "", "Current plan."),
      F("billing_type", &Subscriber::billing_type, "", "Billing type of the current plan."),
      F("region", &Subscriber::region, "", "Home region."),
      F("country", &Subscriber::country, "ISO 3166-1 alpha-2", "Home country."),
      F("city", &Subscriber::city, "", "Home city."),
      F("latitude", &Subscriber::latitude, "degrees", "Home location latitude (WGS 84)."),
      F("longitude", &Subscriber::longitude, "degrees", "Home location longitude (WGS 84)."),
      F("device_type", &Subscriber::device_type, "", "Main device."),
      F("activation_date", &Subscriber::activation_date, "", "Day the SIM was activated."),
      F("status", &Subscriber::status, "", "Status at the end of the data."),
      F("status_date", &Subscriber::status_date, "",
        "Day of the last status change (the churn day for churned subscribers)."));
  friend bool operator==(const Subscriber&, const Subscriber&) = default;
};

}  // namespace tally
