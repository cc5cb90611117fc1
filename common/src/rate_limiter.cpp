#include "edgeprune/common/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace edgeprune {

RateLimiter::RateLimiter(int per_minute, int burst, std::size_t max_keys)
    : per_second_(std::max(0, per_minute) / 60.0),
      burst_(std::max(1, burst)),
      max_keys_(std::max<std::size_t>(1, max_keys)) {}

std::int64_t RateLimiter::Take(const std::string& key) {
  return Take(key, std::chrono::steady_clock::now());
}

std::int64_t RateLimiter::Take(const std::string& key, std::chrono::steady_clock::time_point now) {
  if (per_second_ <= 0) return 0;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) Prune(now);
    it = buckets_.emplace(key, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * per_second_);
  b.updated = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / per_second_)));
}

void RateLimiter::Prune(std::chrono::steady_clock::time_point now) {
  std::erase_if(buckets_, [&](const auto& kv) {
    const double elapsed = std::chrono::duration<double>(now - kv.second.updated).count();
    return kv.second.tokens + elapsed * per_second_ >= burst_;
  });
  if (buckets_.size() < max_keys_) return;
  std::vector<std::chrono::steady_clock::time_point> times;
  times.reserve(buckets_.size());
  for (const auto& kv : buckets_) times.push_back(kv.second.updated);
  auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), mid, times.end());
  const auto cutoff = *mid;
  std::erase_if(buckets_, [&](const auto& kv) { return kv.second.updated <= cutoff; });
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace edgeprune
