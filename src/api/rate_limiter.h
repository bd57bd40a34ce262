#pragma once
// Per-key rate limits: one token bucket per key (an API key id, a token's scope, a client
// address), so one noisy caller is answered 429 with Retry-After while the others keep their SLA.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace tally {

//! Token buckets keyed by string. A bucket holds up to `burst` tokens and refills at
//! `rate_per_second`; each request takes one. A new key starts with a full bucket.
//!
//! Time is passed in (a steady clock in production, a fake one in tests), so the limiter never
//! reads a clock itself.
//!
//! Memory: a bucket left alone until it has refilled completely is indistinguishable from a new
//! one, so it is dropped. Each shard sweeps its idle buckets at most once per `idle_after`, so
//! memory is bounded by the number of keys active within about twice that time.
//!
//! Thread safety: Take may be called concurrently; keys are spread over mutex-protected shards.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    double rate_per_second = 100;  // sustained requests per second per key
    double burst = 200;            // requests a rested key may make at once
    //! A bucket unused this long (and at least until it would be full again) is evicted.
    std::chrono::seconds idle_after{60};
  };

  //! The verdict on one request.
  struct Decision {
    bool allowed = true;
    //! When refused: whole seconds until a token is available (rounded up, at least 1), for the
    //! Retry-After header. 0 when allowed.
    int64_t retry_after_s = 0;
    //! Tokens left after this request (rounded down), for an X-RateLimit-Remaining header.
    int64_t remaining = 0;
  };

  //! InvalidArgument unless rate > 0, burst >= 1 and idle_after >= 0.
  static Result<std::unique_ptr<RateLimiter>> Create(Options options);

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  //! Takes one token from `key`'s bucket at time `now`. Times earlier than a bucket's last use
  //! (threads racing) count as no time passing.
  Decision Take(std::string_view key, Clock::time_point now);

  //! Buckets currently held (for tests and metrics).
  size_t BucketCount() const;

  const Options& options() const { return options_; }

 private:
  explicit RateLimiter(Options options) : options_(options) {}

  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket, StringHash, std::equal_to<>> buckets;
    Clock::time_point last_sweep;
  };
  static constexpr size_t kShards = 16;

  void SweepLocked(Shard& shard, Clock::time_point now);

  Options options_;
  std::array<Shard, kShards> shards_;
};

}  // namespace tally
