#pragma once
// The closed vocabularies of the domain. Each enum has one name table, used for CSV, JSON, SQL
// and the data dictionary alike, so a value is spelled the same way everywhere.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

enum class Tier : uint8_t { kBasic, kPro, kEnterprise };
enum class BillingType : uint8_t { kPrepaid, kPostpaid };
enum class Region : uint8_t { kNorthAmerica, kEurope, kApac, kLatam };
enum class DeviceType : uint8_t { kAndroid, kIos, kFeaturePhone, kTablet, kHotspot };
enum class SubscriberStatus : uint8_t { kActive, kSuspended, kChurned };
enum class PartnerKind : uint8_t { kOwnBrand, kMvno, kReseller };

//! The event families: each is one schema, one ingest endpoint and one table.
enum class EventFamily : uint8_t {
  kUsage, kRecharge, kLifecycle, kNetwork, kRoaming, kComplaint, kApp, kExperiment, kCharge
};
inline constexpr int kEventFamilyCount = 9;
//! The families `tally generate` writes: every family but charge, which only the ledger writes.
inline constexpr int kGeneratedFamilyCount = 8;

enum class UsageKind : uint8_t { kVoiceCall, kSms, kDataSession };
enum class Destination : uint8_t { kOnNet, kOffNet, kInternational, kPremium };
enum class RechargeChannel : uint8_t { kApp, kRetail, kWeb, kAutoTopup, kVoucher };
enum class PaymentStatus : uint8_t { kSucceeded, kFailed };
enum class LifecycleKind : uint8_t { kActivation, kDeactivation, kPlanChange };
enum class LifecycleReason : uint8_t {
  kNew, kUpgrade, kDowngrade, kVoluntary, kPortOut, kNonPayment
};
enum class NetworkKind : uint8_t { kTowerHandover, kCallDrop };
enum class DropCause : uint8_t { kRadioLinkFailure, kHandoverFailure, kCongestion };
enum class RoamingKind : uint8_t { kRoamingStart, kRoamingEnd };
enum class ComplaintCategory : uint8_t { kNetwork, kBilling, kRoaming, kDevice, kService };
enum class ComplaintChannel : uint8_t { kCallCenter, kApp, kStore, kSocial };
enum class Priority : uint8_t { kLow, kMedium, kHigh };
enum class AppKind : uint8_t { kVisit, kSignup, kTrialStart, kPaidConversion, kSession, kError };
enum class ExperimentKind : uint8_t { kExposure, kConversion };
enum class ExperimentUnit : uint8_t { kVisitor, kSubscriber };
//! What a ledger charge entry is for.
enum class ChargeEntry : uint8_t { kUsage, kPlanFee, kProration, kRefund, kReversal };
//! Which part of the tariff priced a usage charge.
enum class ChargeKind : uint8_t { kBundle, kOverage, kRoaming, kPremiumSms };

//! Name table of an enum. Specialized once per enum below.
template <typename E>
struct EnumNames;

#define TALLY_ENUM_NAMES(E, TYPE_NAME, ...)                                           \
  template <>                                                                         \
  struct EnumNames<E> {                                                               \
    static constexpr std::string_view kTypeName = TYPE_NAME;                          \
    static constexpr std::array kNames = std::to_array<std::string_view>(__VA_ARGS__); \
  }

TALLY_ENUM_NAMES(Tier, "tier", {"Basic", "Pro", "Enterprise"});
TALLY_ENUM_NAMES(BillingType, "billing_type", {"prepaid", "postpaid"});
TALLY_ENUM_NAMES(Region, "region", {"North America", "Europe", "APAC", "LATAM"});
TALLY_ENUM_NAMES(DeviceType, "device_type",
                 {"android", "ios", "feature_phone", "tablet", "hotspot"});
TALLY_ENUM_NAMES(SubscriberStatus, "subscriber_status", {"active", "suspended", "churned"});
TALLY_ENUM_NAMES(PartnerKind, "partner_kind", {"own_brand", "mvno", "reseller"});
TALLY_ENUM_NAMES(EventFamily, "event_family",
                 {"usage", "recharge", "lifecycle", "network", "roaming", "complaint", "app",
                  "experiment", "charge"});
TALLY_ENUM_NAMES(UsageKind, "usage_kind", {"voice_call", "sms", "data_session"});
TALLY_ENUM_NAMES(Destination, "destination", {"on_net", "off_net", "international", "premium"});
TALLY_ENUM_NAMES(RechargeChannel, "recharge_channel",
                 {"app", "retail", "web", "auto_topup", "voucher"});
TALLY_ENUM_NAMES(PaymentStatus, "payment_status", {"succeeded", "failed"});
TALLY_ENUM_NAMES(LifecycleKind, "lifecycle_kind", {"activation", "deactivation", "plan_change"});
TALLY_ENUM_NAMES(LifecycleReason, "lifecycle_reason",
                 {"new", "upgrade", "downgrade", "voluntary", "port_out", "non_payment"});
TALLY_ENUM_NAMES(NetworkKind, "network_kind", {"tower_handover", "call_drop"});
TALLY_ENUM_NAMES(DropCause, "drop_cause", {"radio_link_failure", "handover_failure", "congestion"});
TALLY_ENUM_NAMES(RoamingKind, "roaming_kind", {"roaming_start", "roaming_end"});
TALLY_ENUM_NAMES(ComplaintCategory, "complaint_category",
                 {"network", "billing", "roaming", "device", "service"});
TALLY_ENUM_NAMES(ComplaintChannel, "complaint_channel", {"call_center", "app", "store", "social"});
TALLY_ENUM_NAMES(Priority, "priority", {"low", "medium", "high"});
TALLY_ENUM_NAMES(AppKind, "app_kind",
                 {"visit", "signup", "trial_start", "paid_conversion", "session", "error"});
TALLY_ENUM_NAMES(ExperimentKind, "experiment_kind", {"exposure", "conversion"});
TALLY_ENUM_NAMES(ExperimentUnit, "experiment_unit", {"visitor", "subscriber"});
TALLY_ENUM_NAMES(ChargeEntry, "charge_entry", {"usage", "plan_fee", "proration", "refund", "reversal"});
TALLY_ENUM_NAMES(ChargeKind, "charge_kind", {"bundle", "overage", "roaming", "premium_sms"});

#undef TALLY_ENUM_NAMES

template <typename E>
constexpr size_t EnumCount() { return EnumNames<E>::kNames.size(); }

template <typename E>
constexpr std::string_view Name(E e) {
  return EnumNames<E>::kNames[static_cast<size_t>(e)];
}

//! Parses an enum by its exact name; the error lists the accepted values.
template <typename E>
Result<E> ParseEnum(std::string_view text) {
  const auto& names = EnumNames<E>::kNames;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == text) return static_cast<E>(i);
  }
  std::string msg = "'" + std::string(text.substr(0, 64)) + "' is not a " +
                    std::string(EnumNames<E>::kTypeName) + " (expected one of ";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) msg += ", ";
    msg += names[i];
  }
  return Status::InvalidArgument(msg + ")");
}

//! All values of an enum, in declaration order.
template <typename E>
constexpr std::array<E, EnumCount<E>()> AllValues() {
  std::array<E, EnumCount<E>()> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<E>(i);
  return out;
}

}  // namespace tally
