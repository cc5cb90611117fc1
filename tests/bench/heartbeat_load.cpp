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
// Build and run: tests/bench/heartbeat_load.sh <build-dir> [flags...]
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/proc_stats.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/process_limits.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/api/fleet_wiring.hpp"
#include "server/http/server.hpp"
#include "server/store/migrator.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

using namespace edgeprune;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

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
};

const char* kHeartbeat =
    R"({"agent_state":"poll","uptime_s":1,"rss_bytes":1048576,"installed_variant_id":null})";
constexpr auto kOpTimeout = std::chrono::seconds(30);

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ---- identities -------------------------------------------------------------------------------

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// What one simulated agent presents: its own key and the certificate the server issued for it.
struct Identity {
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
};

// A fresh EC P-256 key and a CSR signed with it (PEM).
std::pair<std::unique_ptr<EVP_PKEY, PkeyFree>, std::string> KeyAndCsr() {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key.get());
  X509_REQ_sign(req, key.get(), EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(b, req);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);
  std::string csr(d, static_cast<size_t>(n));
  BIO_free(b);
  X509_REQ_free(req);
  return {std::move(key), csr};
}

std::unique_ptr<X509, X509Free> ParseCert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return std::unique_ptr<X509, X509Free>(x);
}

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

// ---- the server process -----------------------------------------------------------------------

// Fleet + HTTPS on 127.0.0.1:0. Writes "port token\n" to fd, serves until SIGTERM.
int RunServer(const Options& o, const testing::TestPki& pki, const std::string& dir, int fd) {
  (void)log::SetLevel("warn");
  auto db = store::Database::Open(dir + "/server.db", store::OpenOptions{});
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.error().ToString().c_str());
    return 1;
  }
  std::shared_ptr<store::Database> database = std::move(db).value();
  auto migrator = store::Migrator::FromDirectory(store::DefaultMigrationsDir());
  if (!migrator.ok() || !migrator->Apply(*database).ok()) {
    std::fprintf(stderr, "migrate failed\n");
    return 1;
  }
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
  if (!wiring.ok()) {
    std::fprintf(stderr, "%s\n", wiring.error().ToString().c_str());
    return 1;
  }
  fleet::EnrollmentTokenSpec spec;
  spec.max_uses = o.agents + 10;
  auto token = wiring->fleet->enrollment_tokens->Create(spec, "bench");
  auto router = std::make_shared<http::Router>(wiring->authenticator);
  for (auto& r : wiring->routes) (void)router->Add(std::move(r));
  auto tls_ctx = tls::MakeServerContext(
      {pki.server.cert, pki.server.key, pki.client_ca.cert, tls::ClientCertMode::kOptional});
  http::ServerOptions so;
  so.threads = o.server_threads;
  so.idle_timeout = std::chrono::seconds(o.interval_s * 6);
  so.handle_signals = true;
  http::HttpsServer server(so, *tls_ctx, router, std::make_shared<http::HttpMetrics>(registry));
  auto port = server.Start();
  if (!port.ok()) {
    std::fprintf(stderr, "%s\n", port.error().ToString().c_str());
    return 1;
  }
  wiring->fleet->Start();
  std::string hello = std::to_string(*port) + " " + token->secret + "\n";
  (void)!write(fd, hello.data(), hello.size());
  close(fd);
  server.Wait();
  wiring->fleet->Stop();
  return 0;
}

// ---- simulated agents -------------------------------------------------------------------------

// One client thread and everything it drives. Only that thread touches the vectors and counters
// while it runs; the main thread reads them after the lane's work has finished.
struct Lane {
  net::io_context ioc{1};
  std::vector<double> connect_ms, keepalive_ms, slip_ms, fresh_ms;
  long sent = 0, errors = 0, reconnects = 0, fresh_errors = 0;
  std::string first_error;
  std::deque<int> to_connect;  // connect phase work list

  void Fail(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

struct Shared {
  std::shared_ptr<net::ssl::context> tls;
  tcp::endpoint server;
  Clock::duration interval{};
  Clock::time_point end{};
  std::atomic<int> connect_pending{0};  // agents whose connect phase has not finished
  std::atomic<int> running{0};          // agents still inside the measured window
};

// One request on one stream: write `req`, read into `res`, call done(ec, status).
template <class Done>
void Exchange(SslStream& s, beast::flat_buffer& buf, const bhttp::request<bhttp::string_body>& req,
              bhttp::response<bhttp::string_body>& res, Done done) {
  beast::get_lowest_layer(s).expires_after(kOpTimeout);
  bhttp::async_write(s, req, [&s, &buf, &res, done](beast::error_code ec, std::size_t) mutable {
    if (ec) return done(ec, 0u);
    res = {};
    beast::get_lowest_layer(s).expires_after(kOpTimeout);
    bhttp::async_read(s, buf, res, [&res, done](beast::error_code ec2, std::size_t) mutable {
      done(ec2, ec2 ? 0u : res.result_int());
    });
  });
}

bhttp::request<bhttp::string_body> HeartbeatRequest() {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/agent/v1/heartbeat", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::user_agent, "edgeprune-load");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = kHeartbeat;
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

// Opens a TLS connection presenting `id`, verifying the server for 127.0.0.1.
template <class Done>
void OpenStream(std::optional<SslStream>& stream, net::io_context& ioc, const Shared& sh,
                const Identity& id, Done done) {
  stream.emplace(ioc, *sh.tls);
  SSL* ssl = stream->native_handle();
  if (SSL_use_certificate(ssl, id.cert.get()) != 1 || SSL_use_PrivateKey(ssl, id.key.get()) != 1) {
    return net::post(ioc, [done]() mutable { done(beast::error_code(net::error::invalid_argument)); });
  }
  stream->set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  auto& tcp_layer = beast::get_lowest_layer(*stream);
  tcp_layer.expires_after(kOpTimeout);
  tcp_layer.async_connect(sh.server, [&stream, done](beast::error_code ec) mutable {
    if (ec) return done(ec);
    beast::error_code ignored;
    beast::get_lowest_layer(*stream).socket().set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(*stream).expires_after(kOpTimeout);
    stream->async_handshake(net::ssl::stream_base::client, done);
  });
}

// A simulated agent: one persistent mTLS stream, a timer, a heartbeat every interval.
class SimAgent {
 public:
  SimAgent(Lane& lane, Shared& sh, Identity id)
      : lane_(lane), sh_(sh), id_(std::move(id)), timer_(lane.ioc), req_(HeartbeatRequest()) {}

  const Identity& identity() const { return id_; }

  // Connect phase: TCP + mTLS handshake + the first heartbeat; then calls next().
  void Connect(std::function<void()> next) {
    const auto t0 = Clock::now();
    OpenStream(stream_, lane_.ioc, sh_, id_, [this, t0, next](beast::error_code ec) {
      if (ec) {
        lane_.Fail("connect: " + ec.message());
        broken_ = true;
        return next();
      }
      Exchange(*stream_, buf_, req_, res_, [this, t0, next](beast::error_code ec2, unsigned status) {
        if (ec2 || status != 200) {
          lane_.Fail(ec2 ? "first heartbeat: " + ec2.message()
                         : "first heartbeat: HTTP " + std::to_string(status));
          broken_ = true;
        } else {
          lane_.connect_ms.push_back(Ms(Clock::now() - t0));
        }
        next();
      });
    });
  }

  // Measured phase: heartbeat at first_due, then every interval until Shared::end.
  void Start(Clock::time_point first_due) {
    due_ = first_due;
    Wait();
  }

 private:
  void Wait() {
    if (due_ >= sh_.end) {
      --sh_.running;
      return;
    }
    timer_.expires_at(due_);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      Beat();
    });
  }

  void Beat() {
    const auto now = Clock::now();
    lane_.slip_ms.push_back(Ms(now - due_));
    if (broken_) {
      // The last exchange failed: reconnect, as a real agent would; the handshake counts in
      // this heartbeat's latency. (Streams are replaced here, in a timer handler, never inside
      // their own completion handlers.)
      ++lane_.reconnects;
      broken_ = false;
      OpenStream(stream_, lane_.ioc, sh_, id_, [this, now](beast::error_code ec) {
        if (ec) {
          lane_.Fail("reconnect: " + ec.message());
          broken_ = true;
          return Next();
        }
        Send(now);
      });
      return;
    }
    Send(now);
  }

  void Send(Clock::time_point sent) {
    ++lane_.sent;
    Exchange(*stream_, buf_, req_, res_, [this, sent](beast::error_code ec, unsigned status) {
      if (ec || status != 200) {
        lane_.Fail(ec ? "heartbeat: " + ec.message() : "heartbeat: HTTP " + std::to_string(status));
        broken_ = true;
      } else {
        lane_.keepalive_ms.push_back(Ms(Clock::now() - sent));
      }
      Next();
    });
  }

  void Next() {
    due_ += sh_.interval;
    Wait();
  }

  Lane& lane_;
  Shared& sh_;
  Identity id_;
  net::steady_timer timer_;
  std::optional<SslStream> stream_;
  beast::flat_buffer buf_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
  Clock::time_point due_{};
  bool broken_ = false;  // the stream failed; reopen before the next heartbeat
};

// The baseline, run in the same window on the same lanes: at a fixed rate, a heartbeat on a
// brand-new connection (TCP + full mTLS handshake + request + response, then close), using the
// identity of one of the simulated agents in turn.
class FreshProber {
 public:
  FreshProber(Lane& lane, Shared& sh, const std::vector<std::unique_ptr<SimAgent>>& agents,
              Clock::duration period, std::size_t first)
      : lane_(lane), sh_(sh), agents_(agents), period_(period), next_id_(first), timer_(lane.ioc),
        req_(HeartbeatRequest()) {}

  void Start(Clock::time_point first_due, std::atomic<int>& running) {
    running_ = &running;
    due_ = first_due;
    Wait();
  }

 private:
  void Wait() {
    if (due_ >= sh_.end || agents_.empty()) {
      --*running_;
      return;
    }
    timer_.expires_at(due_);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) Probe();
    });
  }

  void Probe() {
    const auto t0 = Clock::now();
    const Identity& id = agents_[next_id_ % agents_.size()]->identity();
    next_id_ += 7;  // spread over the fleet
    OpenStream(stream_, lane_.ioc, sh_, id, [this, t0](beast::error_code ec) {
      if (ec) return Done(false);
      Exchange(*stream_, buf_, req_, res_, [this, t0](beast::error_code ec2, unsigned status) {
        if (!ec2 && status == 200) lane_.fresh_ms.push_back(Ms(Clock::now() - t0));
        Done(!ec2 && status == 200);
      });
    });
  }

  void Done(bool ok) {
    if (!ok) ++lane_.fresh_errors;
    // A client that opens a connection per heartbeat closes it after the response (the stream
    // object itself is replaced by the next probe, outside its own handlers).
    beast::error_code ignored;
    if (stream_) beast::get_lowest_layer(*stream_).socket().close(ignored);
    buf_.clear();
    due_ += period_;
    Wait();
  }

  Lane& lane_;
  Shared& sh_;
  const std::vector<std::unique_ptr<SimAgent>>& agents_;
  Clock::duration period_;
  std::size_t next_id_;
  net::steady_timer timer_;
  std::optional<SslStream> stream_;
  beast::flat_buffer buf_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
  Clock::time_point due_{};
  std::atomic<int>* running_ = nullptr;
};

void ConnectNext(Lane& lane, Shared& sh, std::vector<std::unique_ptr<SimAgent>>& agents) {
  if (lane.to_connect.empty()) return;
  const int i = lane.to_connect.front();
  lane.to_connect.pop_front();
  agents[static_cast<size_t>(i)]->Connect([&lane, &sh, &agents] {
    --sh.connect_pending;
    ConnectNext(lane, sh, agents);
  });
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
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (o.agents < 0 || o.interval_s < 1 || o.duration_s < 1 || o.threads < 1 ||
      o.server_threads < 1 || o.connect_concurrency < 1 || o.fresh_per_s < 0 ||
      o.enroll_threads < 1) {
    std::fprintf(stderr, "flags out of range (agents >= 0, every count and time >= 1)\n");
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
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return 1;
  pid_t server = fork();
  if (server == 0) {
    close(pipe_fds[0]);
    _exit(RunServer(o, pki, dir.path(), pipe_fds[1]));
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
  const auto port = static_cast<std::uint16_t>(std::atoi(hello.substr(0, space).c_str()));
  const std::string token = hello.substr(space + 1, hello.find('\n') - space - 1);
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
              ++enroll_failures;
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
  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  return ok ? 0 : 1;
}
