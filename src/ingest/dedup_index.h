#pragma once
// Exactly-once admission of events by event id.
//
// The index keeps, per family and UTC day of `ts`, the fingerprints of every stored event id of
// that day. A day's set is built from the store the first time the day is touched (so the index is
// exact across restarts: stored rows are the truth), then kept current as batches commit.
//
// Days inside the dedup window (the last `window` before the watermark, the newest event time
// stored) are pinned in memory. Older days are "late": an event for such a day takes the late
// path, where the day's set is loaded from storage if it is not cached, and cached days beyond the
// memory budget are evicted, oldest use first, to be rebuilt on demand. Either way a
// redelivered id is recognised; late events are only reported as such, never double counted.
//
// Protocol per batch: Classify() (no side effects), store the rows, then Remember() the ones
// that were committed. A failed commit simply skips Remember().

#include <cstdint>
#include <list>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "ingest/fingerprint_set.h"
#include "model/enums.h"
#include "store/event_store.h"

namespace tally {

struct DedupOptions {
  int64_t window_micros = 7 * kMicrosPerDay;  // default 7 days
  size_t memory_budget_bytes = size_t{1} << 30;  // for days outside the window
};

//! What to do with one row.
enum class Admission : uint8_t { kNew, kNewLate, kDuplicate };

//! The dedup index of one data directory. Not thread-safe: owned by the ingest writer.
class DedupIndex {
 public:
  DedupIndex(EventStore* store, DedupOptions options)
      : store_(store), options_(options), watermark_(store->Watermark()) {}

  //! Decides, for each (id, ts) of one family, whether it is new, new but late (older than the
  //! window before `reference` — the watermark when the load began), or a duplicate of a stored
  //! row or of an id in `pending` (the ids of this family admitted earlier in the same group
  //! commit; admitted ids are added to it). Loads missing day sets from the store.
  Status Classify(EventFamily family, const std::vector<std::string_view>& ids, const std::vector<Timestamp>& ts,
                  std::optional<Timestamp> reference, FingerprintSet* pending, std::vector<Admission>* out);

  //! Records committed ids, advances the watermark and unpins days that left the window.
  void Remember(EventFamily family, const std::vector<std::string_view>& ids, const std::vector<Timestamp>& ts,
                std::optional<Timestamp> watermark);

  //! Forgets every cached day (e.g. after retention dropped days).
  void Clear() { days_.clear(); lru_.clear(); cached_bytes_ = 0; }

  size_t memory_bytes() const { return cached_bytes_ + pinned_bytes(); }
  size_t days_cached() const { return days_.size(); }

 private:
  struct DaySet {
    FingerprintSet set;
    std::list<uint64_t>::iterator lru;
    bool pinned = false;
  };
  static uint64_t Key(EventFamily f, Date d) {
    return (uint64_t{static_cast<uint8_t>(f)} << 32) | static_cast<uint32_t>(d.days);
  }
  //! Makes sure the sets of `days` are cached, loading the missing ones in one store query.
  Status Preload(EventFamily family, const std::vector<Date>& days);
  DaySet* Day(EventFamily family, Date day);
  bool InWindow(Date day) const;
  void Evict();
  size_t pinned_bytes() const;

  EventStore* store_;
  DedupOptions options_;
  std::unordered_map<uint64_t, DaySet> days_;
  std::list<uint64_t> lru_;  // unpinned days, least recently used first
  size_t cached_bytes_ = 0;  // memory of unpinned days
  std::optional<Timestamp> watermark_;
};

}  // namespace tally
