#include "insights/anomalies.h"

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <cstdio>
#include <map>

#include "insights/json_out.h"
#include "metrics/result_cells.h"

namespace tally {

namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  double m = v[mid];
  if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + mid)) / 2;
  return m;
}

// Median and scaled MAD (1.4826 x MAD estimates the standard deviation of normal data).
std::pair<double, double> MedianMad(const std::vector<double>& v) {
  const double m = Median(v);
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - m));
  return {m, 1.4826 * Median(dev)};
}

std::string MoneyText(int64_t minor) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(minor) / 100);
  return buf;
}

// One subscriber's days, indexed by date, with the baselines the rules need.
class SubscriberSeries {
 public:
  SubscriberSeries(const SubscriberDay* first, const SubscriberDay* last, const AnomalyOptions& o)
      : first_(first), last_(last), o_(o) {
    for (const SubscriberDay* d = first; d != last; ++d) by_day_[d->day.days] = d;
  }

  // The seasonal, robust norm of `value` before `day`, over days that pass `use`: the median of
  // the same weekday in the previous weeks, else the median (and MAD) of the previous days, else
  // of every day. MAD is 0 for the seasonal norm's first branch only when the values agree.
  template <typename Value, typename Use>
  std::pair<double, double> Norm(Date day, Value value, Use use) const {
    std::vector<double> same_weekday;
    for (int w = 1; w <= o_.seasonal_weeks; ++w) {
      auto it = by_day_.find(day.days - 7 * w);
      if (it != by_day_.end() && use(*it->second)) same_weekday.push_back(value(*it->second));
    }
    if (same_weekday.size() >= 3) return MedianMad(same_weekday);
    std::vector<double> recent;
    for (auto it = by_day_.lower_bound(day.days - o_.lookback_days);
         it != by_day_.end() && it->first < day.days; ++it) {
      if (use(*it->second)) recent.push_back(value(*it->second));
    }
    if (recent.size() >= 5) return MedianMad(recent);
    std::vector<double> all;
    for (const SubscriberDay* d = first_; d != last_; ++d) {
      if (use(*d)) all.push_back(value(*d));
    }
    return MedianMad(all);
  }

 private:
  const SubscriberDay* first_;
  const SubscriberDay* last_;
  const AnomalyOptions& o_;
  std::map<int32_t, const SubscriberDay*> by_day_;
};

// A flagged day before days are merged into episodes.
struct FlaggedDay {
  Date day;
  int64_t charge_minor = 0;
  int64_t expected_minor = 0;
  double amount = 0;  // MB for roaming, messages for premium SMS
  double norm = 0;
  std::string country;
};

void Merge(int64_t subscriber, const std::string& cause, std::vector<FlaggedDay>& days,
           const AnomalyOptions& o, std::vector<ChargeFlag>* out) {
  for (size_t i = 0; i < days.size();) {
    size_t j = i + 1;
    while (j < days.size() && days[j].day.days - days[j - 1].day.days <= o.merge_gap_days) ++j;
    ChargeFlag f;
    f.subscriber_id = subscriber;
    f.cause = cause;
    f.start = StartOfDay(days[i].day);
    f.end = StartOfDay(Date{days[j - 1].day.days + 1});
    f.days = static_cast<int>(j - i);
    double amount = 0, norm = 0;
    for (size_t k = i; k < j; ++k) {
      f.charge_minor += days[k].charge_minor;
      f.expected_minor += days[k].expected_minor;
      amount += days[k].amount;
      norm += days[k].norm;
      if (!days[k].country.empty()) f.country = days[k].country;
    }
    char buf[320];
    if (cause == "premium_sms") {
      std::snprintf(buf, sizeof buf,
                    "%.0f premium-rate SMS over %d day(s) against a usual %.0f; premium charges "
                    "%s. This pattern is typical of malware.",
                    amount, f.days, norm, MoneyText(f.charge_minor).c_str());
    } else {
      std::snprintf(buf, sizeof buf,
                    "Overage charges of %s over %d day(s) against a usual %s: the bundle ran out.",
                    MoneyText(f.charge_minor).c_str(), f.days, MoneyText(f.expected_minor).c_str());
    }
    f.reason = buf;
    out->push_back(std::move(f));
    i = j;
  }
}

// Trips: runs of days abroad at most merge_gap_days apart. A trip is flagged when its data
// sessions reach roaming_data_ratio of the sessions the subscriber's home norm expects over the
// same days: careful travellers use little data abroad, a shock trip uses it as at home.
void DetectRoaming(const SubscriberDay* first, const SubscriberDay* last,
                   const SubscriberSeries& series, const AnomalyOptions& o,
                   std::vector<ChargeFlag>* out) {
  const auto at_home = [](const SubscriberDay& d) { return d.roaming_records == 0; };
  const auto sessions = [](const SubscriberDay& d) { return static_cast<double>(d.home_sessions); };
  const auto mb = [](const SubscriberDay& d) { return d.home_mb; };
  std::vector<const SubscriberDay*> abroad;
  for (const SubscriberDay* d = first; d != last; ++d) {
    if (d->roaming_records > 0) abroad.push_back(d);
  }
  for (size_t i = 0; i < abroad.size();) {
    size_t j = i + 1;
    while (j < abroad.size() && abroad[j]->day.days - abroad[j - 1]->day.days <= o.merge_gap_days) {
      ++j;
    }
    double observed = 0, expected = 0, roam_mb = 0, home_mb = 0;
    int64_t charge = 0;
    std::string country;
    for (size_t k = i; k < j; ++k) {
      const SubscriberDay& d = *abroad[k];
      observed += static_cast<double>(d.roaming_sessions);
      expected += series.Norm(d.day, sessions, at_home).first;
      roam_mb += d.roaming_mb;
      home_mb += series.Norm(d.day, mb, at_home).first;
      charge += d.roaming_minor;
      if (!d.roaming_country.empty()) country = d.roaming_country;
    }
    // P(X >= observed) for X ~ Poisson(careful x expected) is the regularized gamma P(obs, l).
    const double careful = o.roaming_careful_share * expected;
    const double p_careful =
        observed >= 1 && careful > 0 ? boost::math::gamma_p(observed, careful) : 1.0;
    if (expected > 0 && observed >= static_cast<double>(o.roaming_min_sessions) &&
        observed >= o.roaming_data_ratio * expected && p_careful < o.roaming_alpha) {
      ChargeFlag f;
      f.subscriber_id = first->subscriber_id;
      f.cause = "roaming";
      f.start = StartOfDay(abroad[i]->day);
      f.end = StartOfDay(Date{abroad[j - 1]->day.days + 1});
      f.days = static_cast<int>(j - i);
      f.charge_minor = charge;
      if (!country.empty()) f.country = country;
      char buf[320];
      std::snprintf(buf, sizeof buf,
                    "Data roaming left on%s: %.0f data sessions (%.0f MB) abroad over %d day(s), "
                    "%.0f%% of your usual use at home (%.0f MB); roaming charges %s.",
                    country.empty() ? "" : (" in " + country).c_str(), observed, roam_mb, f.days,
                    100 * observed / expected, home_mb, MoneyText(charge).c_str());
      f.reason = buf;
      out->push_back(std::move(f));
    }
    i = j;
  }
}

void DetectSubscriber(const SubscriberDay* first, const SubscriberDay* last,
                      const AnomalyOptions& o, std::vector<ChargeFlag>* out) {
  SubscriberSeries series(first, last, o);
  DetectRoaming(first, last, series, o, out);
  std::vector<FlaggedDay> premium, overage;
  const auto any = [](const SubscriberDay&) { return true; };
  for (const SubscriberDay* d = first; d != last; ++d) {
    if (d->premium_sms >= o.premium_min) {
      auto [norm, mad] = series.Norm(
          d->day, [](const SubscriberDay& x) { return static_cast<double>(x.premium_sms); }, any);
      (void)mad;
      if (d->premium_sms >= o.premium_factor * (norm + 1)) {
        premium.push_back(
            {d->day, d->premium_minor, 0, static_cast<double>(d->premium_sms), norm, ""});
      }
    }
    if (d->overage_minor >= o.overage_min_minor) {
      auto [norm, mad] = series.Norm(
          d->day, [](const SubscriberDay& x) { return static_cast<double>(x.overage_minor); }, any);
      if (d->overage_minor - norm >=
          std::max(o.overage_mads * mad, static_cast<double>(o.overage_min_minor))) {
        overage.push_back({d->day, d->overage_minor, static_cast<int64_t>(std::llround(norm)),
                           static_cast<double>(d->overage_minor), norm, ""});
      }
    }
  }
  Merge(first->subscriber_id, "premium_sms", premium, o, out);
  Merge(first->subscriber_id, "overage", overage, o, out);
}

std::string_view LabelOf(std::string_view cause) {
  if (cause == "roaming") return "roaming_bill_shock";
  if (cause == "premium_sms") return "premium_sms_fraud";
  if (cause == "double_charge") return "double_charge";
  return "";
}

}  // namespace

std::vector<ChargeFlag> DetectFlags(const std::vector<SubscriberDay>& days,
                                    const std::vector<DuplicateUsage>& duplicates,
                                    const AnomalyOptions& options) {
  std::vector<ChargeFlag> flags;
  for (size_t i = 0; i < days.size();) {
    size_t j = i;
    while (j < days.size() && days[j].subscriber_id == days[i].subscriber_id) ++j;
    DetectSubscriber(days.data() + i, days.data() + j, options, &flags);
    i = j;
  }
  for (const DuplicateUsage& d : duplicates) {
    ChargeFlag f;
    f.subscriber_id = d.subscriber_id;
    f.cause = "double_charge";
    f.start = f.end = d.ts;
    f.days = 1;
    f.charge_minor = d.charged_minor;
    f.original_event_id = d.first_event_id;
    f.event_id = d.last_event_id;
    f.reason = "The " + d.kind + " record of " + FormatTimestamp(d.ts) + " (session " +
               d.session_ref + ") was billed " + std::to_string(d.copies) +
               " times; those copies were charged " + MoneyText(d.charged_minor) + " together.";
    flags.push_back(std::move(f));
  }
  std::stable_sort(flags.begin(), flags.end(), [](const ChargeFlag& a, const ChargeFlag& b) {
    return std::tie(a.subscriber_id, a.start.micros) < std::tie(b.subscriber_id, b.start.micros);
  });
  return flags;
}

Result<std::vector<SubscriberDay>> ReadSubscriberDays(MetricsEngine& engine,
                                                      const AnomalyOptions& options,
                                                      const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(
      MetricsResult r,
      engine.RunAnalysis(SubscriberDaysAnalysis(options.range, options.subscriber), scope));
  std::vector<SubscriberDay> days;
  days.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    SubscriberDay d;
    d.subscriber_id = CellInt(row[0]);
    TALLY_ASSIGN_OR_RETURN(Timestamp day, CellTime(row[1]));
    d.day = day.date();
    d.home_mb = CellDouble(row[2]);
    d.roaming_mb = CellDouble(row[3]);
    d.home_sessions = CellInt(row[4]);
    d.roaming_sessions = CellInt(row[5]);
    d.roaming_records = CellInt(row[6]);
    d.roaming_country = row[7].value_or("");
    d.premium_sms = CellInt(row[8]);
    d.overage_minor = CellInt(row[9]);
    d.roaming_minor = CellInt(row[10]);
    d.premium_minor = CellInt(row[11]);
    days.push_back(std::move(d));
  }
  return days;
}

Result<std::vector<DuplicateUsage>> ReadDuplicateUsage(MetricsEngine& engine,
                                                       const AnomalyOptions& options,
                                                       const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(
      MetricsResult r,
      engine.RunAnalysis(DuplicateUsageAnalysis(options.range, options.subscriber), scope));
  std::vector<DuplicateUsage> dups;
  for (const auto& row : r.rows) {
    DuplicateUsage d;
    d.subscriber_id = CellInt(row[0]);
    TALLY_ASSIGN_OR_RETURN(d.ts, CellTime(row[1]));
    d.kind = row[2].value_or("");
    d.session_ref = row[3].value_or("");
    d.copies = CellInt(row[4]);
    d.first_event_id = row[5].value_or("");
    d.last_event_id = row[6].value_or("");
    d.charged_minor = CellInt(row[7]);
    dups.push_back(std::move(d));
  }
  return dups;
}

Result<AnomalyReport> DetectAnomalies(MetricsEngine& engine, const AnomalyOptions& options,
                                      const SecurityScope& scope) {
  if (!(options.roaming_data_ratio > 0) || !(options.roaming_careful_share > 0)) {
    return Status::InvalidArgument("roaming_data_ratio, roaming_careful_share: must be > 0");
  }
  if (!(options.roaming_alpha > 0 && options.roaming_alpha <= 1)) {
    return Status::InvalidArgument("roaming_alpha: must be in (0, 1]");
  }
  if (options.seasonal_weeks < 1 || options.lookback_days < 1 || options.merge_gap_days < 1) {
    return Status::InvalidArgument("seasonal_weeks, lookback_days, merge_gap_days: must be >= 1");
  }
  TALLY_ASSIGN_OR_RETURN(std::vector<SubscriberDay> days,
                         ReadSubscriberDays(engine, options, scope));
  TALLY_ASSIGN_OR_RETURN(std::vector<DuplicateUsage> dups,
                         ReadDuplicateUsage(engine, options, scope));
  AnomalyReport report;
  report.options = options;
  report.flags = DetectFlags(days, dups, options);
  for (size_t i = 0; i < days.size(); ++i) {
    if (i == 0 || days[i].subscriber_id != days[i - 1].subscriber_id) ++report.subscribers;
  }
  report.source = "events:usage,charge";
  return report;
}

std::vector<DetectionScore> ScoreFlags(const std::vector<ChargeFlag>& flags,
                                       const std::vector<AnomalyTruth>& truth) {
  std::vector<DetectionScore> out;
  for (std::string_view kind : {"roaming_bill_shock", "premium_sms_fraud", "double_charge"}) {
    DetectionScore s;
    s.kind = std::string(kind);
    std::multimap<int64_t, const AnomalyTruth*> labels;
    for (const AnomalyTruth& t : truth) {
      if (t.kind != kind) continue;
      labels.emplace(t.subscriber_id.value(), &t);
      ++s.labelled;
    }
    std::map<const AnomalyTruth*, bool> found;
    for (const ChargeFlag& f : flags) {
      if (LabelOf(f.cause) != kind) continue;
      ++s.flagged;
      bool correct = false;
      auto [lo, hi] = labels.equal_range(f.subscriber_id);
      for (auto it = lo; it != hi; ++it) {
        const AnomalyTruth& t = *it->second;
        const bool overlap =
            f.cause == "double_charge"
                ? std::llabs(f.start.micros - t.start_ts.micros) <= 1000000
                : f.start.micros <= t.end_ts.micros && t.start_ts.micros < f.end.micros;
        if (overlap) {
          correct = true;
          found[&t] = true;
        }
      }
      if (correct) ++s.flags_correct;
    }
    s.labels_found = static_cast<int64_t>(found.size());
    s.precision = s.flagged ? static_cast<double>(s.flags_correct) / s.flagged : 1;
    s.recall = s.labelled ? static_cast<double>(s.labels_found) / s.labelled : 1;
    out.push_back(s);
  }
  return out;
}

std::string AnomalyReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("subscribers");
  j.w.Int64(subscribers);
  j.Key("flags");
  j.w.StartArray();
  for (const ChargeFlag& f : flags) {
    j.w.StartObject();
    j.Key("subscriber_id");
    j.w.Int64(f.subscriber_id);
    j.Key("cause");
    j.String(f.cause);
    j.Key("start");
    j.String(FormatTimestamp(f.start));
    j.Key("end");
    j.String(FormatTimestamp(f.end));
    j.Key("days");
    j.w.Int(f.days);
    j.Key("charge_minor");
    j.w.Int64(f.charge_minor);
    j.Key("expected_minor");
    j.w.Int64(f.expected_minor);
    j.Key("reason");
    j.String(f.reason);
    if (f.country) {
      j.Key("country");
      j.String(*f.country);
    }
    if (f.event_id) {
      j.Key("event_id");
      j.String(*f.event_id);
      j.Key("original_event_id");
      j.String(f.original_event_id.value_or(""));
    }
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("source");
  j.String(source);
  j.w.EndObject();
  return j.Take();
}

std::string AnomalyReport::ToCsv() const {
  CsvOut c;
  c.Header({"subscriber_id", "cause", "start", "end", "days", "charge_minor", "expected_minor",
            "country", "event_id", "original_event_id", "reason"});
  for (const ChargeFlag& f : flags) {
    c.Field(std::to_string(f.subscriber_id));
    c.Field(f.cause);
    c.Field(FormatTimestamp(f.start));
    c.Field(FormatTimestamp(f.end));
    c.Field(std::to_string(f.days));
    c.Field(std::to_string(f.charge_minor));
    c.Field(std::to_string(f.expected_minor));
    c.Field(f.country.value_or(""));
    c.Field(f.event_id.value_or(""));
    c.Field(f.original_event_id.value_or(""));
    c.Field(f.reason);
    c.EndRow();
  }
  return c.Take();
}

}  // namespace tally
