#include "ingest/dedup_index.h"

#include <algorithm>

namespace tally {

bool DedupIndex::InWindow(Date day) const {
  if (!watermark_) return true;
  return day >= Timestamp{watermark_->micros - options_.window_micros}.date();
}

size_t DedupIndex::pinned_bytes() const {
  size_t n = 0;
  for (const auto& [key, d] : days_) {
    if (d.pinned) n += d.set.memory_bytes();
  }
  return n;
}

Status DedupIndex::Preload(EventFamily family, const std::vector<Date>& days) {
  std::vector<Date> missing;
  for (Date d : days) {
    if (!days_.count(Key(family, d))) missing.push_back(d);
  }
  if (missing.empty()) return Status::Ok();
  std::vector<std::pair<Date, std::string>> stored;
  TALLY_RETURN_IF_ERROR(store_->StoredIds(family, missing, &stored));
  std::unordered_map<int32_t, FingerprintSet> sets;
  for (const auto& [day, id] : stored) sets[day.days].Insert(FingerprintOf(id));
  for (Date d : missing) {
    const uint64_t key = Key(family, d);
    DaySet& ds = days_[key];
    if (auto it = sets.find(d.days); it != sets.end()) ds.set = std::move(it->second);
    ds.pinned = InWindow(d);
    if (!ds.pinned) {
      ds.lru = lru_.insert(lru_.end(), key);
      cached_bytes_ += ds.set.memory_bytes();
    }
  }
  return Status::Ok();
}

DedupIndex::DaySet* DedupIndex::Day(EventFamily family, Date day) {
  auto it = days_.find(Key(family, day));
  if (it == days_.end()) return nullptr;
  DaySet& d = it->second;
  if (!d.pinned) lru_.splice(lru_.end(), lru_, d.lru);  // most recently used last
  return &d;
}

Status DedupIndex::Classify(EventFamily family, const std::vector<std::string_view>& ids,
                            const std::vector<Timestamp>& ts, std::optional<Timestamp> reference,
                            FingerprintSet* pending, std::vector<Admission>* out) {
  out->assign(ids.size(), Admission::kNew);
  // Admitted ids go to `pending` only once the whole call succeeded, so a failed call leaves the
  // group's state as it was.
  FingerprintSet admitted;
  admitted.Reserve(ids.size());
  // Days before this one are late; INT32_MIN when there is no reference (nothing is late).
  const Date late_before = reference ? Timestamp{reference->micros - options_.window_micros}.date() : Date{INT32_MIN};
  {
    std::vector<Date> days;
    for (const Timestamp& t : ts) {
      if (days.empty() || days.back() != t.date()) days.push_back(t.date());
    }
    std::sort(days.begin(), days.end());
    days.erase(std::unique(days.begin(), days.end()), days.end());
    TALLY_RETURN_IF_ERROR(Preload(family, days));
  }
  DaySet* last = nullptr;
  Date last_day{INT32_MIN};
  for (size_t i = 0; i < ids.size(); ++i) {
    const Fingerprint fp = FingerprintOf(ids[i]);
    if (pending->Contains(fp) || admitted.Contains(fp)) {
      (*out)[i] = Admission::kDuplicate;
      continue;
    }
    const Date day = ts[i].date();
    if (!last || day != last_day) {
      last = Day(family, day);
      last_day = day;
    }
    if (last->set.Contains(fp)) {
      (*out)[i] = Admission::kDuplicate;
      continue;
    }
    admitted.Insert(fp);
    if (day < late_before) (*out)[i] = Admission::kNewLate;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if ((*out)[i] != Admission::kDuplicate) pending->Insert(FingerprintOf(ids[i]));
  }
  return Status::Ok();
}

void DedupIndex::Remember(EventFamily family, const std::vector<std::string_view>& ids,
                          const std::vector<Timestamp>& ts, std::optional<Timestamp> watermark) {
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = days_.find(Key(family, ts[i].date()));
    if (it == days_.end()) continue;  // evicted meanwhile; it is rebuilt from the store on demand
    DaySet& d = it->second;
    if (d.pinned) {
      d.set.Insert(FingerprintOf(ids[i]));
    } else {
      cached_bytes_ -= d.set.memory_bytes();
      d.set.Insert(FingerprintOf(ids[i]));
      cached_bytes_ += d.set.memory_bytes();
    }
  }
  if (watermark && (!watermark_ || *watermark > *watermark_)) {
    watermark_ = watermark;
    for (auto& [key, d] : days_) {
      if (d.pinned && !InWindow(Date{static_cast<int32_t>(static_cast<uint32_t>(key))})) {
        d.pinned = false;
        d.lru = lru_.insert(lru_.end(), key);
        cached_bytes_ += d.set.memory_bytes();
      }
    }
  }
  Evict();
}

void DedupIndex::Evict() {
  while (cached_bytes_ > options_.memory_budget_bytes && !lru_.empty()) {
    auto it = days_.find(lru_.front());
    lru_.pop_front();
    if (it == days_.end()) continue;
    cached_bytes_ -= it->second.set.memory_bytes();
    days_.erase(it);
  }
}

}  // namespace tally
