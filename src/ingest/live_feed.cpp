#include "ingest/live_feed.h"

#include <algorithm>

namespace tally {

namespace {

size_t SlotOf(int64_t second) {
  const int64_t n = LiveFeed::kSeconds;
  return static_cast<size_t>(((second % n) + n) % n);
}

}  // namespace

void LiveFeed::Publish(Timestamp wall, const RollupDelta& delta, int64_t rows) {
  const int64_t second = wall.seconds();
  // Summed per partner outside the lock; a commit has a few hundred segment rows at most.
  std::unordered_map<int64_t, Measures> by_partner;
  Measures total;
  for (const SegmentRow& r : delta.segment_5m) {
    by_partner[r.partner_id.value()] += r.m;
    total += r.m;
  }
  std::lock_guard lock(mu_);
  Slot& slot = slots_[SlotOf(second)];
  if (slot.second != second) slot = Slot{second, Measures{}, 0, {}};
  slot.total += total;
  slot.rows += rows;
  for (const auto& [partner, m] : by_partner) slot.by_partner[partner] += m;
}

std::vector<LiveSecond> LiveFeed::Range(int64_t from, int64_t to,
                                        std::optional<PartnerId> partner) const {
  from = std::max(from, to - kSeconds);
  std::vector<LiveSecond> out;
  if (to <= from) return out;
  out.reserve(static_cast<size_t>(to - from));
  std::lock_guard lock(mu_);
  for (int64_t s = from; s < to; ++s) {
    LiveSecond ls;
    ls.second = s;
    ls.rows = partner ? -1 : 0;
    const Slot& slot = slots_[SlotOf(s)];
    if (slot.second == s) {
      if (partner) {
        auto it = slot.by_partner.find(partner->value());
        if (it != slot.by_partner.end()) ls.m = it->second;
      } else {
        ls.m = slot.total;
        ls.rows = slot.rows;
      }
    }
    out.push_back(ls);
  }
  return out;
}

}  // namespace tally
