#pragma once
// The harness of the end-to-end tests (tests/e2e/): one real `edgeprune-server serve` shared by
// the suite, real `edgeprune-agent run` processes, and the operator calls the cases make. See
// full_loop_test.cpp for what the cases cover.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/build_paths.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/tls.hpp"
#include "local_api_client.hpp"
#include "server/store/database.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::e2e {

namespace bj = boost::json;
using edgeprune::testing::Process;
using edgeprune::testing::TempDir;
using edgeprune::testing::WaitUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline constexpr int kProbeSamples = 50;

// What the harness runs; a benchmark (tests/bench/agent_memory.cpp) may point them elsewhere
// before the suite starts.
inline std::string agent_bin = edgeprune::testing::AgentBin();
inline std::string master_file =
    edgeprune::testing::SourceDir() + "/tests/fixtures/models/lenet5_scripted.pt";

struct ApiResult {
  int status = 0;  // 0: no answer (server down)
  bj::value body;
  std::string raw;
};

inline std::string Str(const bj::value& v, const char* key) {
  if (!v.is_object()) return "";
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

inline std::int64_t Int(const bj::value& v, const char* key) {
  if (!v.is_object()) return -1;
  const auto* p = v.as_object().if_contains(key);
  if (!p) return -1;
  if (p->is_int64()) return p->as_int64();
  if (p->is_uint64()) return static_cast<std::int64_t>(p->as_uint64());
  if (p->is_double()) return static_cast<std::int64_t>(p->as_double());
  return -1;
}

// The value of an unlabeled gauge/counter in Prometheus text, or -1.
inline double PromValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

inline std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// ---- Response capture for the API contract check ----------------------------------------------

// When EDGEPRUNE_API_CAPTURE names a file, every answer the harness gets from the server is
// written to it as one JSON line {method, target, status, content_type, body (JSON or null)};
// tools/openapi/check_openapi.py validates them against server/api/openapi.json (the `openapi`
// CTest). The file is truncated by the first answer of the process, so it holds one run.
inline void CaptureResponse(const std::string& method, const std::string& target, int status,
                            const std::string& content_type, const std::string& body) {
  static const char* path = std::getenv("EDGEPRUNE_API_CAPTURE");
  if (path == nullptr || *path == '\0') return;
  static std::mutex mu;
  static std::ofstream out(path, std::ios::trunc);
  bj::value parsed = nullptr;
  if (content_type.find("json") != std::string::npos) {
    boost::system::error_code ec;
    parsed = bj::parse(body, ec);
    if (ec) parsed = bj::value(body);  // not JSON after all: the check reports it
  }
  bj::object line{{"method", method}, {"target", target}, {"status", status},
                  {"content_type", content_type}, {"body", parsed}};
  std::lock_guard<std::mutex> lock(mu);
  out << bj::serialize(line) << "\n";
  out.flush();
}

// ---- The shared server ----------------------------------------------------------------------

struct Suite {
  TempDir dir{"edgeprune-e2e"};
  edgeprune::testing::TestPki pki;
  std::string config_path;
  std::string data_dir;
  std::string trust_dir;  // the server's signing public key, for the agents
  std::string token;
  std::unique_ptr<Process> server;
  std::uint16_t port = 0;
  int server_starts = 0;
  std::unique_ptr<http::HttpsClient> client;
  std::string master_path;
  std::string model_a;
  std::string ready_x;  // a ready variant of model_a for an uncapped device, once built
  int agents_made = 0;

  Suite() : pki(edgeprune::testing::MakeTestPki(dir.path())) {}

  void StartServer() {
    std::vector<std::string> args = {"serve", "--config", config_path};
    if (port != 0) {
      // A restart keeps the port the agents know.
      args.push_back("--set");
      args.push_back("server.listen_port=" + std::to_string(port));
    }
    const auto logs = dir.Subdir("server-" + std::to_string(++server_starts));
    server = std::make_unique<Process>(edgeprune::testing::ProcessOptions{
        .program = edgeprune::testing::ServerBin(), .args = args, .env = {}, .working_dir = dir.path(),
        .output_dir = logs});
    auto p = server->WaitForListening(seconds(60));
    ASSERT_TRUE(p.has_value()) << "server did not start:\n" << server->Stdout() << server->Stderr();
    port = *p;
    client.reset();
  }

  http::HttpsClient& Client() {
    if (!client) {
      auto ctx = tls::MakeClientContext({pki.ca_cert(), "", ""});
      EXPECT_TRUE(ctx.ok());
      http::ClientOptions o;
      o.host = "127.0.0.1";
      o.port = port;
      o.tls = *ctx;
      o.timeout = seconds(30);
      client = std::make_unique<http::HttpsClient>(o);
    }
    return *client;
  }

  ApiResult Call(const std::string& method, const std::string& target, std::string body = "",
                 const std::string& content_type = "application/json") {
    http::ClientRequest req;
    req.method = method;
    req.target = target;
    req.headers = {{"Authorization", "Bearer " + token}};
    if (!body.empty() || method == "POST") {
      req.headers.emplace_back("Content-Type", content_type);
      req.body = std::move(body);
    }
    auto resp = Client().Send(req);
    ApiResult r;
    if (!resp.ok()) {
      Client().Close();
      r.raw = resp.error().ToString();
      return r;
    }
    r.status = resp->status;
    r.raw = resp->body;
    CaptureResponse(method, target, r.status, resp->Header("content-type"), r.raw);
    if (resp->Header("content-type").find("json") != std::string::npos) {
      boost::system::error_code ec;
      r.body = bj::parse(resp->body, ec);
    }
    return r;
  }

  std::string Metrics() {
    auto r = Call("GET", "/metrics");
    return r.status == 200 ? r.raw : "";
  }

  std::string UploadMaster(const std::string& name) {
    auto bytes = fs::ReadFile(master_path);
    EXPECT_TRUE(bytes.ok());
    auto r = Call("POST",
                  "/api/v1/models?name=" + name + "&dataset=fashion-mnist&input_shape=1,28,28",
                  *bytes, "application/octet-stream");
    EXPECT_EQ(r.status, 201) << r.raw;
    return Str(r.body, "id");
  }

  std::string NewEnrollmentToken() {
    auto r = Call("POST", "/api/v1/enrollment-tokens", "{}");
    EXPECT_EQ(r.status, 201) << r.raw;
    return Str(r.body, "token");
  }

  // Deploys model to one device; returns the deployment's answer.
  ApiResult Deploy(const std::string& model, const std::string& device) {
    auto r = Call("POST", "/api/v1/deployments",
                  "{\"model\": " + Quote(model) + ", \"selector\": {\"devices\": [" +
                      Quote(device) + "]}}");
    EXPECT_EQ(r.status, 201) << r.raw;
    return r;
  }

  // The model's ladder entry for a variant id (null when absent).
  bj::value Variant(const std::string& model, const std::string& variant) {
    auto r = Call("GET", "/api/v1/models/" + model + "/variants");
    if (r.status != 200) return nullptr;
    for (const auto& v : r.body.as_object()["items"].as_array()) {
      if (Str(v, "id") == variant) return v;
    }
    return nullptr;
  }

  // The variant a deployment gives its single device: the assigned one, or the one building for
  // the device's bucket.
  std::string TargetOf(const std::string& model, const ApiResult& deployed) {
    const auto& a = deployed.body.as_object().at("assignments").as_array().at(0);
    if (Str(a, "state") == "assigned") return Str(a, "variant_id");
    auto r = Call("GET", "/api/v1/models/" + model + "/variants");
    for (const auto& v : r.body.as_object()["items"].as_array()) {
      if (Str(v, "bucket") == Str(a, "bucket")) return Str(v, "id");
    }
    return "";
  }

  // Audit entries of an action on a target by one device.
  std::vector<bj::object> Audit(const std::string& action, const std::string& target,
                                const std::string& device) {
    auto r = Call("GET", "/api/v1/audit?action=" + action + "&target=" + target + "&limit=1000");
    std::vector<bj::object> out;
    if (r.status != 200) return out;
    for (const auto& e : r.body.as_object()["items"].as_array()) {
      if (Str(e, "actor") == "device:" + device) out.push_back(e.as_object());
    }
    return out;
  }

  std::int64_t TotalReports(const std::string& device) {
    auto r = Call("GET", "/api/v1/devices/" + device + "/telemetry?limit=1");
    return r.status == 200 ? Int(r.body, "total_reports") : -1;
  }
};

inline Suite* suite = nullptr;

// ---- Agents ---------------------------------------------------------------------------------

class Agent {
 public:
  // sets: extra `--set key=value` items for every start.
  explicit Agent(std::vector<std::string> sets = {}, std::string trust_dir = "")
      : sets_(std::move(sets)),
        trust_dir_(trust_dir.empty() ? suite->trust_dir : std::move(trust_dir)) {
    name_ = "agent-" + std::to_string(++suite->agents_made);
    state_dir_ = suite->dir.File(name_ + "/state");
    token_ = suite->NewEnrollmentToken();
  }

  // Starts `edgeprune-agent run` and waits until it polls; the first start enrolls.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run"};
    auto set = [&args](const std::string& kv) {
      args.push_back("--set");
      args.push_back(kv);
    };
    set("agent.server_url=https://127.0.0.1:" + std::to_string(suite->port));
    set("agent.server_ca=" + suite->pki.ca_cert());
    set("agent.state_dir=" + state_dir_);
    set("agent.hostname=e2e-" + name_);
    set("agent.bench_ms=80");
    set("agent.heartbeat_interval_s=1");
    set("agent.backoff_base_ms=100");
    set("agent.backoff_cap_ms=500");
    set("agent.request_timeout_ms=5000");
    set("local_api.port=0");
    set("probe.samples=" + std::to_string(kProbeSamples));
    set("runtime.warmup_iterations=1");
    set("telemetry.interval_s=1");
    set("trust.keys_dir=" + trust_dir_);
    if (runs_ == 0) set("agent.enrollment_token=" + token_);
    for (const auto& kv : sets_) set(kv);
    for (const auto& kv : extra) set(kv);
    const auto logs = suite->dir.Subdir(name_ + "/run-" + std::to_string(++runs_));
    proc_ = std::make_unique<Process>(edgeprune::testing::ProcessOptions{
        .program = agent_bin, .args = args, .env = {}, .working_dir = "",
        .output_dir = logs});
    auto api = proc_->WaitForMatch(std::regex(R"(local api on [0-9.]+:(\d+))"), seconds(60));
    ASSERT_TRUE(api) << Log();
    local_port_ = static_cast<std::uint16_t>(std::stoi((*api)[1]));
    auto polling = proc_->WaitForMatch(std::regex("agent (dev-[0-9a-f]+): polling"), seconds(90));
    ASSERT_TRUE(polling) << Log();
    if (device_id_.empty()) device_id_ = (*polling)[1];
    ASSERT_EQ((*polling)[1], device_id_) << "a restart keeps the identity";
  }

  void Kill() {
    proc_->Signal(SIGKILL);
    proc_->Wait(seconds(20));
  }
  int Stop() { return proc_ ? proc_->Stop() : 0; }

  bool WaitServing(const std::string& variant, seconds timeout) {
    return WaitLine(": serving " + variant, timeout);
  }
  bool WaitLine(const std::string& text, seconds timeout) {
    return proc_->WaitForLine(text, timeout).has_value();
  }

  edgeprune::testing::PlainResponse Local(const std::string& method, const std::string& target,
                                          const std::string& body = "") {
    edgeprune::testing::PlainClient c(local_port_);
    return c.Send(method, target, body, {{"Content-Type", "application/json"}});
  }

  // One inference on a constant image; returns the parsed answer (null when not 200).
  bj::value Infer() {
    std::string body = "{\"shape\": [1,1,28,28], \"data\": [";
    for (int i = 0; i < 28 * 28; ++i) body += i ? ",0.5" : "0.5";
    body += "]}";
    auto r = Local("POST", "/v1/infer", body);
    if (r.status != 200) return nullptr;
    boost::system::error_code ec;
    auto v = bj::parse(r.body, ec);
    return ec ? bj::value(nullptr) : v;
  }

  // (reports made, reports queued) from the agent's /metrics; (-1, -1) when unreadable.
  std::pair<std::int64_t, std::int64_t> TelemetryCounts() {
    try {
      auto r = Local("GET", "/metrics");
      if (r.status != 200) return {-1, -1};
      return {static_cast<std::int64_t>(PromValue(r.body, "edgeprune_agent_telemetry_reports")),
              static_cast<std::int64_t>(PromValue(r.body, "edgeprune_agent_telemetry_queued"))};
    } catch (const std::exception&) {
      return {-1, -1};
    }
  }

  std::string Log() const {
    return proc_ ? proc_->Stdout() + proc_->Stderr() : std::string("(not started)");
  }

  // Whether the running agent has LibTorch mapped (it opens the runtime module only to load a
  // model; the profile's microbenchmarks run in a child).
  bool MapsLibTorch() const {
    std::ifstream maps("/proc/" + std::to_string(proc_->pid()) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("libtorch_cpu") != std::string::npos) return true;
    }
    return false;
  }
  const std::string& device_id() const { return device_id_; }
  const std::string& state_dir() const { return state_dir_; }
  std::uint16_t local_port() const { return local_port_; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }

 private:
  std::vector<std::string> sets_;
  std::string trust_dir_;
  std::string name_, state_dir_, token_, device_id_;
  std::unique_ptr<Process> proc_;
  std::uint16_t local_port_ = 0;
  int runs_ = 0;
};

// Waits until the server has stored every report the agent made and the agent has nothing
// queued: the count stored equals the count made.
inline ::testing::AssertionResult AllReportsArrived(Agent& agent, seconds timeout) {
  std::int64_t made = -1, queued = -1, stored = -1;
  const bool ok = WaitUntil(
      [&] {
        std::tie(made, queued) = agent.TelemetryCounts();
        stored = suite->TotalReports(agent.device_id());
        return made > 0 && queued == 0 && stored == made;
      },
      timeout, milliseconds(100));
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "agent made " << made << " reports, " << queued
                                       << " queued; the server stored " << stored;
}

class FullLoopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite();
    auto& s = *suite;
    s.data_dir = s.dir.File("data");
    s.trust_dir = s.dir.Subdir("trust");
    s.master_path = master_file;
    std::ostringstream toml;
    toml << "[server]\n"
         << "listen_host = \"127.0.0.1\"\nlisten_port = 0\nthreads = 2\n"
         << "tls_cert = " << Quote(s.pki.server_cert()) << "\n"
         << "tls_key = " << Quote(s.pki.server_key()) << "\n"
         << "client_ca = " << Quote(s.pki.client_ca_cert()) << "\n"
         << "data_dir = " << Quote(s.data_dir) << "\n"
         << "[limits]\nbody_bytes = 8388608\n"
         << "[fleet]\n"
         << "device_ca_cert = " << Quote(s.pki.client_ca.cert) << "\n"
         << "device_ca_key = " << Quote(s.pki.client_ca.key) << "\n"
         << "heartbeat_interval_s = 1\nflush_interval_ms = 200\n"
         // The dataset (and the agents' probe set) at the dataset package's default place.
         << "[variants]\n"
         << "train_limit = 500\ntest_limit = " << kProbeSamples << "\n"
         << "finetune_steps = 10\nfinetune_seconds = 20\nstep_finetune_steps = 10\n"
         // Telemetry must not move the test's devices: no SLO breach streak can be reached.
         << "[closed_loop]\nbreach_reports = 1000\n"
         // Rollouts step every second, as often as the agents report.
         << "[rollouts]\ntick_seconds = 1\n";
    s.config_path = s.dir.WriteFile("server.toml", toml.str());
    // The operator token, made with the CLI on the fresh data dir before the server's first
    // start.
    Process token({.program = edgeprune::testing::ServerBin(),
                   .args = {"token", "--config", s.config_path, "create", "--name", "e2e",
                            "--role", "admin"}});
    ASSERT_EQ(token.Wait(seconds(60)), 0) << token.Stderr();
    s.token = token.Stdout();
    while (!s.token.empty() && (s.token.back() == '\n' || s.token.back() == '\r')) {
      s.token.pop_back();
    }
    ASSERT_FALSE(s.token.empty());
    s.StartServer();
    // The server made its signing key on first start; agents trust its public half.
    std::filesystem::copy_file(s.data_dir + "/signing.pub", s.trust_dir + "/signing.pub");
    s.model_a = s.UploadMaster("lenet5-a");
    ASSERT_FALSE(s.model_a.empty());
  }

  static void TearDownTestSuite() {
    if (const char* keep = std::getenv("EDGEPRUNE_E2E_KEEP"); keep && *keep && suite) {
      // Server and agent logs (and their state) for a post-mortem; the temp dir goes away.
      if (suite->server) suite->server->Stop();
      std::error_code ec;
      std::filesystem::copy(suite->dir.path(), keep,
                            std::filesystem::copy_options::recursive |
                                std::filesystem::copy_options::overwrite_existing,
                            ec);
    }
    delete suite;
    suite = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(suite && suite->server && suite->server->Running()) << "no server";
    ASSERT_FALSE(suite->model_a.empty());
  }

  // Runs an agent through deploy → build → install of model A and returns the variant.
  static void DeployAndInstall(Agent& agent, std::string* variant) {
    auto deployed = suite->Deploy(suite->model_a, agent.device_id());
    ASSERT_EQ(deployed.status, 201);
    *variant = suite->TargetOf(suite->model_a, deployed);
    ASSERT_FALSE(variant->empty()) << deployed.raw;
    ASSERT_TRUE(agent.WaitServing(*variant, seconds(180)))
        << "variant " << *variant << " not served\n"
        << agent.Log() << "\nserver:\n" << suite->server->Stderr();
    if (suite->ready_x.empty()) suite->ready_x = *variant;
  }

  // A ready variant of model A that an uncapped device is assigned (built on first need).
  static std::string ReadyX() {
    if (suite->ready_x.empty()) {
      Agent seed;
      seed.Start();
      std::string v;
      DeployAndInstall(seed, &v);
      seed.Stop();
    }
    return suite->ready_x;
  }
};

// Sets the roll-back flag of a device's assignment in the server's database, as a server that
// does not (or does) grant the permission would have it.
inline void SetRollbackFlag(const std::string& device_id, bool rollback) {
  auto db = store::Database::Open(suite->data_dir + "/edgeprune.db", store::OpenOptions{});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  auto lease = (*db)->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.error().ToString();
  auto r = (*lease)->Execute("e2e_rollback",
                             "UPDATE device_assignments SET rollback = ? WHERE device_id = ?",
                             static_cast<std::int64_t>(rollback), device_id);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
}

}  // namespace edgeprune::e2e
