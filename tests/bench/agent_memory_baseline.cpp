// The baseline of the agent memory benchmark (tests/bench/agent_memory.cpp): "the loaded model"
// and nothing else. It links LibTorch only, loads one TorchScript variant with
// torch::jit::load, runs warm-up forwards and then N batch-1 forwards with one intra-op thread,
// like the agent serving that variant, and prints its own memory from /proc/self/status:
//   baseline rss_kb=<n> anon_kb=<n> file_kb=<n> hwm_kb=<n>
//
// usage: agent_memory_baseline <variant.pt> <forwards> [C H W]   (default input 1 28 28)
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/proc_stats.hpp"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 6) {
    std::fprintf(stderr, "usage: %s <variant.pt> <forwards> [C H W]\n", argv[0]);
    return 2;
  }
  const int forwards = std::atoi(argv[2]);
  std::vector<std::int64_t> shape = {1, 1, 28, 28};
  if (argc == 6) shape = {1, std::atoll(argv[3]), std::atoll(argv[4]), std::atoll(argv[5])};
  at::set_num_threads(1);
  try {
    auto module = torch::jit::load(argv[1], at::kCPU);
    module.eval();
    c10::InferenceMode guard;
    auto input = torch::full(shape, 0.5f);
    for (int i = 0; i < 3; ++i) (void)module.forward({input});
    float sink = 0.0f;
    for (int i = 0; i < forwards; ++i) sink += module.forward({input}).toTensor()[0][0].item<float>();
    if (sink == 12345.678f) std::printf("(unlikely)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baseline: %s\n", e.what());
    return 1;
  }
  const pid_t self = getpid();
  using edgeprune::bench::ProcStatusKb;
  std::printf("baseline rss_kb=%ld anon_kb=%ld file_kb=%ld hwm_kb=%ld\n",
              ProcStatusKb(self, "VmRSS:"), ProcStatusKb(self, "RssAnon:"),
              ProcStatusKb(self, "RssFile:"), ProcStatusKb(self, "VmHWM:"));
  return 0;
}
