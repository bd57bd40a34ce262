#pragma once
// Ground truth the generator writes beside the data, so later features can be graded: who churned
// and why, which charges are anomalous, what each experiment truly did, the true elasticities,
// and every dirty row that was mixed in.

#include <optional>
#include <string>

#include "model/field.h"

namespace tally {

//! A subscriber who churned, with the churn drivers in force that day.
struct ChurnTruth {
  SubscriberId subscriber_id;
  Timestamp churn_ts;
  LifecycleReason reason = LifecycleReason::kVoluntary;
  double hazard_multiplier = 1;  // daily hazard relative to a baseline subscriber
  std::string main_driver;       // the largest factor: drops, complaints, bill_shock, ...
  int32_t drops_30d = 0;
  int32_t complaints_30d = 0;
  bool bill_shock_60d = false;
  bool price_rise_60d = false;
  double usage_ratio = 1;        // recent usage / the subscriber's normal usage
  int32_t tenure_days = 0;

  static constexpr std::string_view kTable = "truth_churn";
  static constexpr auto kFields = std::make_tuple(
      F("subscriber_id", &ChurnTruth::subscriber_id, "", "Churned subscriber."),
      F("churn_ts", &ChurnTruth::churn_ts, "UTC", "Time of the deactivation event."),
      F("reason", &ChurnTruth::reason, "", "Deactivation reason."),
      F("hazard_multiplier", &ChurnTruth::hazard_multiplier, "ratio", "Daily churn hazard relative to a baseline subscriber."),
      F("main_driver", &ChurnTruth::main_driver, "", "Largest hazard factor that day."),
      F("drops_30d", &ChurnTruth::drops_30d, "calls", "Dropped calls in the previous 30 days."),
      F("complaints_30d", &ChurnTruth::complaints_30d, "cases", "Complaints in the previous 30 days."),
      F("bill_shock_60d", &ChurnTruth::bill_shock_60d, "", "A bill shock in the previous 60 days."),
      F("price_rise_60d", &ChurnTruth::price_rise_60d, "", "The plan's price rose in the previous 60 days."),
      F("usage_ratio", &ChurnTruth::usage_ratio, "ratio", "Recent usage intensity relative to the subscriber's normal."),
      F("tenure_days", &ChurnTruth::tenure_days, "days", "Days since activation."));
};

//! A labelled billing anomaly.
struct AnomalyTruth {
  SubscriberId subscriber_id;
  std::string kind;  // roaming_bill_shock, premium_sms_fraud, double_charge
  Timestamp start_ts;
  Timestamp end_ts;
  int64_t events = 0;          // usage records involved
  int64_t charge_minor = 0;    // what the anomalous records cost under the plan
  std::optional<std::string> event_id;           // double_charge: the duplicate record
  std::optional<std::string> original_event_id;  // double_charge: the record it duplicates
  std::optional<std::string> country;            // roaming_bill_shock: visited country

  static constexpr std::string_view kTable = "truth_anomalies";
  static constexpr auto kFields = std::make_tuple(
      F("subscriber_id", &AnomalyTruth::subscriber_id, "", "Subscriber charged."),
      F("kind", &AnomalyTruth::kind, "", "roaming_bill_shock, premium_sms_fraud or double_charge."),
      F("start_ts", &AnomalyTruth::start_ts, "UTC", "First anomalous record."),
      F("end_ts", &AnomalyTruth::end_ts, "UTC", "Last anomalous record."),
      F("events", &AnomalyTruth::events, "records", "Usage records involved."),
      F("charge_minor", &AnomalyTruth::charge_minor, "minor units", "Charges of those records under the plan."),
      F("event_id", &AnomalyTruth::event_id, "", "double_charge: the duplicated record's new event_id."),
      F("original_event_id", &AnomalyTruth::original_event_id, "", "double_charge: the original record."),
      F("country", &AnomalyTruth::country, "ISO 3166-1 alpha-2", "roaming_bill_shock: visited country."));
};

//! A dirty row mixed into a data file by --dirty.
struct DirtyTruth {
  std::string file;  // relative to the output directory
  int64_t line = 0;  // 1-based line in the file (the CSV header is line 1); row number for parquet
  std::string defect;
  std::string event_id;  // event_id of the clean row it was made from

  static constexpr std::string_view kTable = "truth_dirty";
  static constexpr auto kFields = std::make_tuple(
      F("file", &DirtyTruth::file, "", "Data file holding the row."),
      F("line", &DirtyTruth::line, "", "1-based line (CSV header is line 1; parquet: row number)."),
      F("defect", &DirtyTruth::defect, "", "What is wrong with it."),
      F("event_id", &DirtyTruth::event_id, "", "event_id of the clean row it derives from."));
};

}  // namespace tally
