// Agent memory, side by side (not part of CI): what the agent costs beyond the model it serves.
// In one run, for the same variant file:
//   baseline  a process that links LibTorch only, torch::jit::load's the variant the agent
//             installed, warms up and runs N batch-1 forwards with one intra-op thread
//             (agent_memory_baseline.cpp);
//   serving   the real `edgeprune-agent run`, enrolled against a real `edgeprune-server serve`
//             (the end-to-end harness, tests/e2e/full_loop_fixture.hpp), with that variant
//             deployed, built, signed, downloaded, checked and installed, after N POST /v1/infer;
//   idle      the same agent before the deployment: enrolled, profiled, heartbeating, no model.
// Each figure is read from /proc/<pid>/status (the serving one after the first telemetry tick
// that follows the requests); every run uses a fresh agent and the table shows medians over the
// runs. The agent runs with its default probe set (200 samples) and
// microbenchmark time (1 s).
//
// usage: agent_memory [--agent-bin path/to/edgeprune-agent] [--master model.pt] [--requests N]
//                     [--runs R] [--smaps-dir DIR] [--set section.key=value]...
//   --master: the TorchScript master the server builds the variant from (input 1x28x28,
//   Fashion-MNIST); default tests/fixtures/models/lenet5_scripted.pt. --smaps-dir: keep each
//   run's /proc/<pid>/smaps of the serving agent there, to see where its memory is. --set: an
//   agent setting (after the bench's own: probe 200 samples, telemetry every 5 s).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/proc_stats.hpp"
#include "e2e/full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

int requests = 1000;
int runs = 3;
std::vector<std::string> agent_sets;  // extra --set items for the agent (later ones win)
std::string smaps_dir;  // when set, the serving agent's /proc/<pid>/smaps is copied there per run

struct Mem {
  double rss = 0, anon = 0, file = 0, hwm = 0;  // MiB
};

Mem ReadMem(pid_t pid) {
  auto mib = [pid](const char* field) {
    return static_cast<double>(bench::ProcStatusKb(pid, field)) / 1024.0;
  };
  return {mib("VmRSS:"), mib("RssAnon:"), mib("RssFile:"), mib("VmHWM:")};
}

// "baseline rss_kb=.. anon_kb=.. file_kb=.. hwm_kb=.." → MiB.
Mem ParseBaseline(const std::string& out) {
  auto kb = [&](const std::string& key) {
    auto at = out.find(key + "=");
    return at == std::string::npos ? -1.0
                                   : std::atof(out.c_str() + at + key.size() + 1) / 1024.0;
  };
  return {kb("rss_kb"), kb("anon_kb"), kb("file_kb"), kb("hwm_kb")};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Mem MedianOf(const std::vector<Mem>& all) {
  std::vector<double> r, a, f, h;
  for (const auto& m : all) {
    r.push_back(m.rss);
    a.push_back(m.anon);
    f.push_back(m.file);
    h.push_back(m.hwm);
  }
  return {Median(r), Median(a), Median(f), Median(h)};
}

void Row(const char* name, const Mem& m) {
  std::printf("| %-34s | %8.1f | %8.1f | %8.1f | %8.1f |\n", name, m.rss, m.anon, m.file, m.hwm);
}

std::string InstalledPayload(const std::string& state_dir) {
  std::ifstream in(state_dir + "/installed.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  boost::system::error_code ec;
  auto v = bj::parse(text, ec);
  if (ec || !v.is_object() || !v.as_object()["current"].is_object()) return "";
  return Str(v.as_object()["current"], "payload_path");
}

class AgentMemoryBench : public FullLoopTest {};

TEST_F(AgentMemoryBench, AgentBeyondTheLoadedModel) {
  std::vector<Mem> idle, serving, baseline;
  const std::string load_before = bench::LoadAverage();
  std::string variant_file;
  for (int run = 0; run < runs; ++run) {
    std::vector<std::string> sets = {"probe.samples=200", "agent.bench_ms=1000",
                                     "runtime.warmup_iterations=3", "telemetry.interval_s=5"};
    sets.insert(sets.end(), agent_sets.begin(), agent_sets.end());
    Agent agent(sets);
    agent.Start();
    ASSERT_FALSE(agent.device_id().empty()) << agent.Log();
    std::this_thread::sleep_for(seconds(3));  // three heartbeats, no model
    idle.push_back(ReadMem(agent.pid()));

    std::string variant;
    DeployAndInstall(agent, &variant);
    int failed = 0;
    for (int i = 0; i < requests; ++i) {
      if (!agent.Infer().is_object()) ++failed;
    }
    ASSERT_EQ(failed, 0) << agent.Log();
    // Measured after the next telemetry tick (report, probe pass, housekeeping): the state a
    // long-running agent returns to between requests.
    const auto reports_before = agent.TelemetryCounts().first;
    ASSERT_TRUE(WaitUntil([&] { return agent.TelemetryCounts().first > reports_before; },
                          seconds(30), milliseconds(100)))
        << agent.Log();
    serving.push_back(ReadMem(agent.pid()));
    if (!smaps_dir.empty()) {
      // /proc files report size 0, so copy_file would copy nothing: stream it.
      std::ifstream in("/proc/" + std::to_string(agent.pid()) + "/smaps");
      std::ofstream out(smaps_dir + "/agent-serving-" + std::to_string(run + 1) + ".smaps");
      out << in.rdbuf();
    }
    variant_file = InstalledPayload(agent.state_dir());
    ASSERT_FALSE(variant_file.empty()) << "no installed variant in " << agent.state_dir();

    Process base({.program = AGENT_MEMORY_BASELINE_BIN,
                  .args = {variant_file, std::to_string(requests)}});
    ASSERT_EQ(base.Wait(seconds(120)), 0) << base.Stderr();
    baseline.push_back(ParseBaseline(base.Stdout()));
    EXPECT_EQ(agent.Stop(), 0) << agent.Log();
    std::printf("run %d: idle %.1f MiB, serving %.1f MiB, baseline %.1f MiB (variant %s)\n",
                run + 1, idle.back().rss, serving.back().rss, baseline.back().rss,
                variant.c_str());
    std::fflush(stdout);
  }
  const Mem b = MedianOf(baseline), s = MedianOf(serving), i = MedianOf(idle);
  std::printf("\n== agent memory, medians of %d runs, %d requests / forwards each\n", runs,
              requests);
  std::printf("   agent %s\n   master %s\n   variant file %s (%lld bytes)\n", agent_bin.c_str(),
              master_file.c_str(), variant_file.c_str(),
              static_cast<long long>(std::filesystem::file_size(variant_file)));
  std::printf("   load average before %s, after %s\n", load_before.c_str(),
              bench::LoadAverage().c_str());
  std::printf("| %-34s | %8s | %8s | %8s | %8s |\n", "MiB", "RSS", "anon", "file", "peak");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str());
  Row("baseline: LibTorch + the variant", b);
  Row("edgeprune-agent serving it", s);
  Row("edgeprune-agent idle, no model", i);
  Row("agent serving minus baseline", {s.rss - b.rss, s.anon - b.anon, s.file - b.file,
                                       s.hwm - b.hwm});
  std::printf("target: agent serving minus baseline <= 40 MB (%.1f MiB = %.1f MB)\n", s.rss - b.rss,
              (s.rss - b.rss) * 1.048576);
}

}  // namespace
}  // namespace edgeprune::e2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--agent-bin") {
      edgeprune::e2e::agent_bin = v;
    } else if (k == "--master") {
      edgeprune::e2e::master_file = v;
    } else if (k == "--requests") {
      edgeprune::e2e::requests = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--set") {
      edgeprune::e2e::agent_sets.push_back(v);
    } else if (k == "--smaps-dir") {
      edgeprune::e2e::smaps_dir = v;
    } else if (k == "--runs") {
      edgeprune::e2e::runs = std::max(1, std::atoi(v.c_str()));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  setenv("EDGEPRUNE_TEST", "1", 0);
  return RUN_ALL_TESTS();
}
