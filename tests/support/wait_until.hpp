#pragma once
// Polls a condition until it holds or a deadline passes: the way tests wait for something another
// thread or process does, instead of sleeping a fixed time.
//
//   ASSERT_TRUE(edgeprune::testing::WaitUntil([&] { return server.requests() == 2; }));
//
// Thread-safety: the predicate runs on the calling thread; it must read shared state safely.

#include <chrono>
#include <thread>

namespace edgeprune::testing {

template <typename Predicate>
bool WaitUntil(Predicate&& done,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(10000),
               std::chrono::milliseconds interval = std::chrono::milliseconds(2)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace edgeprune::testing
