#pragma once
// What arrived in each of the last minutes, second by second: the live side of the real-time
// dashboard. The ingest pipeline publishes every durable commit's counters (the same measures
// as the rollups, store/rollup.h), per partner, under the wall-clock second of the commit; the
// live stream (api/live_api.h) reads them back. In a live feed, events arrive within moments of
// their time, so per-second arrival counts are per-second activity; a bulk load of history shows
// up as one burst.

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/ids.h"
#include "core/time.h"
#include "store/rollup.h"

namespace tally {

//! The counters of one wall-clock second.
struct LiveSecond {
  int64_t second = 0;  // Unix seconds
  Measures m;
  int64_t rows = 0;  // events accepted (all partners; not kept per partner)
};

class LiveFeed {
 public:
  //! Seconds kept: older ones are overwritten.
  static constexpr int64_t kSeconds = 900;

  //! Adds one commit's rollup delta (its 5-minute segment rows, summed per partner) and its
  //! accepted event count to the second of `wall`. Thread-safe.
  void Publish(Timestamp wall, const RollupDelta& delta, int64_t rows);

  //! Seconds [from, to) (Unix seconds, at most kSeconds back), oldest first, one entry per
  //! second (zeros where nothing arrived). With `partner`, only that partner's counters and
  //! rows = -1 (unknown per partner). Thread-safe.
  std::vector<LiveSecond> Range(int64_t from, int64_t to, std::optional<PartnerId> partner) const;

 private:
  struct Slot {
    int64_t second = -1;
    Measures total;
    int64_t rows = 0;
    std::unordered_map<int64_t, Measures> by_partner;
  };
  mutable std::mutex mu_;
  std::array<Slot, kSeconds> slots_;
};

}  // namespace tally
