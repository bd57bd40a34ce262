#pragma once
// A compact open-addressing set of 128-bit fingerprints of event ids.
//
// The dedup index holds millions of ids per day; std::unordered_set<std::string> would spend
// ~80 bytes and an allocation on each. A 128-bit XXH3 fingerprint is 16 bytes in a flat table,
// and two distinct ids collide with probability ~n^2 / 2^129: for 10^10 ids, about 10^-19.

#include <xxhash.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace tally {

//! 128-bit fingerprint of an event id; never all zero (zero marks an empty slot).
struct Fingerprint {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

inline Fingerprint FingerprintOf(std::string_view id) {
  XXH128_hash_t h = XXH3_128bits(id.data(), id.size());
  Fingerprint f{h.low64, h.high64};
  if (f.lo == 0 && f.hi == 0) f.lo = 1;
  return f;
}

//! Set of fingerprints with linear probing; grows at 70% load. Not thread-safe.
class FingerprintSet {
 public:
  bool Contains(Fingerprint f) const {
    if (slots_.empty()) return false;
    for (size_t i = f.lo & mask_;; i = (i + 1) & mask_) {
      const Fingerprint& s = slots_[i];
      if (s == f) return true;
      if (s.lo == 0 && s.hi == 0) return false;
    }
  }
  //! Adds f; returns false when it was already present.
  bool Insert(Fingerprint f) {
    if ((size_ + 1) * 10 > slots_.size() * 7) Grow();
    for (size_t i = f.lo & mask_;; i = (i + 1) & mask_) {
      Fingerprint& s = slots_[i];
      if (s == f) return false;
      if (s.lo == 0 && s.hi == 0) {
        s = f;
        ++size_;
        return true;
      }
    }
  }
  size_t size() const { return size_; }
  size_t memory_bytes() const { return slots_.size() * sizeof(Fingerprint); }
  void Reserve(size_t n) {
    while (n * 10 > slots_.size() * 7) Grow();
  }

 private:
  void Grow() {
    std::vector<Fingerprint> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Fingerprint{});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Fingerprint& f : old) {
      if (f.lo != 0 || f.hi != 0) Insert(f);
    }
  }
  std::vector<Fingerprint> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tally
