#include "agent/torch/microbench.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace edgeprune::agent::torch_module {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Runs fn at least min_iters times and until budget has elapsed; returns seconds per call.
template <typename Fn>
double TimePerCall(Fn&& fn, std::chrono::milliseconds budget, int min_iters) {
  fn();  // warm-up: allocation and kernel selection
  const auto start = Clock::now();
  int iters = 0;
  while (iters < min_iters || Clock::now() - start < budget) {
    fn();
    ++iters;
  }
  return Seconds(Clock::now() - start) / iters;
}

// Median of single-call latencies: the per-inference overhead a tiny model pays.
template <typename Fn>
double MedianCallSeconds(Fn&& fn, std::chrono::milliseconds budget) {
  fn();
  std::vector<double> samples;
  const auto start = Clock::now();
  while (samples.size() < 5 || (Clock::now() - start < budget && samples.size() < 10000)) {
    auto t0 = Clock::now();
    fn();
    samples.push_back(Seconds(Clock::now() - t0));
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

Result<wire::Microbench> RunAll(const MicrobenchOptions& options) {
  try {
    c10::InferenceMode guard;
    const int threads = static_cast<int>(std::max<std::int64_t>(1, options.threads));
    at::set_num_threads(threads);
    const auto slice = std::chrono::milliseconds(std::max<std::int64_t>(20, options.total_ms / 4));

    wire::Microbench out;
    out.threads = threads;

    constexpr std::int64_t n = 256;
    auto a = at::randn({n, n});
    auto b = at::randn({n, n});
    double mm_s = TimePerCall([&] { (void)at::mm(a, b); }, slice, 3);
    out.matmul_gflops = 2.0 * n * n * n / mm_s / 1e9;

    constexpr std::int64_t c = 32, hw = 56;
    auto x = at::randn({1, c, hw, hw});
    auto w = at::randn({c, c, 3, 3});
    double conv_s = TimePerCall([&] { (void)at::conv2d(x, w, {}, 1, 1); }, slice, 3);
    out.conv_gmacs_per_s = static_cast<double>(hw * hw * c * c * 9) / conv_s / 1e9;

    auto tiny_x = at::randn({1, 1, 4, 4});
    auto tiny_w = at::randn({1, 1, 1, 1});
    double tiny_s = MedianCallSeconds([&] { (void)at::conv2d(tiny_x, tiny_w); }, slice / 2);
    out.conv_overhead_ms = tiny_s * 1e3;

    // 2 × 32 MiB: a 64 MiB working set, twice the 32 MiB L3 of our x86 build machine and far
    // past an edge gateway's caches; it reads the same bandwidth as 2 × 64 MiB did there, and
    // the agent's peak RSS is 64 MiB lower.
    constexpr std::int64_t floats = 8 * 1024 * 1024;
    auto src = at::rand({floats});
    auto dst = at::empty({floats});
    double copy_s = TimePerCall([&] { dst.copy_(src); }, slice, 2);
    out.mem_bandwidth_gbps = 2.0 * floats * sizeof(float) / copy_s / 1e9;
    return out;
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "microbench_failed",
                     std::string("LibTorch microbenchmark failed: ") + e.what());
  }
}

}  // namespace

Result<wire::Microbench> RunMicrobench(const MicrobenchOptions& options) {
  auto out = RunAll(options);  // every benchmark tensor is freed when it returns
  // Whoever called us may live on (a test, a long-running process): hand the freed heap pages
  // back to the OS now instead of keeping them resident.
  malloc_trim(0);
  return out;
}

std::string TorchVersion() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace edgeprune::agent::torch_module
