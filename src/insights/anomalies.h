#pragma once
// Bill-shock and unusual-charge detection per subscriber. Each subscriber's days are compared
// with a seasonal, robust baseline of their own (the median of the same weekday over the previous
// weeks; the median and MAD of the previous days), and each flag names the part of the bill that
// caused it: roaming, premium SMS, overage, or a double charge (a usage record billed twice).
// docs/insights.md gives the rules and their defaults.

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "generate/truth.h"
#include "metrics/analyses.h"
#include "metrics/metrics_engine.h"

namespace tally {

//! One subscriber-day, as SubscriberDaysAnalysis gives it.
struct SubscriberDay {
  int64_t subscriber_id = 0;
  Date day;
  double home_mb = 0;
  double roaming_mb = 0;
  int64_t home_sessions = 0;     // data sessions at home
  int64_t roaming_sessions = 0;  // data sessions abroad
  int64_t roaming_records = 0;
  std::string roaming_country;
  int64_t premium_sms = 0;
  int64_t overage_minor = 0;
  int64_t roaming_minor = 0;
  int64_t premium_minor = 0;
};

//! Usage records stored twice (DuplicateUsageAnalysis).
struct DuplicateUsage {
  int64_t subscriber_id = 0;
  Timestamp ts;
  std::string kind;
  std::string session_ref;
  int64_t copies = 0;
  std::string first_event_id, last_event_id;
  int64_t charged_minor = 0;
};

struct AnomalyOptions {
  TimeRange range = AllTime();
  std::optional<int64_t> subscriber;  // one subscriber's flags only
  // Baselines: the same weekday over this many previous weeks (at least 3 of them), else the
  // previous `lookback_days` days (at least 5), else every day of the subscriber in the range.
  int seasonal_weeks = 8;
  int lookback_days = 28;
  // Roaming: a trip (days abroad, at most merge_gap_days apart) whose data sessions are at least
  // roaming_data_ratio of the sessions the subscriber's home norm expects for those days (data
  // roaming left on), at least roaming_min_sessions, and more than a careful traveller would use:
  // P(Poisson(roaming_careful_share x expected) >= sessions) < roaming_alpha.
  double roaming_data_ratio = 0.3;
  int64_t roaming_min_sessions = 2;
  double roaming_careful_share = 0.1;
  double roaming_alpha = 0.01;
  // Premium SMS: a day with at least premium_min messages and premium_factor x (norm + 1).
  int64_t premium_min = 10;
  double premium_factor = 5;
  // Overage: a day whose overage charges exceed the norm by overage_mads robust deviations
  // (1.4826 x MAD) and by at least overage_min_minor.
  double overage_mads = 5;
  int64_t overage_min_minor = 1000;
  // Flagged days of one cause (days abroad, for roaming) at most this many days apart form one
  // episode.
  int merge_gap_days = 2;
};

struct ChargeFlag {
  int64_t subscriber_id = 0;
  std::string cause;           // roaming, premium_sms, overage, double_charge
  Timestamp start, end;        // the episode: [first flagged day, day after the last); a double
                               // charge: the record's time (start == end)
  int days = 0;                // flagged days (1 for a double charge)
  int64_t charge_minor = 0;    // what the flagged part cost over the episode
  int64_t expected_minor = 0;  // what the subscriber's norm would have cost (0 for roaming
                               // and double charges: no norm to bill)
  std::string reason;          // one sentence for the subscriber or the agent
  std::optional<std::string> country;                      // roaming
  std::optional<std::string> event_id, original_event_id;  // double charge
};

struct AnomalyReport {
  AnomalyOptions options;
  std::vector<ChargeFlag> flags;  // by subscriber, then start
  int64_t subscribers = 0;        // subscribers with data in the range
  std::string source;

  std::string ToJson() const;
  std::string ToCsv() const;
};

//! The flags of `days` (sorted by subscriber, then day) and `duplicates`. Pure; for tests.
std::vector<ChargeFlag> DetectFlags(const std::vector<SubscriberDay>& days,
                                    const std::vector<DuplicateUsage>& duplicates,
                                    const AnomalyOptions& options);

//! The subscriber-days and duplicated records DetectAnomalies reads (under `scope`).
Result<std::vector<SubscriberDay>> ReadSubscriberDays(MetricsEngine& engine,
                                                      const AnomalyOptions& options,
                                                      const SecurityScope& scope);
Result<std::vector<DuplicateUsage>> ReadDuplicateUsage(MetricsEngine& engine,
                                                       const AnomalyOptions& options,
                                                       const SecurityScope& scope);

//! Reads the store (under `scope`) and detects.
Result<AnomalyReport> DetectAnomalies(MetricsEngine& engine, const AnomalyOptions& options,
                                      const SecurityScope& scope);

//! Precision and recall of flags against the generator's labelled anomalies, per labelled kind:
//! a flag matches a label of its kind (roaming <-> roaming_bill_shock, premium_sms <->
//! premium_sms_fraud, double_charge <-> double_charge) for the same subscriber whose time span
//! overlaps it (double charges: the same record time). For benchmarks and tests.
struct DetectionScore {
  std::string kind;
  int64_t labelled = 0, flagged = 0;
  int64_t labels_found = 0;   // labels matched by at least one flag
  int64_t flags_correct = 0;  // flags matching at least one label
  double precision = 0, recall = 0;
};
std::vector<DetectionScore> ScoreFlags(const std::vector<ChargeFlag>& flags,
                                       const std::vector<AnomalyTruth>& truth);

}  // namespace tally
