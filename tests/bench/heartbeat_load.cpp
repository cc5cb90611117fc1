// Heartbeat load (not part of CI). One server process (forked: the fleet API on HttpsServer, real
// SQLite, real device CA) and, in this process, N simulated agents, each enrolled with its own
// EC key and certificate and holding its own keep-alive mTLS connection, heartbeating every
// interval seconds, spread evenly over the interval. Prints, side by side in one run:
//   keep-alive mTLS heartbeats (ours)  vs  a fresh TLS connection per heartbeat (baseline)
// with p50/p90/p99/max latency, achieved rate, errors, server CPU and RSS; optionally the idle
// RSS of a real edgeprune-agent process (enrolled, heartbeating, no model).
//
// usage: heartbeat_load [--agents 5000] [--interval-s 10] [--duration-s 60] [--threads 16]
//                       [--server-threads 2] [--agent-bin path/to/edgeprune-agent]
// Build and run: tests/bench/heartbeat_load.sh <build-dir> [flags...]
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/api/fleet_wiring.hpp"
#include "server/http/server.hpp"
#include "server/store/migrator.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

using namespace edgeprune;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int agents = 5000;
  int interval_s = 10;
  int duration_s = 60;
  int threads = 16;
  int server_threads = 2;
  std::string agent_bin;
};

struct Agent {
  std::string cert_file, key_file;
  std::unique_ptr<http::HttpsClient> client;
};

const char* kHeartbeat = R"({"agent_state":"poll","uptime_s":1,"rss_bytes":1048576,"installed_variant_id":null})";

std::pair<std::string, std::string> KeyAndCsr() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  auto drain = [](BIO* b) {
    char* d = nullptr;
    long n = BIO_get_mem_data(b, &d);
    std::string s(d, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  };
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* rb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(rb, req);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return {drain(kb), drain(rb)};
}

long ProcStatusKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field) + 1);
  }
  return -1;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto close = s.rfind(')');
  std::vector<std::string> f;
  std::string tok;
  for (size_t i = close + 2; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ' ') { f.push_back(tok); tok.clear(); } else tok += s[i];
  }
  // utime, stime are fields 14, 15 (1-based); f[0] is field 3.
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Stats {
  double p50, p90, p99, max;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0, 0};
  std::sort(v.begin(), v.end());
  auto q = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))]; };
  return {q(0.5), q(0.9), q(0.99), v.back()};
}

// The server process: fleet + HTTPS on 127.0.0.1:0. Writes "port token" to fd, serves until SIGTERM.
int RunServer(const Options& o, const testing::TestPki& pki, const std::string& dir, int fd) {
  (void)log::SetLevel("warn");
  auto db = store::Database::Open(dir + "/server.db", store::OpenOptions{});
  if (!db.ok()) { std::fprintf(stderr, "%s\n", db.error().ToString().c_str()); return 1; }
  std::shared_ptr<store::Database> database = std::move(db).value();
  auto migrator = store::Migrator::FromDirectory(store::DefaultMigrationsDir());
  if (!migrator.ok() || !migrator->Apply(*database).ok()) { std::fprintf(stderr, "migrate failed\n"); return 1; }
  ConfigSchema schema;
  fleet::AddFleetConfig(schema);
  auto config = Config::Load(schema, "",
                             {"fleet.device_ca_cert=" + pki.client_ca.cert,
                              "fleet.device_ca_key=" + pki.client_ca.key,
                              "fleet.heartbeat_interval_s=" + std::to_string(o.interval_s)},
                             "");
  auto registry = std::make_shared<prometheus::Registry>();
  std::fflush(stdout);
  int saved = dup(1);
  dup2(2, 1);  // the admin token line goes to stderr here
  auto wiring = api::WireFleet(*config, database, registry);
  dup2(saved, 1);
  if (!wiring.ok()) { std::fprintf(stderr, "%s\n", wiring.error().ToString().c_str()); return 1; }
  fleet::EnrollmentTokenSpec spec;
  spec.max_uses = o.agents + 10;
  auto token = wiring->fleet->enrollment_tokens->Create(spec, "bench");
  auto router = std::make_shared<http::Router>(wiring->authenticator);
  for (auto& r : wiring->routes) (void)router->Add(std::move(r));
  auto tls_ctx = tls::MakeServerContext({pki.server.cert, pki.server.key, pki.client_ca.cert,
                                         tls::ClientCertMode::kOptional});
  http::ServerOptions so;
  so.threads = o.server_threads;
  so.idle_timeout = std::chrono::seconds(o.interval_s * 6);
  so.handle_signals = true;
  http::HttpsServer server(so, *tls_ctx, router, std::make_shared<http::HttpMetrics>(registry));
  auto port = server.Start();
  if (!port.ok()) { std::fprintf(stderr, "%s\n", port.error().ToString().c_str()); return 1; }
  wiring->fleet->Start();
  std::string hello = std::to_string(*port) + " " + token->secret + "\n";
  (void)!write(fd, hello.data(), hello.size());
  close(fd);
  server.Wait();
  wiring->fleet->Stop();
  return 0;
}

std::unique_ptr<http::HttpsClient> MakeClient(std::uint16_t port, const std::string& ca,
                                              const std::string& cert, const std::string& key) {
  auto ctx = tls::MakeClientContext({ca, cert, key});
  if (!ctx.ok()) { std::fprintf(stderr, "%s\n", ctx.error().ToString().c_str()); std::exit(1); }
  http::ClientOptions co;
  co.host = "127.0.0.1";
  co.port = port;
  co.tls = *ctx;
  co.timeout = std::chrono::seconds(30);
  return std::make_unique<http::HttpsClient>(co);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--agents") o.agents = std::atoi(v.c_str());
    else if (k == "--interval-s") o.interval_s = std::atoi(v.c_str());
    else if (k == "--duration-s") o.duration_s = std::atoi(v.c_str());
    else if (k == "--threads") o.threads = std::atoi(v.c_str());
    else if (k == "--server-threads") o.server_threads = std::atoi(v.c_str());
    else if (k == "--agent-bin") o.agent_bin = v;
    else { std::fprintf(stderr, "unknown flag %s\n", k.c_str()); return 2; }
  }
  testing::TempDir dir("edgeprune-hbload");
  auto pki = testing::MakeTestPki(dir.path());
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t server = fork();
  if (server == 0) {
    close(fds[0]);
    _exit(RunServer(o, pki, dir.path(), fds[1]));
  }
  close(fds[1]);
  std::string hello;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) hello.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  auto space = hello.find(' ');
  if (space == std::string::npos) { std::fprintf(stderr, "server did not start\n"); return 1; }
  const auto port = static_cast<std::uint16_t>(std::atoi(hello.substr(0, space).c_str()));
  const std::string token = hello.substr(space + 1, hello.find('\n') - space - 1);
  std::printf("server pid %d on 127.0.0.1:%u; %d agents, interval %d s, %d s measured, %d client threads\n",
              server, port, o.agents, o.interval_s, o.duration_s, o.threads);

  // Enroll every simulated agent: own key, own certificate.
  std::vector<Agent> agents(static_cast<size_t>(o.agents));
  std::atomic<int> next{0}, failures{0};
  auto t0 = Clock::now();
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t) {
      ts.emplace_back([&] {
        auto anon = MakeClient(port, pki.ca.cert, "", "");
        for (int i; (i = next++) < o.agents;) {
          auto [key, csr] = KeyAndCsr();
          boost::json::object body{{"token", token}, {"csr_pem", csr}, {"hostname", "sim"}};
          auto r = anon->Post("/agent/v1/enroll", boost::json::serialize(body));
          if (!r.ok() || r->status != 201) { ++failures; continue; }
          auto g = json::ParseObject(r->body);
          auto& a = agents[static_cast<size_t>(i)];
          a.cert_file = dir.WriteFile("a" + std::to_string(i) + ".crt",
                                      std::string(g->at("certificate_pem").as_string()));
          a.key_file = dir.File("a" + std::to_string(i) + ".key");
          (void)fs::WriteFileAtomic(a.key_file, key, 0600);
        }
      });
    }
    for (auto& t : ts) t.join();
  }
  const double enroll_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("enrolled %d agents in %.1f s (%.0f/s), %d failures\n", o.agents - failures.load(),
              enroll_s, (o.agents - failures.load()) / enroll_s, failures.load());

  // Connect: one mTLS handshake + first heartbeat per agent.
  next = 0;
  std::vector<double> connect_ms;
  std::mutex mu;
  t0 = Clock::now();
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < o.threads; ++t) {
      ts.emplace_back([&] {
        std::vector<double> local;
        for (int i; (i = next++) < o.agents;) {
          auto& a = agents[static_cast<size_t>(i)];
          if (a.cert_file.empty()) continue;
          a.client = MakeClient(port, pki.ca.cert, a.cert_file, a.key_file);
          auto s = Clock::now();
          auto r = a.client->Post("/agent/v1/heartbeat", kHeartbeat);
          local.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
          if (!r.ok() || r->status != 200) ++failures;
        }
        std::lock_guard lock(mu);
        connect_ms.insert(connect_ms.end(), local.begin(), local.end());
      });
    }
    for (auto& t : ts) t.join();
  }
  std::printf("connected %zu agents in %.1f s\n", connect_ms.size(),
              std::chrono::duration<double>(Clock::now() - t0).count());

  // Steady state: agent i heartbeats at start + i·interval/N + k·interval.
  std::atomic<long> errors{0}, sent{0};
  std::vector<double> lat_ms;
  std::vector<double> slip_ms;
  const double cpu0 = CpuSeconds(server);
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  const auto end = start + std::chrono::seconds(o.duration_s);
  const auto interval = std::chrono::duration<double>(o.interval_s);
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < o.threads; ++t) {
      ts.emplace_back([&, t] {
        std::vector<double> local, slips;
        for (int k = 0;; ++k) {
          bool any = false;
          for (int i = t; i < o.agents; i += o.threads) {
            auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   interval * (k + static_cast<double>(i) / o.agents));
            if (due >= end) break;
            any = true;
            auto& a = agents[static_cast<size_t>(i)];
            if (!a.client) continue;
            std::this_thread::sleep_until(due);
            auto s = Clock::now();
            slips.push_back(std::chrono::duration<double, std::milli>(s - due).count());
            auto r = a.client->Post("/agent/v1/heartbeat", kHeartbeat);
            local.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
            ++sent;
            if (!r.ok() || r->status != 200) ++errors;
          }
          if (!any) break;
        }
        std::lock_guard lock(mu);
        lat_ms.insert(lat_ms.end(), local.begin(), local.end());
        slip_ms.insert(slip_ms.end(), slips.begin(), slips.end());
      });
    }
    for (auto& t : ts) t.join();
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds(server) - cpu0;
  const long server_rss_kb = ProcStatusKb(server, "VmRSS:");

  // Baseline, same run: a fresh TLS connection (full mTLS handshake) for every heartbeat.
  std::vector<double> fresh_ms;
  const int fresh_n = std::min(500, o.agents);
  for (int i = 0; i < fresh_n; ++i) {
    auto& a = agents[static_cast<size_t>(i)];
    if (a.cert_file.empty()) continue;
    auto c = MakeClient(port, pki.ca.cert, a.cert_file, a.key_file);
    auto s = Clock::now();
    auto r = c->Post("/agent/v1/heartbeat", kHeartbeat);
    fresh_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
    if (!r.ok() || r->status != 200) ++errors;
  }

  auto ka = Summarize(lat_ms);
  auto fr = Summarize(fresh_ms);
  auto sl = Summarize(slip_ms);
  const double target_rate = static_cast<double>(o.agents) / o.interval_s;
  std::printf("\n%-34s %10s %10s %8s\n", "heartbeat latency (ms)", "keep-alive", "fresh-TLS", "ratio");
  std::printf("%-34s %10.2f %10.2f %7.1fx\n", "p50", ka.p50, fr.p50, fr.p50 / ka.p50);
  std::printf("%-34s %10.2f %10.2f %7.1fx\n", "p90", ka.p90, fr.p90, fr.p90 / ka.p90);
  std::printf("%-34s %10.2f %10.2f %7.1fx\n", "p99", ka.p99, fr.p99, fr.p99 / ka.p99);
  std::printf("%-34s %10.2f %10.2f\n", "max", ka.max, fr.max);
  std::printf("%-34s %10zu %10zu\n", "samples", lat_ms.size(), fresh_ms.size());
  std::printf("\nrate: %.0f heartbeats/s achieved (target %.0f/s), %ld sent, %ld errors\n",
              static_cast<double>(sent.load()) / wall, target_rate, sent.load(), errors.load());
  std::printf("client schedule slip p50 %.2f ms, p99 %.2f ms (late sends inflate nothing above)\n",
              sl.p50, sl.p99);
  std::printf("server: %.0f%% of one core (%.1f CPU-s over %.1f s), RSS %.1f MiB with %d connections\n",
              100.0 * cpu / wall, cpu, wall, server_rss_kb / 1024.0, o.agents);
  std::printf("load tool RSS %.1f MiB\n", ProcStatusKb(getpid(), "VmRSS:") / 1024.0);

  if (!o.agent_bin.empty()) {
    // A real agent: enrolled, heartbeating, no model. Sample RSS after two heartbeat intervals.
    std::string state = dir.File("real-agent");
    pid_t agent = fork();
    if (agent == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::string url = "agent.server_url=https://127.0.0.1:" + std::to_string(port);
      std::string ca = "agent.server_ca=" + pki.ca.cert;
      std::string sd = "agent.state_dir=" + state;
      std::string tk = "agent.enrollment_token=" + token;
      execl(o.agent_bin.c_str(), o.agent_bin.c_str(), "run", "--set", url.c_str(), "--set", ca.c_str(),
            "--set", sd.c_str(), "--set", tk.c_str(), "--set", "local_api.port=0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2 * o.interval_s + 5));
    long rss = ProcStatusKb(agent, "VmRSS:");
    long hwm = ProcStatusKb(agent, "VmHWM:");
    std::string st;
    std::ifstream(state + "/state.json") >> st;
    std::printf("\nreal edgeprune-agent idle (enrolled, heartbeating, no model): RSS %.1f MiB, peak %.1f MiB; %s\n",
                rss / 1024.0, hwm / 1024.0, st.c_str());
    kill(agent, SIGTERM);
    waitpid(agent, nullptr, 0);
  }
  for (auto& a : agents) a.client.reset();
  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  return errors.load() == 0 && failures.load() == 0 ? 0 : 1;
}
