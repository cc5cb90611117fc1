// The cost of judging a rollout phase: N devices (1,000 and 5,000) in one phase, every device
// installed and reporting (3 reports on its previous variant, 3 on the new one, latency and
// feedback included; a third run with 60 on the previous variant), five gates. Measured on a real
// SQLite file:
//   step   RolloutService::Tick() for that rollout: the fleet's devices, the phase's device rows
//          and assignments, telemetry aggregates and install events of 2N (device, variant)
//          pairs, the five gates, and the write-back of the rollout's row — what the periodic
//          task pays per phase;
//   gates  EvaluateGates() alone over the N observations.
// Median of 7 runs each, printed per 1,000 devices of the phase next to the issue's 5 ms budget.
// A fourth run judges the first phase (50 devices, 1 %) of a rollout over 5,000: the step reads
// what that phase reaches, not the rollout's every device or the whole fleet. Never run by CTest;
// a test never asserts a wall-clock time.
//
//   cmake --build <build> --target rollout_gates_bench && nice -n 10 <build>/tests/rollout_gates_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "edgeprune/common/log.hpp"
#include "server/deploy/rollout_gates.hpp"
#include "server/deploy/rollout_step.hpp"
#include "server/fleet/device_directory.hpp"
#include "server/telemetry/field_stats.hpp"
#include "server/support/rollouts_fixture.hpp"

namespace ep = edgeprune;
namespace json = ep::json;
using Clock = std::chrono::steady_clock;

namespace {

// CPU time of this thread: on a loaded machine wall time mostly measures the other processes.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The telemetry read as it was before the per-(device, variant) aggregate (migration 0008): every
// report of every device asked about, grouped on each step. Kept here as the baseline.
bool BaselineStatsIn(ep::store::Connection& conn, const std::string& devices_json) {
  auto s = conn.Query("bench_field_stats_baseline",
                      "SELECT g.device_id, g.variant_id, g.n, g.accuracy, g.labels, "
                      "g.correct, g.last_seq, (SELECT CASE WHEN r.live_count > 0 "
                      "THEN r.live_p95_ms ELSE r.probe_p95_ms END FROM telemetry r "
                      "WHERE r.device_id = g.device_id AND r.seq = g.last_seq) "
                      "FROM (SELECT device_id, variant_id, COUNT(*) AS n, "
                      "AVG(probe_accuracy) AS accuracy, SUM(feedback_count) AS labels, "
                      "SUM(feedback_accuracy * feedback_count) AS correct, MAX(seq) AS last_seq "
                      "FROM telemetry WHERE device_id IN (SELECT value FROM json_each(?)) "
                      "GROUP BY device_id, variant_id) g",
                      devices_json);
  if (!s.ok()) return false;
  std::int64_t rows = 0;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return false;
    if (!*row) break;
    ++rows;
  }
  return rows > 0;
}

// n devices, the first `phase` of them (in selection order) in the phase judged; `history` reports
// per device on the previous variant (a device reporting every minute has 1,440 a day; the read
// used to grow with them).
void Run(int n, int history, int phase) {
  ep::testing::RolloutsWorld w;
  const std::string a = w.AddModel({{"L0", {10'000'000, 0.90}}});
  const std::string b = w.AddModel({{"L0", {10'000'000, 0.91}}});
  const std::string a0 = w.Variant(a, "L0"), b0 = w.Variant(b, "L0");
  ep::Budget budget;
  budget.max_latency_ms = 50.0;
  budget.latency_model = ep::LatencyModel{1'000'000.0, 0.5};
  w.AddDevices("dev-", n, R"(["cam"])", budget);
  ep::deploy::Selector all;
  all.tags = {"cam"};
  if (!w.deployments().Deploy(a, all, "bench").ok()) std::abort();
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < history; ++k) {
      w.Report("dev-" + std::to_string(i), a0, 0.9, 12.0, 20, 0.85);
    }
  }
  const std::string phases =
      phase < n ? R"([{"count": )" + std::to_string(phase) +
                      R"(, "bake_seconds": 86400}, {"percent": 100, "bake_seconds": 86400}])"
                : std::string(R"([{"percent": 100, "bake_seconds": 86400}])");
  const std::string id = std::string(
      w.rollouts()
          .Create(w.Spec(R"({"model": ")" + b + R"(", "target": {"tags": ["cam"]},
              "phases": )" + phases + R"(,
              "gates": [{"gate": "install_failure_rate", "threshold": 0.5, "action": "pause"},
                        {"gate": "offline_after_update", "threshold": 0.5, "action": "pause"},
                        {"gate": "probe_accuracy_drop", "threshold": 0.5, "action": "pause"},
                        {"gate": "feedback_accuracy_drop", "threshold": 0.5, "action": "pause"},
                        {"gate": "p95_over_slo", "threshold": 0.5, "action": "pause"}]})"),
                  "bench")
          ->at("id")
          .as_string());
  for (int i = 0; i < n; ++i) {
    const std::string d = "dev-" + std::to_string(i);
    w.Heartbeat(d, b0);
    w.Event(d, b0, "installed");
    for (int k = 0; k < 3; ++k) w.Report(d, b0, 0.89, 14.0, 20, 0.84);
  }
  w.Tick();  // settles the devices (installed → verified)
  if (w.Count(id, 0, "verified") != phase) std::abort();

  std::vector<double> step_ms, step_cpu_ms, gates_ms;
  const int runs = std::getenv("ROLLOUT_BENCH_RUNS") ? std::atoi(std::getenv("ROLLOUT_BENCH_RUNS")) : 7;
  for (int run = 0; run < std::max(runs, 1); ++run) {
    const auto t0 = Clock::now();
    const double c0 = ThreadCpuMs();
    auto r = w.rollouts().Tick();
    step_cpu_ms.push_back(ThreadCpuMs() - c0);
    const auto t1 = Clock::now();
    if (!r.ok() || r->rollouts != 1) std::abort();
    step_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  // Where a step's time goes: the reads it makes, one by one (all devices in the phase).
  if (phase == n) {
    auto lease = w.db().db()->Acquire();
    if (!lease.ok()) std::abort();
    ep::telemetry::FieldStats::Pairs pairs;
    for (int i = 0; i < n; ++i) {
      pairs.emplace_back("dev-" + std::to_string(i), b0);
      pairs.emplace_back("dev-" + std::to_string(i), a0);
    }
    auto time = [&](const char* what, auto&& fn) {
      std::vector<double> ms, cpu;
      for (int run = 0; run < 5; ++run) {
        const auto t0 = Clock::now();
        const double c0 = ThreadCpuMs();
        if (!fn()) std::abort();
        cpu.push_back(ThreadCpuMs() - c0);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::printf("    %-32s %8.2f ms wall %8.2f ms cpu\n", what, Median(ms), Median(cpu));
    };
    time("fleet ActiveIn", [&] { return ep::fleet::DeviceDirectory::ActiveIn(**lease).ok(); });
    time("rollout LoadDevicesIn", [&] { return ep::deploy::rollout::LoadDevicesIn(**lease, id).ok(); });
    time("telemetry StatsIn (2N pairs)", [&] { return ep::telemetry::FieldStats::StatsIn(**lease, pairs).ok(); });
    boost::json::array ids_array;
    for (int i = 0; i < n; ++i) ids_array.emplace_back("dev-" + std::to_string(i));
    const std::string ids = json::Serialize(ids_array);
    time("  baseline: per-report aggregate", [&] { return BaselineStatsIn(**lease, ids); });
    time("telemetry OutcomesIn (2N pairs)", [&] { return ep::telemetry::FieldStats::OutcomesIn(**lease, pairs, 0).ok(); });
  }
  const auto rollout = w.Get(id);
  if (rollout.at("state").as_string() != "running") std::abort();

  std::vector<ep::deploy::DeviceObservation> obs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& o = obs[static_cast<std::size_t>(i)];
    o.device_id = "dev-" + std::to_string(i);
    o.state = "verified";
    o.baseline_probe = 0.9;
    o.baseline_feedback = 0.85;
    o.slo_ms = 50.0;
    o.now = ep::telemetry::VariantFieldStats{3, 0.89, 14.0, 60, 0.84};
  }
  const auto spec = w.Spec(json::Serialize(rollout.at("spec")));
  for (int run = 0; run < 7; ++run) {
    const auto t0 = Clock::now();
    auto v = ep::deploy::EvaluateGates(spec.gates, obs);
    const auto t1 = Clock::now();
    if (v.size() != 5) std::abort();
    gates_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const double step = Median(step_ms), cpu = Median(step_cpu_ms), gates = Median(gates_ms);
  std::printf("%6d devices, %5d in the phase, %3d reports before:  step %8.2f ms wall, %8.2f ms cpu  "
              "(%6.2f ms cpu per 1,000 in the phase)   gates alone %7.3f ms (%6.3f ms per 1,000)   "
              "budget 5 ms per 1,000\n",
              n, phase, history, step, cpu, cpu * 1000.0 / phase, gates, gates * 1000.0 / n);
}

}  // namespace

int main() {
  (void)ep::log::SetLevel("warn");
  // ROLLOUT_BENCH_DEVICES=N [ROLLOUT_BENCH_PHASE=K] runs only N devices, K of them in the phase
  // (with ROLLOUT_BENCH_RUNS, for a profiler).
  if (const char* only = std::getenv("ROLLOUT_BENCH_DEVICES")) {
    const char* phase = std::getenv("ROLLOUT_BENCH_PHASE");
    Run(std::atoi(only), 3, phase ? std::atoi(phase) : std::atoi(only));
    return 0;
  }
  for (int n : {1000, 5000}) Run(n, 3, n);
  Run(1000, 60, 1000);
  Run(5000, 3, 50);
  return 0;
}
