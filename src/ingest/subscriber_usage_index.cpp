#include "ingest/subscriber_usage_index.h"

#include <algorithm>
#include <mutex>
#include <string>

namespace tally {

SubscriberDayUsage& SubscriberDayUsage::operator+=(const SubscriberDayUsage& o) {
  usage_events += o.usage_events;
  sms += o.sms;
  roaming_usage += o.roaming_usage;
  recharges += o.recharges;
  voice_seconds += o.voice_seconds;
  data_bytes += o.data_bytes;
  recharge_minor += o.recharge_minor;
  charge_minor += o.charge_minor;
  return *this;
}

bool SubscriberDayUsage::zero() const {
  return usage_events == 0 && sms == 0 && roaming_usage == 0 && recharges == 0 &&
         voice_seconds == 0 && data_bytes == 0 && recharge_minor == 0 && charge_minor == 0;
}

namespace {

SubscriberDayUsage FromMeasures(int32_t day, const Measures& m) {
  SubscriberDayUsage u;
  u.day = day;
  u.usage_events = static_cast<int32_t>(m[Measure::k_usage_events]);
  u.sms = static_cast<int32_t>(m[Measure::k_sms]);
  u.roaming_usage = static_cast<int32_t>(m[Measure::k_roaming_usage]);
  u.recharges = static_cast<int32_t>(m[Measure::k_recharges]);
  u.voice_seconds = m[Measure::k_voice_seconds];
  u.data_bytes = m[Measure::k_data_bytes];
  u.recharge_minor = m[Measure::k_recharge_minor];
  u.charge_minor = m[Measure::k_charge_minor];
  return u;
}

int64_t Int(const std::optional<std::string>& v) {
  return v ? std::stoll(*v) : 0;
}

}  // namespace

void SubscriberUsageIndex::AddLocked(int64_t subscriber, const SubscriberDayUsage& u) {
  if (u.day < first_day_) return;
  std::vector<SubscriberDayUsage>& days = map_[subscriber];
  auto it = std::lower_bound(days.begin(), days.end(), u.day,
                             [](const SubscriberDayUsage& d, int32_t day) { return d.day < day; });
  if (it != days.end() && it->day == u.day) {
    *it += u;
  } else {
    days.insert(it, u);
    ++rows_;
  }
}

Status SubscriberUsageIndex::Load(EventStore& store) {
  TALLY_ASSIGN_OR_RETURN(
      TextTable bounds,
      store.Query("SELECT min(subscriber_id), max(subscriber_id), CAST(max(day) AS VARCHAR), "
                  "count(*) FROM " + store.TableSql("rollup_subscriber_day") + " r"));
  std::unique_lock lock(mu_);
  map_.clear();
  rows_ = 0;
  // An empty table: NULLs in DuckDB, zeros (and day 0000-00-00) in ClickHouse; count says.
  if (bounds.rows.empty() || !bounds.rows[0][0] || bounds.rows[0][3].value_or("0") == "0") {
    first_day_ = INT32_MIN;
    return Status::Ok();
  }
  const int64_t lo = Int(bounds.rows[0][0]), hi = Int(bounds.rows[0][1]);
  TALLY_ASSIGN_OR_RETURN(Date newest, ParseDate(*bounds.rows[0][2]));
  newest_day_ = newest.days;
  first_day_ = newest.days - keep_days_ + 1;
  constexpr int64_t kPage = 50'000;  // subscriber ids per query: bounded memory per page
  for (int64_t from = lo; from <= hi; from += kPage) {
    TALLY_ASSIGN_OR_RETURN(
        TextTable t,
        store.Query("SELECT subscriber_id, CAST(day AS VARCHAR), usage_events, sms, roaming_usage, "
                    "recharges, voice_seconds, data_bytes, recharge_minor, charge_minor FROM " +
                        store.TableSql("rollup_subscriber_day") +
                        " r WHERE subscriber_id >= ? AND subscriber_id < ? AND day >= ?",
                    {from, from + kPage, Date{first_day_}}));
    for (const auto& r : t.rows) {
      TALLY_ASSIGN_OR_RETURN(Date day, ParseDate(r[1].value_or("")));
      SubscriberDayUsage u;
      u.day = day.days;
      u.usage_events = static_cast<int32_t>(Int(r[2]));
      u.sms = static_cast<int32_t>(Int(r[3]));
      u.roaming_usage = static_cast<int32_t>(Int(r[4]));
      u.recharges = static_cast<int32_t>(Int(r[5]));
      u.voice_seconds = Int(r[6]);
      u.data_bytes = Int(r[7]);
      u.recharge_minor = Int(r[8]);
      u.charge_minor = Int(r[9]);
      AddLocked(Int(r[0]), u);
    }
  }
  return Status::Ok();
}

void SubscriberUsageIndex::Apply(const std::vector<SubscriberDayRow>& rows) {
  if (rows.empty()) return;
  std::unique_lock lock(mu_);
  for (const SubscriberDayRow& r : rows) newest_day_ = std::max(newest_day_, r.day.days);
  // The window follows the newest day: days that fall out of it are dropped (once a day).
  if (newest_day_ - keep_days_ + 1 > first_day_) DropBeforeLocked(newest_day_ - keep_days_ + 1);
  for (const SubscriberDayRow& r : rows) {
    AddLocked(r.subscriber_id.value(), FromMeasures(r.day.days, r.m));
  }
}

void SubscriberUsageIndex::DropBefore(Date cutoff) {
  std::unique_lock lock(mu_);
  DropBeforeLocked(cutoff.days);
}

void SubscriberUsageIndex::DropBeforeLocked(int32_t cutoff) {
  first_day_ = std::max(first_day_, cutoff);
  for (auto it = map_.begin(); it != map_.end();) {
    auto& days = it->second;
    const auto keep =
        std::lower_bound(days.begin(), days.end(), first_day_,
                         [](const SubscriberDayUsage& d, int32_t day) { return d.day < day; });
    rows_ -= static_cast<size_t>(keep - days.begin());
    days.erase(days.begin(), keep);
    it = days.empty() ? map_.erase(it) : std::next(it);
  }
}

std::vector<SubscriberDayUsage> SubscriberUsageIndex::Days(SubscriberId id, Date from,
                                                           Date to) const {
  std::shared_lock lock(mu_);
  auto it = map_.find(id.value());
  if (it == map_.end()) return {};
  const auto& days = it->second;
  auto lo = std::lower_bound(days.begin(), days.end(), from.days,
                             [](const SubscriberDayUsage& d, int32_t day) { return d.day < day; });
  std::vector<SubscriberDayUsage> out;
  for (; lo != days.end() && lo->day <= to.days; ++lo) out.push_back(*lo);
  return out;
}

Date SubscriberUsageIndex::first_day() const {
  std::shared_lock lock(mu_);
  return Date{first_day_};
}

size_t SubscriberUsageIndex::day_rows() const {
  std::shared_lock lock(mu_);
  return rows_;
}

}  // namespace tally
