#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace tally {

namespace {

double Seconds(RateLimiter::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Result<std::unique_ptr<RateLimiter>> RateLimiter::Create(Options options) {
  if (!(options.rate_per_second > 0) || !std::isfinite(options.rate_per_second)) {
    return Status::InvalidArgument("rate limit: rate per second must be more than 0, not " +
                                   std::to_string(options.rate_per_second));
  }
  if (!(options.burst >= 1) || !std::isfinite(options.burst)) {
    return Status::InvalidArgument("rate limit: burst must be 1 or more, not " +
                                   std::to_string(options.burst));
  }
  if (options.idle_after.count() < 0) {
    return Status::InvalidArgument("rate limit: idle eviction time must not be negative");
  }
  return std::unique_ptr<RateLimiter>(new RateLimiter(options));
}

RateLimiter::Decision RateLimiter::Take(std::string_view key, Clock::time_point now) {
  Shard& shard = shards_[StringHash()(key) % kShards];
  std::lock_guard lock(shard.mu);
  if (now - shard.last_sweep >= options_.idle_after) SweepLocked(shard, now);

  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    it = shard.buckets.emplace(std::string(key), Bucket{options_.burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.last) {
    b.tokens =
        std::min(options_.burst, b.tokens + Seconds(now - b.last) * options_.rate_per_second);
    b.last = now;
  }
  Decision d;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    d.allowed = true;
    d.remaining = static_cast<int64_t>(std::floor(b.tokens));
    return d;
  }
  d.allowed = false;
  const double wait = (1 - b.tokens) / options_.rate_per_second;
  d.retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait)));
  d.remaining = 0;
  return d;
}

void RateLimiter::SweepLocked(Shard& shard, Clock::time_point now) {
  shard.last_sweep = now;
  const double refill_s = options_.burst / options_.rate_per_second;
  const double idle_s = std::max(refill_s, Seconds(options_.idle_after));
  std::erase_if(shard.buckets,
                [&](const auto& entry) { return Seconds(now - entry.second.last) >= idle_s; });
}

size_t RateLimiter::BucketCount() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace tally
