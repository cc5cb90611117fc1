// Agent benchmarks (not part of CI): side by side in one run, medians and ratios.
//   1. local API overhead: POST /v1/infer over loopback HTTP vs a bare ModelRuntime forward,
//      interleaved request by request on the same model (target: overhead ≤ 0.2 ms at batch 1);
//      also the forward as the API itself timed it (its latency_ms), which splits the overhead
//      into "the forward ran slower on the I/O thread" and "HTTP, parsing and the round trip",
//      and a request that does no inference (GET of an unknown path, 404) for the round trip alone
//   2. agent RSS beyond the loaded model: process RSS before the model, after loading it, and
//      after the whole serving path ran (target: ≤ 40 MB beyond the model)
//   3. hot swap under steady load: client threads hammer /v1/infer while the model is swapped
//      repeatedly; failed requests (must be 0) and latency p50/p99 steady vs during swaps
//
// usage: agent_bench [model.pt] [requests]   (default: tests/fixtures/pruning/convbn_scripted.pt)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/build_paths.hpp"
#include "bench/proc_stats.hpp"
#include "agent/local_api/local_api_server.hpp"
#include "agent/runtime/runtime.hpp"
#include "agent/telemetry/telemetry_queue.hpp"
#include "agent/telemetry/telemetry_reporter.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "local_api_client.hpp"
#include "support/temp_dir.hpp"

using namespace edgeprune;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

double RssMb() {
  const long kb = bench::ProcStatusKb(getpid(), "VmRSS:");
  return kb < 0 ? 0.0 : static_cast<double>(kb) / 1024.0;
}

using bench::LoadAverage;

// The forward time the API reports in its answer, in ms; -1 when the answer has none.
double ServedForwardMs(const std::string& body) {
  auto o = edgeprune::json::ParseObject(body);
  if (!o.ok() || !o->contains("latency_ms")) return -1.0;
  return (*o)["latency_ms"].to_number<double>();
}

std::string RawBody(const std::vector<float>& v) {
  std::string s(v.size() * sizeof(float), '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1]
                                     : edgeprune::testing::SourceDir() +
                                           "/tests/fixtures/pruning/convbn_scripted.pt";
  const int requests = argc > 2 ? std::atoi(argv[2]) : 2000;
  (void)edgeprune::log::SetLevel("warn");

  const double rss_start = RssMb();
  agent::ModelRuntime runtime(agent::RuntimeOptions{1, 5, edgeprune::testing::AgentTorchModule()});
  agent::VariantSpec spec;
  spec.variant_id = "bench-a";
  spec.path = model;
  spec.input_shape = {1, 1, 28, 28};
  spec.num_classes = 10;
  const double rss_before_model = RssMb();
  if (auto r = runtime.Install(spec, nullptr); !r.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", model.c_str(), r.error().ToString().c_str());
    return 1;
  }
  const double rss_after_model = RssMb();

  edgeprune::testing::TempDir dir("agent-bench");
  agent::TelemetryCollector collector;
  auto queue = agent::TelemetryQueue::Open(dir.File("telemetry.db"));
  auto server = agent::LocalApiServer::Start(agent::LocalApiOptions{}, runtime, collector, nullptr);
  if (!queue.ok() || !server.ok()) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  const std::uint16_t port = (*server)->port();
  std::vector<float> sample(28 * 28);
  for (std::size_t i = 0; i < sample.size(); ++i) sample[i] = static_cast<float>(i % 17) / 17.0f;
  const std::string body = RawBody(sample);
  const std::map<std::string, std::string> headers = {
      {"Content-Type", "application/octet-stream"}, {"X-Shape", "1,1,28,28"}};

  // 1. Overhead, interleaved: bare forward, then the same through the API.
  edgeprune::testing::PlainClient client(port);
  for (int i = 0; i < 200; ++i) {
    (void)runtime.Infer(sample, spec.input_shape);
    client.Send("POST", "/v1/infer", body, headers);
  }
  std::vector<double> bare, api, served, round_trip;
  int api_failures = 0;
  const std::string load_before = LoadAverage();
  for (int i = 0; i < requests; ++i) {
    auto t0 = Clock::now();
    auto r = runtime.Infer(sample, spec.input_shape);
    auto t1 = Clock::now();
    auto resp = client.Send("POST", "/v1/infer", body, headers);
    auto t2 = Clock::now();
    auto nothing = client.Send("GET", "/v1/nothing", "");
    auto t3 = Clock::now();
    if (!r.ok() || resp.status != 200 || nothing.status != 404) ++api_failures;
    bare.push_back(Ms(t1 - t0));
    api.push_back(Ms(t2 - t1));
    round_trip.push_back(Ms(t3 - t2));
    if (resp.status == 200) served.push_back(ServedForwardMs(resp.body));
  }
  const double bare_p50 = Quantile(bare, 0.5), api_p50 = Quantile(api, 0.5);
  std::printf("== local API overhead at batch 1 (%d requests each, interleaved, model %s)\n",
              requests, model.c_str());
  std::printf("  load average before %s, after %s\n", load_before.c_str(), LoadAverage().c_str());
  std::printf("  bare forward      p50 %.3f ms  p99 %.3f ms\n", bare_p50, Quantile(bare, 0.99));
  std::printf("  POST /v1/infer    p50 %.3f ms  p99 %.3f ms  (failures %d)\n", api_p50,
              Quantile(api, 0.99), api_failures);
  std::printf("    its forward, as the API timed it  p50 %.3f ms  p99 %.3f ms\n",
              Quantile(served, 0.5), Quantile(served, 0.99));
  std::printf("  GET 404, no inference  p50 %.3f ms  p99 %.3f ms  (the round trip alone)\n",
              Quantile(round_trip, 0.5), Quantile(round_trip, 0.99));
  std::printf("  overhead p50 %.3f ms, ratio api/bare %.2fx (target overhead <= 0.2 ms)\n",
              api_p50 - bare_p50, bare_p50 > 0 ? api_p50 / bare_p50 : 0.0);

  // Telemetry path once per 100 requests, as the serve state would.
  agent::TelemetryReporter reporter(collector, runtime, **queue);
  for (int i = 0; i < 10; ++i) (void)reporter.Record(i);

  // 2. RSS.
  const double rss_serving = RssMb();
  const double model_mb = rss_after_model - rss_before_model;
  std::printf("== agent RSS\n");
  std::printf("  process start %.1f MB, before model %.1f MB, after model %.1f MB (model %.1f MB), "
              "serving %.1f MB\n",
              rss_start, rss_before_model, rss_after_model, model_mb, rss_serving);
  std::printf("  RSS beyond the loaded model: %.1f MB (target <= 40 MB)\n", rss_serving - model_mb);

  // 3. Hot swap under steady load.
  std::atomic<bool> stop{false};
  std::atomic<bool> swapping{false};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<double> steady, during;
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&] {
      edgeprune::testing::PlainClient c(port);
      std::vector<double> s, d;
      while (!stop.load()) {
        const bool in_swap = swapping.load();
        auto t0 = Clock::now();
        auto resp = c.Send("POST", "/v1/infer", body, headers);
        const double ms = Ms(Clock::now() - t0);
        if (resp.status != 200) failures.fetch_add(1);
        (in_swap || swapping.load() ? d : s).push_back(ms);
      }
      std::lock_guard lock(mu);
      steady.insert(steady.end(), s.begin(), s.end());
      during.insert(during.end(), d.begin(), d.end());
    });
  }
  const int swaps = 10;
  double swap_ms_total = 0.0;
  for (int i = 0; i < swaps; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // steady-state window
    auto next = spec;
    next.variant_id = "bench-" + std::to_string(i);
    swapping = true;
    auto t0 = Clock::now();
    auto r = runtime.Install(next, nullptr);
    swap_ms_total += Ms(Clock::now() - t0);
    swapping = false;
    if (!r.ok()) std::fprintf(stderr, "swap failed: %s\n", r.error().ToString().c_str());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& c : clients) c.join();
  std::printf("== hot swap under load (2 client threads, %d swaps, load+check %.1f ms each)\n",
              swaps, swap_ms_total / swaps);
  std::printf("  steady       %zu requests  p50 %.3f ms  p99 %.3f ms\n", steady.size(),
              Quantile(steady, 0.5), Quantile(steady, 0.99));
  std::printf("  during swap  %zu requests  p50 %.3f ms  p99 %.3f ms\n", during.size(),
              Quantile(during, 0.5), Quantile(during, 0.99));
  std::printf("  failed requests: %d (target 0), p99 ratio swap/steady %.2fx\n", failures.load(),
              Quantile(steady, 0.99) > 0 ? Quantile(during, 0.99) / Quantile(steady, 0.99) : 0.0);
  return failures.load() == 0 && api_failures == 0 ? 0 : 1;
}
