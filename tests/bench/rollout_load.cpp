// Rollout load (not part of CI): one real `edgeprune-server serve` process on SQLite (test PKI,
// fresh data dir) and N simulated devices (tests/bench/rollout_sim.hpp) that enroll, heartbeat,
// download and verify their variant, report it installed and send telemetry. The devices run in
// --processes child processes (a keep-alive HttpsClient holds four descriptors). The tool
// uploads a master, creates a three-phase rollout of it over every simulated device with the five
// gates, and follows it to its end. Printed per phase: wall time (the rollout polled every
// 0.5 s), the server's CPU seconds, its rollout steps and their CPU time on the stepping thread
// (edgeprune_rollout_tick_cpu_seconds_total), per step and per 1,000 devices of the rollout;
// then the server's peak RSS (VmHWM), the simulated devices' counts and the load average.
//
// usage: rollout_load --server-bin B --master M [--devices 5000] [--threads 8]
//                     [--enroll-threads 4] [--server-threads 2] [--canary 50]
//                     [--second-percent 20] [--bake-s 10] [--tick-s 5] [--heartbeat-s 10]
//                     [--telemetry-s 10] [--timeout-s 1800] [--processes 4]
//                     [--settled-s 12]  (with --bake-s 30: the settled steps are split out)
// Build and run: tests/bench/rollout_load.sh <build-dir> [flags...]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <queue>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "bench/proc_stats.hpp"
#include "bench/rollout_sim.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/process_limits.hpp"
#include "edgeprune/common/tls.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

using namespace edgeprune;
namespace bj = boost::json;
using bench::SimClock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct Options {
  std::string server_bin, master;
  int devices = 5000, threads = 8, enroll_threads = 4, server_threads = 2;
  int canary = 50, second_percent = 20, bake_s = 10, tick_s = 5;
  int heartbeat_s = 10, telemetry_s = 10, timeout_s = 1800, processes = 4, settled_s = 12;
};

bool Parse(int argc, char** argv, Options& o) {
  std::map<std::string, int*> ints = {
      {"--devices", &o.devices},         {"--threads", &o.threads},
      {"--enroll-threads", &o.enroll_threads}, {"--server-threads", &o.server_threads},
      {"--canary", &o.canary},           {"--second-percent", &o.second_percent},
      {"--bake-s", &o.bake_s},           {"--tick-s", &o.tick_s},
      {"--heartbeat-s", &o.heartbeat_s}, {"--telemetry-s", &o.telemetry_s},
      {"--timeout-s", &o.timeout_s},     {"--processes", &o.processes},
      {"--settled-s", &o.settled_s}};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--server-bin") {
      o.server_bin = v;
    } else if (k == "--master") {
      o.master = v;
    } else if (auto it = ints.find(k); it != ints.end()) {
      *it->second = std::atoi(v.c_str());
      if (*it->second <= 0) return false;
    } else {
      return false;
    }
  }
  return !o.server_bin.empty() && !o.master.empty() && o.canary < o.devices &&
         o.second_percent < 100 && (argc % 2) == 1;
}

// The operator's side: one keep-alive client with the admin token.
struct Operator {
  std::unique_ptr<http::HttpsClient> client;
  std::string token;

  http::ClientResponse Call(const std::string& method, const std::string& target,
                            std::string body = "",
                            const std::string& type = "application/json") {
    http::ClientRequest req;
    req.method = method;
    req.target = target;
    req.headers = {{"Authorization", "Bearer " + token}};
    if (!body.empty()) {
      req.headers.emplace_back("Content-Type", type);
      req.body = std::move(body);
    }
    auto r = client->Send(req);
    if (!r.ok()) {
      client->Close();
      return http::ClientResponse{0, {}, r.error().ToString()};
    }
    return *r;
  }
  bj::value Json(const std::string& method, const std::string& target, std::string body = "") {
    auto r = Call(method, target, std::move(body));
    boost::system::error_code ec;
    bj::value v = bj::parse(r.body, ec);
    if (ec || r.status / 100 != 2) {
      std::fprintf(stderr, "%s %s: HTTP %d %s\n", method.c_str(), target.c_str(), r.status,
                   r.body.substr(0, 300).c_str());
      return nullptr;
    }
    return v;
  }
  // An unlabeled series of /metrics, or -1.
  double Metric(const std::string& name) {
    const std::string text = "\n" + Call("GET", "/metrics").body;
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::atof(text.c_str() + at + name.size() + 2);
  }
};

std::string Str(const bj::value& v, const char* key) {
  if (!v.is_object()) return "";
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

// Each device thread runs its devices in due order until `stop`.
void RunDevices(std::vector<std::unique_ptr<bench::SimDevice>>& devices, int lane, int lanes,
                bench::SimCounters& counters, std::chrono::seconds spread,
                const std::atomic<bool>& stop) {
  using Due = std::pair<SimClock::time_point, std::size_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
  const auto start = SimClock::now();
  for (std::size_t i = static_cast<std::size_t>(lane); i < devices.size();
       i += static_cast<std::size_t>(lanes)) {
    due.emplace(start + spread * static_cast<long>(i) / static_cast<long>(devices.size()), i);
  }
  while (!stop && !due.empty()) {
    auto [when, i] = due.top();
    const auto now = SimClock::now();
    if (when > now) {
      std::this_thread::sleep_for(std::min<SimClock::duration>(when - now, milliseconds(100)));
      continue;
    }
    due.pop();
    due.emplace(devices[i]->Step(now, counters), i);
  }
}

// A device process as the parent sees it: its pid, what it writes, the pipe that stops it.
struct Child {
  pid_t pid = 0;
  FILE* from_child = nullptr;
  int to_child = -1;

  std::string Line() {
    char buf[4096];
    if (!std::fgets(buf, sizeof buf, from_child)) return "";
    std::string line(buf);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
  }
};

// The device processes' counts, summed: "counts <7 numbers>\t<first error>".
struct Totals {
  long n[7] = {};
  std::string first_error;

  void Add(const std::string& line) {
    std::istringstream in(line.substr(std::min(line.size(), std::strlen("counts "))));
    for (long& v : n) {
      long x = 0;
      in >> x;
      v += x;
    }
    if (const auto tab = line.find('\t'); tab != std::string::npos && first_error.empty()) {
      first_error = line.substr(tab + 1);
    }
  }
};

// One device process: enrolls devices [first, first + count), writes "enrolled <n> errors <e>
// [first error]", runs them, writes "running" once each has heartbeated, runs them until `in`
// closes, then writes its counts. Returns its exit code.
int DeviceProcess(const Options& o, const bench::SimSettings& sim, const http::ClientOptions& co,
                  const std::string& token, int first, int count, int out, int in) {
  std::vector<std::unique_ptr<bench::SimDevice>> devices(static_cast<std::size_t>(count));
  bench::SimCounters counters;
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < o.enroll_threads; ++t) {
    workers.emplace_back([&] {
      http::HttpsClient c(co);  // server-authenticated TLS: enrollment needs no certificate
      for (int i = next++; i < count; i = next++) {
        auto d = bench::SimDevice::Enroll(sim, c, token, first + i);
        if (!d.ok()) {
          counters.Fail("enroll " + std::to_string(first + i) + ": " + d.error().ToString());
          continue;
        }
        devices[static_cast<std::size_t>(i)] = std::move(d).value();
      }
    });
  }
  for (auto& w : workers) w.join();
  std::erase_if(devices, [](const auto& d) { return d == nullptr; });
  FILE* to_parent = fdopen(out, "w");
  std::fprintf(to_parent, "enrolled %zu errors %ld %s\n", devices.size(), counters.errors.load(),
               counters.first_error.c_str());
  std::fflush(to_parent);
  std::atomic<bool> stop{false};
  std::vector<std::thread> lanes;
  const int threads = std::max(1, o.threads / o.processes);
  for (int t = 0; t < threads; ++t) {
    lanes.emplace_back(RunDevices, std::ref(devices), t, threads, std::ref(counters),
                       seconds(o.heartbeat_s), std::cref(stop));
  }
  while (counters.heartbeats < static_cast<long>(devices.size())) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  std::fprintf(to_parent, "running\n");
  std::fflush(to_parent);
  char c;
  while (read(in, &c, 1) > 0) {
  }
  stop = true;
  for (auto& l : lanes) l.join();
  std::lock_guard<std::mutex> lock(counters.mu);
  std::fprintf(to_parent, "counts %ld %ld %ld %ld %ld %ld %ld\t%s\n", counters.heartbeats.load(),
               counters.manifests.load(), counters.installs.load(), counters.payload_bytes.load(),
               counters.reports.load(), counters.refused.load(), counters.errors.load(),
               counters.first_error.c_str());
  std::fflush(to_parent);
  return 0;
}

struct Mark {
  double wall_s = 0, server_cpu_s = 0, ticks = 0, tick_cpu_s = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: see the top of tests/bench/rollout_load.cpp\n");
    return 2;
  }
  // The server runs in the temp dir: its binary by an absolute path.
  o.server_bin = std::filesystem::absolute(o.server_bin).string();
  // Four descriptors per simulated device (see the device processes below).
  const auto per_process = static_cast<std::uint64_t>((o.devices + o.processes - 1) / o.processes);
  if (auto fds = RaiseOpenFileLimit(); !fds.ok() || fds->soft < 4u * per_process + 256u) {
    std::fprintf(stderr, "the open-file limit is too low for %d devices in %d processes\n",
                 o.devices, o.processes);
    return 1;
  }
  testing::TempDir dir("edgeprune-rollout-load");
  const auto pki = testing::MakeTestPki(dir.path());
  const std::string data_dir = dir.File("data");
  std::ostringstream toml;
  auto q = [](const std::string& s) { return "\"" + s + "\""; };
  toml << "[server]\nlisten_host = \"127.0.0.1\"\nlisten_port = 0\n"
       << "threads = " << o.server_threads << "\n"
       << "tls_cert = " << q(pki.server_cert()) << "\ntls_key = " << q(pki.server_key()) << "\n"
       << "client_ca = " << q(pki.client_ca_cert()) << "\ndata_dir = " << q(data_dir) << "\n"
       << "[log]\nlevel = \"warn\"\n"
       // Every simulated device connects from 127.0.0.1: no per-address cap.
       << "[limits]\nbody_bytes = 8388608\nmax_connections_per_client = 0\n"
       << "[fleet]\ndevice_ca_cert = " << q(pki.client_ca.cert) << "\n"
       << "device_ca_key = " << q(pki.client_ca.key) << "\n"
       << "heartbeat_interval_s = " << o.heartbeat_s << "\nenroll_per_minute = 0\n"
       // One small build (the simulated fleet is homogeneous): the figures are the rollout's.
       << "[variants]\ntrain_limit = 500\ntest_limit = 50\nfinetune_steps = 10\n"
       << "finetune_seconds = 20\nstep_finetune_steps = 10\n"
       << "[rollouts]\ntick_seconds = " << o.tick_s << "\n";
  const std::string config = dir.WriteFile("server.toml", toml.str());
  testing::Process token_cmd({.program = o.server_bin,
                              .args = {"token", "--config", config, "create", "--name", "bench",
                                       "--role", "admin"}});
  if (token_cmd.Wait(seconds(60)) != 0) {
    std::fprintf(stderr, "token create failed: %s\n", token_cmd.Stderr().c_str());
    return 1;
  }
  Operator op;
  op.token = token_cmd.Stdout();
  while (!op.token.empty() && std::isspace(static_cast<unsigned char>(op.token.back()))) {
    op.token.pop_back();
  }
  testing::Process server({.program = o.server_bin, .args = {"serve", "--config", config},
                           .env = {}, .working_dir = dir.path(),
                           .output_dir = dir.Subdir("server")});
  const auto port = server.WaitForListening(seconds(60));
  if (!port) {
    std::fprintf(stderr, "server did not start: %s\n", server.Stderr().c_str());
    return 1;
  }
  http::ClientOptions co;
  co.host = "127.0.0.1";
  co.port = *port;
  co.tls = *tls::MakeClientContext({pki.ca_cert(), "", ""});
  co.timeout = seconds(120);
  op.client = std::make_unique<http::HttpsClient>(co);

  bench::SimSettings sim;
  sim.port = *port;
  sim.ca_file = pki.ca_cert();
  sim.key_dir = dir.Subdir("devices");
  sim.telemetry_interval = seconds(o.telemetry_s);
  auto pub = fs::ReadFile(data_dir + "/signing.pub");
  if (!pub.ok()) {
    std::fprintf(stderr, "no signing key: %s\n", pub.error().ToString().c_str());
    return 1;
  }
  sim.signing_pub_pem = *pub;
  const std::string load_before = bench::LoadAverage();

  // The master and the enrollment token.
  auto master = fs::ReadFile(o.master);
  if (!master.ok()) return std::fprintf(stderr, "cannot read %s\n", o.master.c_str()), 1;
  auto uploaded = op.Call("POST", "/api/v1/models?name=rollout-load&dataset=fashion-mnist"
                          "&input_shape=1,28,28", *master, "application/octet-stream");
  boost::system::error_code ec;
  const std::string model = Str(bj::parse(uploaded.body, ec), "id");
  const std::string enroll_token =
      Str(op.Json("POST", "/api/v1/enrollment-tokens",
                  "{\"max_uses\": " + std::to_string(o.devices) +
                      ", \"tags\": [\"rollout-load\"]}"), "token");
  if (model.empty() || enroll_token.empty()) {
    std::fprintf(stderr, "upload (%d %s) or token failed\n", uploaded.status,
                 uploaded.body.substr(0, 300).c_str());
    return 1;
  }

  // The devices run in child processes: each HttpsClient has its own io_context (an epoll, an
  // eventfd, a timerfd and the socket), and 5,000 of them need more descriptors than one
  // process may open here.
  std::vector<Child> children;
  const int per = (o.devices + o.processes - 1) / o.processes;
  const auto enroll_start = SimClock::now();
  for (int first = 0; first < o.devices; first += per) {
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) return std::perror("pipe"), 1;
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) return std::perror("fork"), 1;
    if (pid == 0) {
      close(up[0]);
      close(down[1]);
      for (const auto& c : children) {
        close(c.to_child);
        std::fclose(c.from_child);
      }
      // _exit: the parent's objects (the temp dir, the server process) are not this process's.
      _exit(DeviceProcess(o, sim, co, enroll_token, first, std::min(per, o.devices - first),
                          up[1], down[0]));
    }
    close(up[1]);
    close(down[0]);
    children.push_back({pid, fdopen(up[0], "r"), down[1]});
  }
  long enrolled = 0;
  for (auto& c : children) {
    const std::string line = c.Line();
    enrolled += std::atol(line.c_str() + std::strlen("enrolled "));
    if (line.find(" errors 0") == std::string::npos) std::printf("%s\n", line.c_str());
  }
  const double enroll_s = std::chrono::duration<double>(SimClock::now() - enroll_start).count();
  std::printf("enrolled %ld of %d simulated devices in %.1f s (%zu processes)\n", enrolled,
              o.devices, enroll_s, children.size());
  if (enrolled != o.devices) return 1;
  // Every device has heartbeated once before the rollout is made.
  for (auto& c : children) {
    if (c.Line() != "running") return 1;
  }

  const std::string bake = std::to_string(o.bake_s);
  const std::string spec =
      "{\"model\": \"" + model + "\", \"target\": {\"tags\": [\"rollout-load\"]}, \"phases\": [{\"count\": " + std::to_string(o.canary) + ", \"bake_seconds\": " + bake +
      "}, {\"percent\": " + std::to_string(o.second_percent) + ", \"bake_seconds\": " + bake +
      "}, {\"percent\": 100, \"bake_seconds\": " + bake + "}], \"gates\": ["
      "{\"gate\": \"install_failure_rate\", \"threshold\": 0.05, \"action\": \"pause\"}, "
      "{\"gate\": \"offline_after_update\", \"threshold\": 0.05, \"action\": \"pause\"}, "
      "{\"gate\": \"probe_accuracy_drop\", \"threshold\": 0.05, \"action\": \"pause\"}, "
      "{\"gate\": \"feedback_accuracy_drop\", \"threshold\": 0.05, \"action\": \"pause\"}, "
      "{\"gate\": \"p95_over_slo\", \"threshold\": 0.05, \"action\": \"pause\"}]}";
  auto mark = [&](Mark& m, SimClock::time_point t0) {
    m.wall_s = std::chrono::duration<double>(SimClock::now() - t0).count();
    m.server_cpu_s = bench::CpuSeconds(server.pid());
    m.ticks = op.Metric("edgeprune_rollout_ticks_total");
    m.tick_cpu_s = op.Metric("edgeprune_rollout_tick_cpu_seconds_total");
  };
  const auto t0 = SimClock::now();
  std::vector<Mark> marks(1);
  mark(marks[0], t0);
  const std::string rollout = Str(op.Json("POST", "/api/v1/rollouts", spec), "id");
  if (rollout.empty()) return 1;
  std::string state = "running";
  std::int64_t phase = 0;
  // The steps of a phase's last --settled-s seconds before it advanced: with a bake longer than
  // a report interval plus a step, every device of the phase is verified by then and nothing
  // changes but the gates' values, so these steps cost what observing and judging the gates
  // costs (the steps before also start the phase's devices and write their states). Marked
  // every 2 s (not every poll: a scrape renders every device's series).
  struct Quiet {
    Mark first, last;
  };
  std::vector<Quiet> quiet;
  std::vector<Mark> recent;  // this phase's marks, every 2 s
  auto close_phase = [&](const Mark& end) {
    Quiet q;
    for (const Mark& m : recent) {
      if (m.wall_s >= end.wall_s - o.settled_s && q.first.ticks == 0) q.first = m;
    }
    if (q.first.ticks > 0) q.last = recent.back();
    quiet.push_back(q);
    recent.clear();
  };
  auto last_scrape = SimClock::now();
  while (state == "running" && SimClock::now() - t0 < seconds(o.timeout_s)) {
    std::this_thread::sleep_for(milliseconds(500));
    const bj::value list = op.Json("GET", "/api/v1/rollouts?limit=10");
    if (!list.is_object()) continue;
    for (const auto& r : list.as_object().at("items").as_array()) {
      if (Str(r, "id") != rollout) continue;
      state = Str(r, "state");
      const std::int64_t now_phase = r.as_object().at("phase").to_number<std::int64_t>();
      for (; phase < now_phase; ++phase) {
        mark(marks.emplace_back(), t0);
        close_phase(marks.back());
      }
      if (state != "running") {
        mark(marks.emplace_back(), t0);
        close_phase(marks.back());
      } else if (SimClock::now() - last_scrape >= seconds(2)) {
        mark(recent.emplace_back(), t0);
        last_scrape = SimClock::now();
      }
    }
  }
  const long hwm_kb = bench::ProcStatusKb(server.pid(), "VmHWM:");
  const long rss_kb = bench::ProcStatusKb(server.pid(), "VmRSS:");
  const bj::value detail = op.Json("GET", "/api/v1/rollouts/" + rollout);
  // The devices stop when their pipe closes, and report what they did.
  Totals totals;
  for (auto& c : children) close(c.to_child);
  for (auto& c : children) {
    totals.Add(c.Line());
    int status = 0;
    waitpid(c.pid, &status, 0);
    std::fclose(c.from_child);
  }

  std::printf("rollout %s over %d devices: %s (phase %lld), load average before %s, after %s\n",
              rollout.c_str(), o.devices, state.c_str(), static_cast<long long>(phase),
              load_before.c_str(), bench::LoadAverage().c_str());
  if (detail.is_object()) {
    std::printf("phase counts: %s\ngates: %s\n",
                json::Serialize(detail.as_object().at("phase_counts")).c_str(),
                json::Serialize(detail.as_object().at("gates")).c_str());
  }
  std::printf("%-6s %7s %13s %6s %12s %10s | %13s %12s %10s\n", "phase", "wall s",
              "server CPU s", "steps", "CPU ms/step", "per 1k dev", "last steps",
              "CPU ms/step", "per 1k dev");
  for (std::size_t i = 1; i < marks.size(); ++i) {
    const Mark& a = marks[i - 1];
    const Mark& b = marks[i];
    const double steps = b.ticks - a.ticks;
    const double per_step_ms = steps > 0 ? 1000.0 * (b.tick_cpu_s - a.tick_cpu_s) / steps : 0.0;
    const Quiet q = i - 1 < quiet.size() ? quiet[i - 1] : Quiet{};
    const double q_steps = q.last.ticks - q.first.ticks;
    const double q_ms = q_steps > 0 ? 1000.0 * (q.last.tick_cpu_s - q.first.tick_cpu_s) / q_steps : 0.0;
    std::printf("%-6zu %7.1f %13.2f %6.0f %12.2f %10.2f | %13.0f %12.2f %10.2f\n", i - 1,
                b.wall_s - a.wall_s, b.server_cpu_s - a.server_cpu_s, steps, per_step_ms,
                per_step_ms * 1000.0 / o.devices, q_steps, q_ms, q_ms * 1000.0 / o.devices);
  }
  std::printf("server: %.1f CPU s in all (enrollment included), peak RSS (VmHWM) %.1f MiB, RSS "
              "at the end %.1f MiB\n",
              bench::CpuSeconds(server.pid()), hwm_kb / 1024.0, rss_kb / 1024.0);
  std::printf("devices: %ld heartbeats, %ld manifests verified, %ld installs, %.1f MiB payload "
              "fetched, %ld reports, %ld refused, %ld errors%s%s\n",
              totals.n[0], totals.n[1], totals.n[2], static_cast<double>(totals.n[3]) / 1048576.0,
              totals.n[4], totals.n[5], totals.n[6], totals.first_error.empty() ? "" : "; the first: ",
              totals.first_error.c_str());
  server.Stop();
  return state == "completed" && totals.n[5] == 0 ? 0 : 1;
}
