// Heartbeat load (not part of CI). One server process (forked: the fleet API on HttpsServer, real
// SQLite, real device CA) and, in this process, N simulated agents. Each simulated agent enrolls
// through the real API with its own EC P-256 key and gets its own device certificate, then holds
// one persistent mTLS connection (one descriptor) on which it heartbeats every interval seconds,
// the N agents spread evenly over the interval. The agents are asynchronous Beast/Asio SSL
// streams driven by a few io_contexts (one per client thread), so the tool needs no thread per
// agent and the server gets the other core.
//
// Printed side by side from the same measured window:
//   keep-alive mTLS heartbeats (ours)  vs  a fresh TLS connection per heartbeat (baseline,
//   a small fixed rate of extra heartbeats made by the same agents' identities)
// with p50/p90/p99/max latency (send → complete response), achieved rate vs scheduled, errors,
// schedule slip, server CPU and RSS, the tool's own CPU and the load average. Optionally the idle
// RSS of a real edgeprune-agent process (enrolled, heartbeating, no model); `--agents 0` measures
// only that.
//
// usage: heartbeat_load [--agents 5000] [--interval-s 10] [--duration-s 60] [--threads 1]
//                       [--server-threads 2] [--connect-concurrency 32] [--fresh-per-s 10]
//                       [--enroll-threads 4] [--agent-bin path/to/edgeprune-agent]
//                       [--agent-set section.key=value ...]
//                       [--port P --token T --ca FILE [--server-pid PID]]
// Build and run: tests/bench/heartbeat_load.sh <build-dir> [flags...]
//
// With --port the agents go to a server already running on 127.0.0.1:P (a replica on
// PostgreSQL: tests/bench/heartbeat_replicas.sh), enrolling with token T and trusting the server
// CA in FILE; --server-pid names the process whose CPU and RSS are reported.
//
// The simulated agents are in tests/bench/heartbeat_sim.hpp, the server process and the agents'
// identities in tests/bench/heartbeat_server.hpp; this file parses the flags, runs the phases and
// prints the report.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/heartbeat_server.hpp"
#include "bench/heartbeat_sim.hpp"
#include "bench/proc_stats.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/process_limits.hpp"
#include "edgeprune/common/tls.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

using namespace edgeprune;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using bench::ConnectNext;
using bench::FreshProber;
using bench::Identity;
using bench::KeyAndCsr;
using bench::Lane;
using bench::ParseCert;
using bench::RunServer;
using bench::ServerSettings;
using bench::Shared;
using bench::SimAgent;

struct Options {
  int agents = 5000;
  int interval_s = 10;
  int duration_s = 60;
  int threads = 1;
  int server_threads = 2;
  int connect_concurrency = 32;
  double fresh_per_s = 10;
  int enroll_threads = 4;
  std::string agent_bin;
  std::vector<std::string> agent_sets;
  int port = 0;  // > 0: an external server on 127.0.0.1
  std::string token;
  std::string ca;
  pid_t server_pid = 0;
};

// ---- /proc ------------------------------------------------------------------------------------

using bench::CpuSeconds;
using bench::LoadAverage;
using bench::ProcStatusKb;

struct Stats {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
  };
  return {q(0.5), q(0.9), q(0.99), v.back()};
}

bool WaitFor(const std::atomic<int>& counter, Clock::time_point deadline) {
  while (counter.load() > 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// ---- a real agent's idle memory -----------------------------------------------------------------

void MeasureRealAgent(const Options& o, const testing::TempDir& dir, const testing::TestPki& pki,
                      std::uint16_t port, const std::string& token) {
  std::string state = dir.File("real-agent");
  pid_t agent = fork();
  if (agent == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<std::string> sets = {"agent.server_url=https://127.0.0.1:" + std::to_string(port),
                                     "agent.server_ca=" + pki.ca.cert, "agent.state_dir=" + state,
                                     "agent.enrollment_token=" + token, "local_api.port=0"};
    sets.insert(sets.end(), o.agent_sets.begin(), o.agent_sets.end());
    std::vector<char*> args = {const_cast<char*>(o.agent_bin.c_str()), const_cast<char*>("run")};
    for (auto& s : sets) {
      args.push_back(const_cast<char*>("--set"));
      args.push_back(s.data());
    }
    args.push_back(nullptr);
    execv(o.agent_bin.c_str(), args.data());
    _exit(127);
  }
  // Enrolment and profiling take a few seconds; then sample after two heartbeat intervals.
  std::this_thread::sleep_for(std::chrono::seconds(2 * o.interval_s + 5));
  const long rss = ProcStatusKb(agent, "VmRSS:");
  const long anon = ProcStatusKb(agent, "RssAnon:");
  const long file = ProcStatusKb(agent, "RssFile:");
  const long hwm = ProcStatusKb(agent, "VmHWM:");
  const long threads = ProcStatusKb(agent, "Threads:");
  std::string st;
  std::ifstream(state + "/state.json") >> st;
  std::printf(
      "\nreal edgeprune-agent idle (enrolled, heartbeating, no model): RSS %.1f MiB (anon %.1f, "
      "file %.1f), peak %.1f MiB, %ld threads; state %s\n",
      rss / 1024.0, anon / 1024.0, file / 1024.0, hwm / 1024.0, threads, st.c_str());
  kill(agent, SIGTERM);
  int status = 0;
  waitpid(agent, &status, 0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "flag %s needs a value\n", k.c_str());
      return 2;
    }
    std::string v = argv[i + 1];
    if (k == "--agents") o.agents = std::atoi(v.c_str());
    else if (k == "--interval-s") o.interval_s = std::atoi(v.c_str());
    else if (k == "--duration-s") o.duration_s = std::atoi(v.c_str());
    else if (k == "--threads") o.threads = std::atoi(v.c_str());
    else if (k == "--server-threads") o.server_threads = std::atoi(v.c_str());
    else if (k == "--connect-concurrency") o.connect_concurrency = std::atoi(v.c_str());
    else if (k == "--fresh-per-s") o.fresh_per_s = std::atof(v.c_str());
    else if (k == "--enroll-threads") o.enroll_threads = std::atoi(v.c_str());
    else if (k == "--agent-bin") o.agent_bin = v;
    else if (k == "--agent-set") o.agent_sets.push_back(v);
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--token") o.token = v;
    else if (k == "--ca") o.ca = v;
    else if (k == "--server-pid") o.server_pid = static_cast<pid_t>(std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (o.agents < 0 || o.interval_s < 1 || o.duration_s < 1 || o.threads < 1 ||
      o.server_threads < 1 || o.connect_concurrency < 1 || o.fresh_per_s < 0 ||
      o.enroll_threads < 1 || o.port < 0 || o.port > 65535) {
    std::fprintf(stderr, "flags out of range (agents >= 0, every count and time >= 1)\n");
    return 2;
  }
  const bool external = o.port > 0;
  if (external && (o.token.empty() || o.ca.empty() || !o.agent_bin.empty())) {
    std::fprintf(stderr, "--port needs --token and --ca, and excludes --agent-bin\n");
    return 2;
  }
  // One descriptor per simulated agent here and one per connection in the forked server, which
  // inherits this limit.
  auto fds = RaiseOpenFileLimit();
  if (!fds.ok()) {
    std::fprintf(stderr, "%s\n", fds.error().ToString().c_str());
    return 1;
  }
  if (fds->soft < static_cast<std::uint64_t>(o.agents) + 200) {
    std::fprintf(stderr, "open-file limit %llu is too low for %d agents\n",
                 static_cast<unsigned long long>(fds->soft), o.agents);
    return 1;
  }

  testing::TempDir dir("edgeprune-hbload");
  auto pki = testing::MakeTestPki(dir.path());
  pid_t server = o.server_pid;
  std::uint16_t port = static_cast<std::uint16_t>(o.port);
  std::string token = o.token;
  if (external) {
    pki.ca.cert = o.ca;  // the agents trust the external server's CA
  } else {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) return 1;
    server = fork();
    if (server == 0) {
      close(pipe_fds[0]);
      ServerSettings settings;
      settings.interval_s = o.interval_s;
      settings.server_threads = o.server_threads;
      settings.enrollment_uses = o.agents + 10;
      _exit(RunServer(settings, pki, dir.path(), pipe_fds[1]));
    }
    close(pipe_fds[1]);
    std::string hello;
    char buf[512];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) hello.append(buf, static_cast<size_t>(n));
    close(pipe_fds[0]);
    auto space = hello.find(' ');
    if (space == std::string::npos) {
      std::fprintf(stderr, "server did not start\n");
      return 1;
    }
    port = static_cast<std::uint16_t>(std::atoi(hello.substr(0, space).c_str()));
    token = hello.substr(space + 1, hello.find('\n') - space - 1);
  }
  std::printf(
      "server pid %d on 127.0.0.1:%u (%d threads); %d agents, interval %d s, %d s measured, %d "
      "client thread(s); open-file limit %llu (was %llu)\n",
      server, port, o.server_threads, o.agents, o.interval_s, o.duration_s, o.threads,
      static_cast<unsigned long long>(fds->soft), static_cast<unsigned long long>(fds->soft_before));
  std::fflush(stdout);

  bool ok = true;
  if (o.agents > 0) {
    // Enroll every simulated agent through the real API: own key, own certificate.
    std::vector<Identity> ids(static_cast<size_t>(o.agents));
    std::atomic<int> next{0}, enroll_failures{0};
    auto t0 = Clock::now();
    {
      auto anon_tls = tls::MakeClientContext({pki.ca.cert, "", ""});
      std::vector<std::thread> ts;
      for (int t = 0; t < o.enroll_threads; ++t) {
        ts.emplace_back([&] {
          http::ClientOptions co;
          co.host = "127.0.0.1";
          co.port = port;
          co.tls = *anon_tls;
          co.timeout = std::chrono::seconds(30);
          http::HttpsClient anon(co);
          for (int i; (i = next++) < o.agents;) {
            auto [key, csr] = KeyAndCsr();
            boost::json::object body{{"token", token}, {"csr_pem", csr}, {"hostname", "sim"}};
            auto r = anon.Post("/agent/v1/enroll", boost::json::serialize(body));
            if (!r.ok() || r->status != 201) {
              if (enroll_failures++ == 0) {
                std::fprintf(stderr, "first enrollment failure: %s\n",
                             r.ok() ? (std::to_string(r->status) + " " + r->body).c_str()
                                    : r.error().ToString().c_str());
              }
              continue;
            }
            auto g = json::ParseObject(r->body);
            if (!g.ok() || !g->contains("certificate_pem")) {
              ++enroll_failures;
              continue;
            }
            auto& id = ids[static_cast<size_t>(i)];
            id.cert = ParseCert(std::string(g->at("certificate_pem").as_string()));
            id.key = std::move(key);
            if (!id.cert) ++enroll_failures;
          }
        });
      }
      for (auto& t : ts) t.join();
    }
    const double enroll_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const int enrolled = o.agents - enroll_failures.load();
    std::printf("enrolled %d agents in %.1f s (%.0f/s, %d threads), %d failures\n", enrolled,
                enroll_s, enrolled / enroll_s, o.enroll_threads, enroll_failures.load());
    std::fflush(stdout);
    if (enroll_failures > 0) ok = false;

    // Lanes and agents. Agent i lives on lane i % threads.
    Shared sh;
    auto client_tls = tls::MakeClientContext({pki.ca.cert, "", ""});
    if (!client_tls.ok()) {
      std::fprintf(stderr, "%s\n", client_tls.error().ToString().c_str());
      return 1;
    }
    sh.tls = *client_tls;
    sh.server = tcp::endpoint(net::ip::make_address("127.0.0.1"), port);
    sh.interval = std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(o.interval_s));
    std::vector<std::unique_ptr<Lane>> lanes;
    for (int t = 0; t < o.threads; ++t) lanes.push_back(std::make_unique<Lane>());
    std::vector<std::unique_ptr<SimAgent>> agents;
    std::vector<Lane*> lane_of;
    for (int i = 0; i < o.agents; ++i) {
      auto& id = ids[static_cast<size_t>(i)];
      if (!id.cert || !id.key) continue;
      Lane& lane = *lanes[agents.size() % lanes.size()];
      lane.to_connect.push_back(static_cast<int>(agents.size()));
      lane_of.push_back(&lane);
      agents.push_back(std::make_unique<SimAgent>(lane, sh, std::move(id)));
    }
    ids.clear();
    const int n_agents = static_cast<int>(agents.size());

    // Keep every lane's io_context running until the end.
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
    std::vector<std::thread> threads;
    for (auto& lane : lanes) {
      guards.push_back(net::make_work_guard(lane->ioc));
      threads.emplace_back([l = lane.get()] { l->ioc.run(); });
    }

    // Connect phase: a bounded number of handshakes in flight per lane.
    sh.connect_pending = n_agents;
    t0 = Clock::now();
    const int per_lane = std::max(1, o.connect_concurrency / o.threads);
    for (auto& lane : lanes) {
      net::post(lane->ioc, [l = lane.get(), &sh, &agents, per_lane] {
        for (int k = 0; k < per_lane; ++k) ConnectNext(*l, sh, agents);
      });
    }
    if (!WaitFor(sh.connect_pending, Clock::now() + std::chrono::minutes(10))) {
      std::fprintf(stderr, "connect phase did not finish in 10 minutes\n");
      return 1;
    }
    const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
    long connect_failures = 0;
    std::vector<double> connect_ms;
    for (auto& lane : lanes) {
      connect_failures += lane->errors;
      connect_ms.insert(connect_ms.end(), lane->connect_ms.begin(), lane->connect_ms.end());
      lane->errors = 0;
      lane->first_error.clear();
    }
    auto cs = Summarize(connect_ms);
    std::printf(
        "connected %zu agents in %.1f s (%d handshakes in flight; handshake + first heartbeat p50 "
        "%.1f ms, p99 %.1f ms), %ld failures\n",
        connect_ms.size(), connect_s, per_lane * o.threads, cs.p50, cs.p99, connect_failures);
    std::fflush(stdout);
    if (connect_failures > 0) ok = false;

    // Measured phase: agent i heartbeats at start + i·interval/N + k·interval, and each lane
    // runs a baseline prober at fresh_per_s / threads.
    const auto start = Clock::now() + std::chrono::milliseconds(500);
    sh.end = start + std::chrono::seconds(o.duration_s);
    const int probers = o.fresh_per_s > 0 ? o.threads : 0;
    sh.running = n_agents + probers;
    std::vector<std::unique_ptr<FreshProber>> fresh;
    if (probers > 0) {
      const auto period = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(o.threads / o.fresh_per_s));
      for (int t = 0; t < o.threads; ++t) {
        fresh.push_back(std::make_unique<FreshProber>(*lanes[static_cast<size_t>(t)], sh, agents,
                                                      period, static_cast<size_t>(t)));
      }
    }
    const std::string load_before = LoadAverage();
    const double cpu0 = CpuSeconds(server);
    rusage ru0{};
    getrusage(RUSAGE_SELF, &ru0);
    for (int i = 0; i < n_agents; ++i) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   sh.interval * (static_cast<double>(i) / n_agents));
      net::post(lane_of[static_cast<size_t>(i)]->ioc,
                [a = agents[static_cast<size_t>(i)].get(), due] { a->Start(due); });
    }
    for (int t = 0; t < probers; ++t) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(t / o.fresh_per_s));
      net::post(lanes[static_cast<size_t>(t)]->ioc,
                [p = fresh[static_cast<size_t>(t)].get(), due, &sh] { p->Start(due, sh.running); });
    }
    if (!WaitFor(sh.running, sh.end + std::chrono::seconds(60))) {
      std::fprintf(stderr, "measured phase did not finish within 60 s of its end\n");
      ok = false;
    }
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = CpuSeconds(server) - cpu0;
    rusage ru1{};
    getrusage(RUSAGE_SELF, &ru1);
    auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    const double tool_cpu = tv(ru1.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_utime) - tv(ru0.ru_stime);
    const long server_rss_kb = ProcStatusKb(server, "VmRSS:");
    const long tool_rss_kb = ProcStatusKb(getpid(), "VmRSS:");
    const std::string load_after = LoadAverage();

    for (auto& g : guards) g.reset();
    for (auto& lane : lanes) lane->ioc.stop();
    for (auto& t : threads) t.join();

    std::vector<double> ka_ms, fresh_ms, slip;
    long sent = 0, errors = 0, reconnects = 0, fresh_errors = 0;
    std::string first_error;
    for (auto& lane : lanes) {
      ka_ms.insert(ka_ms.end(), lane->keepalive_ms.begin(), lane->keepalive_ms.end());
      fresh_ms.insert(fresh_ms.end(), lane->fresh_ms.begin(), lane->fresh_ms.end());
      slip.insert(slip.end(), lane->slip_ms.begin(), lane->slip_ms.end());
      sent += lane->sent;
      errors += lane->errors;
      reconnects += lane->reconnects;
      fresh_errors += lane->fresh_errors;
      if (first_error.empty()) first_error = lane->first_error;
    }
    auto ka = Summarize(ka_ms);
    auto fr = Summarize(fresh_ms);
    auto sl = Summarize(slip);
    const double target_rate = static_cast<double>(n_agents) / o.interval_s;
    std::printf("\n%-26s %12s %12s %8s\n", "heartbeat latency (ms)", "keep-alive", "fresh-TLS",
                "ratio");
    std::printf("%-26s %12.2f %12.2f %7.1fx\n", "p50", ka.p50, fr.p50, fr.p50 / ka.p50);
    std::printf("%-26s %12.2f %12.2f %7.1fx\n", "p90", ka.p90, fr.p90, fr.p90 / ka.p90);
    std::printf("%-26s %12.2f %12.2f %7.1fx\n", "p99", ka.p99, fr.p99, fr.p99 / ka.p99);
    std::printf("%-26s %12.2f %12.2f\n", "max", ka.max, fr.max);
    std::printf("%-26s %12zu %12zu\n", "samples", ka_ms.size(), fresh_ms.size());
    std::printf("\nrate: %.1f keep-alive heartbeats/s achieved over %.1f s (scheduled %.1f/s), %ld "
                "sent, %ld errors, %ld reconnects; baseline %.1f/s, %ld errors\n",
                static_cast<double>(ka_ms.size()) / o.duration_s, wall, target_rate, sent, errors,
                reconnects, static_cast<double>(fresh_ms.size()) / o.duration_s, fresh_errors);
    if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
    std::printf("client schedule slip (due → send) p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", sl.p50,
                sl.p99, sl.max);
    std::printf("server: %.0f%% of one core (%.1f CPU-s over %.1f s), RSS %.1f MiB with %d "
                "connections\n",
                100.0 * cpu / wall, cpu, wall, server_rss_kb / 1024.0, n_agents);
    std::printf("load tool: %.0f%% of one core (%.1f CPU-s), RSS %.1f MiB\n",
                100.0 * tool_cpu / wall, tool_cpu, tool_rss_kb / 1024.0);
    std::printf("load average (1/5/15 min) before: %s, after: %s\n", load_before.c_str(),
                load_after.c_str());
    std::fflush(stdout);
    if (errors > 0 || fresh_errors > 0) ok = false;
    // Streams die with their lanes' io_contexts; agents first.
    fresh.clear();
    agents.clear();
  }

  if (!o.agent_bin.empty()) MeasureRealAgent(o, dir, pki, port, token);
  if (!external) {
    kill(server, SIGTERM);
    int status = 0;
    waitpid(server, &status, 0);
  }
  return ok ? 0 : 1;
}
