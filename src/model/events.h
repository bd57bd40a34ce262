#pragma once
// The event families. Each family is one schema: one ingest endpoint, one table, one file set.
// Every event has an event_id (the dedup key: the same id is the same event, however often it is
// delivered), a UTC timestamp ts, and, where it concerns a subscriber, subscriber_id and
// partner_id (the keys of row-level security).

#include <optional>
#include <string>
#include <tuple>

#include "model/field.h"

namespace tally {

inline constexpr std::string_view kEventIdDoc =
    "Unique id of the event; redeliveries carry the same id and are counted once.";

//! A call, SMS or data session record (CDR) as the network reports it, before rating.
struct UsageEvent {
  std::string event_id;
  Timestamp ts;
  UsageKind kind = UsageKind::kVoiceCall;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  std::optional<TowerId> tower_id;    // empty while roaming (the visited network's cell)
  std::optional<int32_t> duration_s;  // voice and data
  std::optional<int64_t> bytes;       // data only
  std::optional<std::string> counterparty;  // voice and SMS: the other number or short code
  std::optional<Destination> destination;   // voice and SMS
  bool roaming = false;
  std::optional<std::string> roaming_country;
  std::string session_ref;

  static constexpr EventFamily kFamily = EventFamily::kUsage;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &UsageEvent::event_id, "", kEventIdDoc),
      F("ts", &UsageEvent::ts, "UTC", "Start of the call or session, or the SMS send time."),
      F("kind", &UsageEvent::kind, "", "Kind of usage."),
      F("subscriber_id", &UsageEvent::subscriber_id, "", "Subscriber who used the service."),
      F("partner_id", &UsageEvent::partner_id, "", "Subscriber's partner brand."),
      F("tower_id", &UsageEvent::tower_id, "",
        "Serving cell site at the start; empty while roaming on a visited network."),
      F("duration_s", &UsageEvent::duration_s, "seconds",
        "Call or session length, >= 0; empty for SMS."),
      F("bytes", &UsageEvent::bytes, "bytes", "Data volume up plus down; data sessions only."),
      F("counterparty", &UsageEvent::counterparty, "E.164 or short code",
        "Called or messaged number; empty for data."),
      F("destination", &UsageEvent::destination, "",
        "Where the call or SMS went; premium is a premium-rate short code. Empty for data."),
      F("roaming", &UsageEvent::roaming, "", "True when used abroad on a visited network."),
      F("roaming_country", &UsageEvent::roaming_country, "ISO 3166-1 alpha-2",
        "Visited country while roaming."),
      F("session_ref", &UsageEvent::session_ref, "",
        "Network correlation id of the call or session. Two records with one session_ref and "
        "different event_ids are a double charge."));
  friend bool operator==(const UsageEvent&, const UsageEvent&) = default;
};

//! A prepaid top-up attempt; failed payments are recorded too.
struct RechargeEvent {
  std::string event_id;
  Timestamp ts;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  int64_t amount_minor = 0;
  Currency currency;
  RechargeChannel channel = RechargeChannel::kApp;
  PaymentStatus payment_status = PaymentStatus::kSucceeded;

  Money amount() const { return Money{amount_minor, currency}; }

  static constexpr EventFamily kFamily = EventFamily::kRecharge;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &RechargeEvent::event_id, "", kEventIdDoc),
      F("ts", &RechargeEvent::ts, "UTC", "When the payment was attempted."),
      F("subscriber_id", &RechargeEvent::subscriber_id, "", "Subscriber topped up."),
      F("partner_id", &RechargeEvent::partner_id, "", "Subscriber's partner brand."),
      F("amount_minor", &RechargeEvent::amount_minor, "minor units", "Amount, > 0."),
      F("currency", &RechargeEvent::currency, "ISO 4217", "Currency of the amount."),
      F("channel", &RechargeEvent::channel, "", "Where the recharge was made."),
      F("payment_status", &RechargeEvent::payment_status, "",
        "failed payments credit nothing but are kept for analysis."));
  friend bool operator==(const RechargeEvent&, const RechargeEvent&) = default;
};

//! Activation, plan change and deactivation (churn) of a subscriber.
struct LifecycleEvent {
  std::string event_id;
  Timestamp ts;
  LifecycleKind kind = LifecycleKind::kActivation;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  PlanId plan_id;
  std::optional<PlanId> from_plan_id;
  LifecycleReason reason = LifecycleReason::kNew;

  static constexpr EventFamily kFamily = EventFamily::kLifecycle;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &LifecycleEvent::event_id, "", kEventIdDoc),
      F("ts", &LifecycleEvent::ts, "UTC", "When the change took effect."),
      F("kind", &LifecycleEvent::kind, "", "deactivation is churn."),
      F("subscriber_id", &LifecycleEvent::subscriber_id, "", "Subscriber concerned."),
      F("partner_id", &LifecycleEvent::partner_id, "", "Subscriber's partner brand."),
      F("plan_id", &LifecycleEvent::plan_id, "", "Plan after the change (the last plan, for churn)."),
      F("from_plan_id", &LifecycleEvent::from_plan_id, "", "Plan before a plan_change."),
      F("reason", &LifecycleEvent::reason, "",
        "new (activation); upgrade or downgrade (plan_change); voluntary, port_out or "
        "non_payment (deactivation)."));
  friend bool operator==(const LifecycleEvent&, const LifecycleEvent&) = default;
};

//! Radio network events: handovers between cell sites and dropped calls.
struct NetworkEvent {
  std::string event_id;
  Timestamp ts;
  NetworkKind kind = NetworkKind::kTowerHandover;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  TowerId tower_id;
  std::optional<TowerId> to_tower_id;
  std::optional<DropCause> cause;
  std::string session_ref;

  static constexpr EventFamily kFamily = EventFamily::kNetwork;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &NetworkEvent::event_id, "", kEventIdDoc),
      F("ts", &NetworkEvent::ts, "UTC", "When it happened."),
      F("kind", &NetworkEvent::kind, "", "Kind of network event."),
      F("subscriber_id", &NetworkEvent::subscriber_id, "", "Subscriber affected."),
      F("partner_id", &NetworkEvent::partner_id, "", "Subscriber's partner brand."),
      F("tower_id", &NetworkEvent::tower_id, "", "Cell site serving at the time (source of a handover)."),
      F("to_tower_id", &NetworkEvent::to_tower_id, "", "Target cell site of a handover."),
      F("cause", &NetworkEvent::cause, "", "Why a call dropped; call_drop only."),
      F("session_ref", &NetworkEvent::session_ref, "", "The call or session it belongs to."));
  friend bool operator==(const NetworkEvent&, const NetworkEvent&) = default;
};

//! A subscriber attaching to, or leaving, a visited network abroad.
struct RoamingEvent {
  std::string event_id;
  Timestamp ts;
  RoamingKind kind = RoamingKind::kRoamingStart;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  std::string country;

  static constexpr EventFamily kFamily = EventFamily::kRoaming;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &RoamingEvent::event_id, "", kEventIdDoc),
      F("ts", &RoamingEvent::ts, "UTC", "When the subscriber attached or left."),
      F("kind", &RoamingEvent::kind, "", "Start or end of a stay abroad."),
      F("subscriber_id", &RoamingEvent::subscriber_id, "", "Roaming subscriber."),
      F("partner_id", &RoamingEvent::partner_id, "", "Subscriber's partner brand."),
      F("country", &RoamingEvent::country, "ISO 3166-1 alpha-2", "Visited country."));
  friend bool operator==(const RoamingEvent&, const RoamingEvent&) = default;
};

//! A customer complaint (a CRM case being opened).
struct ComplaintEvent {
  std::string event_id;
  Timestamp ts;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  CaseId case_id;
  ComplaintCategory category = ComplaintCategory::kNetwork;
  ComplaintChannel channel = ComplaintChannel::kCallCenter;
  Priority priority = Priority::kMedium;
  std::optional<int32_t> resolution_hours;

  static constexpr EventFamily kFamily = EventFamily::kComplaint;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &ComplaintEvent::event_id, "", kEventIdDoc),
      F("ts", &ComplaintEvent::ts, "UTC", "When the case was opened."),
      F("subscriber_id", &ComplaintEvent::subscriber_id, "", "Complaining subscriber."),
      F("partner_id", &ComplaintEvent::partner_id, "", "Subscriber's partner brand."),
      F("case_id", &ComplaintEvent::case_id, "", "CRM case number."),
      F("category", &ComplaintEvent::category, "", "What the complaint is about."),
      F("channel", &ComplaintEvent::channel, "", "Where it was raised."),
      F("priority", &ComplaintEvent::priority, "", "Triage priority."),
      F("resolution_hours", &ComplaintEvent::resolution_hours, "hours",
        "Time to resolve; empty while open."));
  friend bool operator==(const ComplaintEvent&, const ComplaintEvent&) = default;
};

//! Digital telemetry from the operator's web site and app: the acquisition funnel
//! (visit -> signup -> trial_start -> paid_conversion) and subscribers' app sessions and errors.
struct AppEvent {
  std::string event_id;
  Timestamp ts;
  AppKind kind = AppKind::kVisit;
  std::optional<VisitorId> visitor_id;
  std::optional<SubscriberId> subscriber_id;
  PartnerId partner_id;
  Region region = Region::kNorthAmerica;
  std::optional<std::string> city;
  std::optional<PlanId> plan_id;
  DeviceType device_type = DeviceType::kAndroid;
  std::optional<int64_t> amount_minor;
  std::optional<Currency> currency;
  std::optional<int32_t> duration_s;
  std::optional<std::string> error_code;

  static constexpr EventFamily kFamily = EventFamily::kApp;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &AppEvent::event_id, "", kEventIdDoc),
      F("ts", &AppEvent::ts, "UTC", "When it happened."),
      F("kind", &AppEvent::kind, "", "Funnel step, app session or app error."),
      F("visitor_id", &AppEvent::visitor_id, "",
        "Anonymous visitor (funnel events); carried on to the paid_conversion."),
      F("subscriber_id", &AppEvent::subscriber_id, "",
        "Subscriber, once known: on paid_conversion, session and error."),
      F("partner_id", &AppEvent::partner_id, "", "Brand whose site or app it was."),
      F("region", &AppEvent::region, "", "Region of the visitor or subscriber."),
      F("city", &AppEvent::city, "", "City of the visitor or subscriber."),
      F("plan_id", &AppEvent::plan_id, "", "Plan viewed (funnel) or bought (paid_conversion)."),
      F("device_type", &AppEvent::device_type, "", "Device used."),
      F("amount_minor", &AppEvent::amount_minor, "minor units",
        "First payment, on paid_conversion: the plan's monthly price that day."),
      F("currency", &AppEvent::currency, "ISO 4217", "Currency of amount_minor."),
      F("duration_s", &AppEvent::duration_s, "seconds", "Length of an app session."),
      F("error_code", &AppEvent::error_code, "", "Error code of an app error, e.g. E502."));
  friend bool operator==(const AppEvent&, const AppEvent&) = default;
};

//! Exposure of a unit to an experiment variant, and conversions attributed to it.
struct ExperimentEvent {
  std::string event_id;
  Timestamp ts;
  ExperimentKind kind = ExperimentKind::kExposure;
  std::string experiment;
  std::string variant;
  ExperimentUnit unit = ExperimentUnit::kVisitor;
  int64_t unit_id = 0;
  PartnerId partner_id;
  std::optional<std::string> metric;
  std::optional<int64_t> value_minor;

  static constexpr EventFamily kFamily = EventFamily::kExperiment;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &ExperimentEvent::event_id, "", kEventIdDoc),
      F("ts", &ExperimentEvent::ts, "UTC", "When the unit was exposed or converted."),
      F("kind", &ExperimentEvent::kind, "", "exposure or conversion."),
      F("experiment", &ExperimentEvent::experiment, "", "Experiment key, e.g. button_colour."),
      F("variant", &ExperimentEvent::variant, "", "control or treatment."),
      F("unit", &ExperimentEvent::unit, "", "What was randomised."),
      F("unit_id", &ExperimentEvent::unit_id, "", "visitor_id or subscriber_id of the unit."),
      F("partner_id", &ExperimentEvent::partner_id, "", "Brand running the experiment."),
      F("metric", &ExperimentEvent::metric, "", "Conversion metric, e.g. signup or recharge."),
      F("value_minor", &ExperimentEvent::value_minor, "minor units",
        "Revenue attached to a conversion, in the experiment's currency."));
  friend bool operator==(const ExperimentEvent&, const ExperimentEvent&) = default;
};

//! A money entry of the ledger, delivered to the event store through the outbox: the rated charge
//! of one usage record (event_id "c:" + the usage event_id, on the usage record's timestamp), a
//! plan's recurring fee, a proration of a mid-cycle plan change, or the refund or reversal of a
//! recharge. For usage, fees and prorations amount_minor is what the subscriber owes (a proration
//! credit is negative); for a refund or reversal it is the recharge amount taken back off the
//! balance.
struct ChargeEvent {
  std::string event_id;
  Timestamp ts;
  ChargeEntry entry = ChargeEntry::kUsage;
  SubscriberId subscriber_id;
  PartnerId partner_id;
  std::optional<PlanId> plan_id;  // empty for usage the ledger could not price (see ref)
  int32_t plan_version = 0;
  BillingType billing_type = BillingType::kPrepaid;
  int64_t amount_minor = 0;
  Currency currency;
  std::optional<std::string> usage_event_id;
  std::optional<ChargeKind> kind;
  std::optional<int64_t> units;
  std::optional<int64_t> bundle_units;
  bool insufficient_balance = false;
  std::optional<int64_t> balance_minor;
  std::optional<int64_t> invoice_id;
  std::optional<std::string> ref;

  Money amount() const { return Money{amount_minor, currency}; }

  static constexpr EventFamily kFamily = EventFamily::kCharge;
  static constexpr auto kFields = std::make_tuple(
      F("event_id", &ChargeEvent::event_id, "", kEventIdDoc),
      F("ts", &ChargeEvent::ts, "UTC",
        "When the money moved; a usage charge carries its usage record's timestamp."),
      F("entry", &ChargeEvent::entry, "", "What the entry is for."),
      F("subscriber_id", &ChargeEvent::subscriber_id, "", "Subscriber charged or credited."),
      F("partner_id", &ChargeEvent::partner_id, "", "Subscriber's partner brand."),
      F("plan_id", &ChargeEvent::plan_id, "",
        "Plan whose terms priced the entry; empty for usage without an account or terms (see ref)."),
      F("plan_version", &ChargeEvent::plan_version, "",
        "Version of those terms (the one effective on the day of ts)."),
      F("billing_type", &ChargeEvent::billing_type, "",
        "prepaid entries move the balance; postpaid entries land on the invoice."),
      F("amount_minor", &ChargeEvent::amount_minor, "minor units",
        "usage, plan_fee, proration: owed by the subscriber (a credit is negative); refund, "
        "reversal: the recharge amount taken back."),
      F("currency", &ChargeEvent::currency, "ISO 4217", "Currency of the amount."),
      F("usage_event_id", &ChargeEvent::usage_event_id, "",
        "usage entries: the event_id of the usage record rated."),
      F("kind", &ChargeEvent::kind, "",
        "usage entries: bundle (covered), overage, roaming or premium_sms."),
      F("units", &ChargeEvent::units, "minutes, MB or messages",
        "usage entries: billable units (voice rounds up per call, data per session)."),
      F("bundle_units", &ChargeEvent::bundle_units, "minutes, MB or messages",
        "usage entries: units drawn from the bundle."),
      F("insufficient_balance", &ChargeEvent::insufficient_balance, "",
        "prepaid: the balance did not cover the charge; it was charged anyway and flagged."),
      F("balance_minor", &ChargeEvent::balance_minor, "minor units",
        "prepaid: the balance after the entry."),
      F("invoice_id", &ChargeEvent::invoice_id, "", "postpaid: the invoice the entry is on."),
      F("ref", &ChargeEvent::ref, "",
        "The ledger record behind the entry: the recharge id of a refund or reversal, or the "
        "billing cycle of a fee."));
  friend bool operator==(const ChargeEvent&, const ChargeEvent&) = default;
};

}  // namespace tally
