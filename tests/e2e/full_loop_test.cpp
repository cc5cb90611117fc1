// The product's main loop end to end: the real `edgeprune-server serve` and real
// `edgeprune-agent run` processes over loopback (real mTLS, real SQLite files, real LibTorch
// builds of a small committed master, Fashion-MNIST from the system's dataset package), and the
// failures the loop must survive: a damaged payload, an unknown signing key, a downgrade, a cut
// download, the server and an agent killed with SIGKILL.
//
// One server serves the whole suite (started on port 0 by SetUpTestSuite, restarted on the same
// port by the kill cases); every case enrolls its own agents, so the cases stay independent. The
// first ready variant of the master is built lazily by whichever case needs it first.
// EDGEPRUNE_E2E_KEEP=<dir> copies the run's server and agent logs there at the end.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
namespace {

namespace bj = boost::json;
using edgeprune::testing::Process;
using edgeprune::testing::TempDir;
using edgeprune::testing::WaitUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kProbeSamples = 50;

struct ApiResult {
  int status = 0;  // 0: no answer (server down)
  bj::value body;
  std::string raw;
};

std::string Str(const bj::value& v, const char* key) {
  if (!v.is_object()) return "";
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

std::int64_t Int(const bj::value& v, const char* key) {
  if (!v.is_object()) return -1;
  const auto* p = v.as_object().if_contains(key);
  if (!p) return -1;
  if (p->is_int64()) return p->as_int64();
  if (p->is_uint64()) return static_cast<std::int64_t>(p->as_uint64());
  if (p->is_double()) return static_cast<std::int64_t>(p->as_double());
  return -1;
}

// The value of an unlabeled gauge/counter in Prometheus text, or -1.
double PromValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

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
        .program = EDGEPRUNE_SERVER_BIN, .args = args, .env = {}, .working_dir = dir.path(),
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
    for (const auto& v : r.body.as_object()["variants"].as_array()) {
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
    for (const auto& v : r.body.as_object()["variants"].as_array()) {
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

Suite* suite = nullptr;

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
        .program = EDGEPRUNE_AGENT_BIN, .args = args, .env = {}, .working_dir = "",
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
  const std::string& device_id() const { return device_id_; }
  const std::string& state_dir() const { return state_dir_; }

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
::testing::AssertionResult AllReportsArrived(Agent& agent, seconds timeout) {
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
    s.master_path = std::string(EDGEPRUNE_SOURCE_DIR) + "/tests/fixtures/models/lenet5_scripted.pt";
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
         << "finetune_steps = 10\nfinetune_seconds = 20\n"
         // Telemetry must not move the test's devices: no SLO breach streak can be reached.
         << "[closed_loop]\nbreach_reports = 1000\n";
    s.config_path = s.dir.WriteFile("server.toml", toml.str());
    // The operator token, made with the CLI on the fresh data dir before the server's first
    // start.
    Process token({.program = EDGEPRUNE_SERVER_BIN,
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

// 1. enroll → profile → deploy → build → sign → download → verify → install → infer → telemetry.
TEST_F(FullLoopTest, HappyPathFromEnrollmentToTelemetry) {
  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  // Enrolled and profiled: the server knows the device and computed its budget.
  auto device = suite->Call("GET", "/api/v1/devices/" + dev);
  ASSERT_EQ(device.status, 200) << device.raw;
  EXPECT_EQ(Str(device.body, "status"), "active");
  EXPECT_TRUE(device.body.as_object()["budget"].is_object()) << device.raw;

  std::string variant;
  DeployAndInstall(agent, &variant);
  // Built, signed, ready in the ladder.
  auto v = suite->Variant(suite->model_a, variant);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(Str(v, "status"), "ready");
  EXPECT_FALSE(Str(v, "key_id").empty());
  EXPECT_GT(Int(v, "size_bytes"), 0);
  // The agent reported the install; the heartbeat carries it.
  EXPECT_TRUE(WaitUntil([&] { return !suite->Audit("variant.installed", variant, dev).empty(); },
                        seconds(20)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        return Str(d.body, "installed_variant") == variant;
      },
      seconds(20)));

  // Local inference answers with a class and the variant that computed it.
  for (int i = 0; i < 5; ++i) {
    auto answer = agent.Infer();
    ASSERT_TRUE(answer.is_object()) << agent.Log();
    EXPECT_EQ(Str(answer, "variant_id"), variant);
    const auto cls = Int(answer, "class");
    EXPECT_GE(cls, 0);
    EXPECT_LT(cls, 10);
  }

  // Telemetry: reports of this variant reach the server, with probe metrics and the live
  // inferences; /metrics shows the device's series.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto t = suite->Call("GET", "/api/v1/devices/" + dev + "/telemetry?limit=1000");
        if (t.status != 200) return false;
        std::int64_t inferences = 0;
        for (const auto& r : t.body.as_object()["reports"].as_array()) {
          if (Str(r, "variant_id") != variant) continue;
          inferences += std::max<std::int64_t>(0, Int(r, "inference_count"));
        }
        return inferences >= 5;
      },
      seconds(30), milliseconds(200)))
      << agent.Log();
  auto t = suite->Call("GET", "/api/v1/devices/" + dev + "/telemetry?limit=1");
  EXPECT_EQ(Str(t.body, "assigned_variant"), variant);
  const auto& newest = t.body.as_object()["reports"].as_array().at(0);
  EXPECT_EQ(Str(newest, "variant_id"), variant);
  const auto* probe = newest.as_object().if_contains("probe_accuracy");
  ASSERT_TRUE(probe && probe->is_number()) << t.raw;
  EXPECT_GE(probe->to_number<double>(), 0.0);
  EXPECT_LE(probe->to_number<double>(), 1.0);
  const std::string metrics = suite->Metrics();
  EXPECT_NE(metrics.find("device=\"" + dev + "\""), std::string::npos);
  EXPECT_NE(metrics.find("edgeprune_device_inferences_total"), std::string::npos);
  EXPECT_TRUE(std::regex_search(metrics, std::regex("edgeprune_device_[a-z_]+\\{[^}]*device=\"" +
                                                    dev + "\"[^}]*variant=\"" + variant + "\"")) ||
              std::regex_search(metrics, std::regex("edgeprune_device_[a-z_]+\\{[^}]*variant=\"" +
                                                    variant + "\"[^}]*device=\"" + dev + "\"")))
      << metrics;
  EXPECT_EQ(agent.Stop(), 0) << agent.Log();
}

// 2. One flipped payload byte: refused (never installed), reported with its reason on each
// attempt, refused for good after three; once the bytes are right again a restarted agent
// installs it.
TEST_F(FullLoopTest, FlippedPayloadByteIsRefusedAndReported) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::string sha = Str(v, "sha256");
  ASSERT_EQ(sha.size(), 64u) << bj::serialize(v);
  const std::string blob = suite->data_dir + "/blobs/" + sha.substr(0, 2) + "/" + sha.substr(2);
  const auto offset = static_cast<std::streamoff>(Int(v, "size_bytes") / 2);
  auto flip = [&] {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << blob;
    f.seekg(offset);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(offset);
    f.write(&c, 1);
  };
  flip();
  struct Restore {
    std::function<void()> fn;
    ~Restore() { if (fn) fn(); }
  } restore{flip};

  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  auto deployed = suite->Deploy(suite->model_a, dev);
  ASSERT_EQ(suite->TargetOf(suite->model_a, deployed), x);
  ASSERT_TRUE(WaitUntil([&] { return suite->Audit("variant.refused", x, dev).size() >= 3; },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  ASSERT_EQ(refusals.size(), 3u) << "three attempts, then refused for good";
  for (const auto& e : refusals) {
    EXPECT_NE(Str(e, "detail").find("payload_digest_mismatch"), std::string::npos)
        << bj::serialize(e);
  }
  // Newest first: the last attempt says it gave up.
  EXPECT_NE(Str(refusals.front(), "detail").find("refused for good"), std::string::npos)
      << bj::serialize(refusals.front());
  // Nothing installed: no model serves, the server sees none, no stray files stay behind.
  EXPECT_FALSE(agent.Infer().is_object());
  EXPECT_TRUE(suite->Audit("variant.installed", x, dev).empty());
  auto d = suite->Call("GET", "/api/v1/devices/" + dev);
  EXPECT_EQ(Str(d.body, "installed_variant"), "");
  EXPECT_FALSE(std::filesystem::exists(agent.state_dir() + "/installed.json"));
  EXPECT_EQ(agent.Log().find(": serving " + x), std::string::npos);

  // The operator repairs the blob; a restarted agent tries again and installs it.
  restore.fn();
  restore.fn = nullptr;
  EXPECT_EQ(agent.Stop(), 0);
  agent.Start();
  EXPECT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 3. A manifest signed by a key the agent does not trust: refused before any payload byte and
// reported with its reason.
TEST_F(FullLoopTest, ManifestSignedByAnUnknownKeyIsRefusedAndReported) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  const std::string other_trust = suite->dir.Subdir("other-trust");
  auto other = crypto::GenerateEd25519();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(other_trust + "/other.pub", other->public_pem, 0644).ok());

  Agent agent({}, other_trust);
  agent.Start();
  const std::string dev = agent.device_id();
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil([&] { return !suite->Audit("variant.refused", x, dev).empty(); },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  EXPECT_NE(Str(refusals.front(), "detail").find("unknown_signing_key"), std::string::npos)
      << bj::serialize(refusals.front());
  EXPECT_FALSE(agent.Infer().is_object());
  EXPECT_FALSE(std::filesystem::exists(agent.state_dir() + "/variants/.partial/" + x + ".v" +
                                       std::to_string(Int(suite->Variant(suite->model_a, x),
                                                          "version")) +
                                       ".part"))
      << "no payload byte fetched";
  // Refused for good: no second attempt while the assignment stays.
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(suite->Audit("variant.refused", x, dev).size(), 1u);
  EXPECT_EQ(agent.Stop(), 0);
}

// 4. A downgrade without the signed roll-back permission is refused. The product produces one
// when a device's assignment passes through "no variant yet" (a deployment of another model still
// building) before it lands on an older variant: the server then has no variant to compare with
// and grants no roll-back, though the device still runs the newer one.
// Sets the roll-back flag of a device's assignment in the server's database, as a server that
// does not (or does) grant the permission would have it.
void SetRollbackFlag(const std::string& device_id, bool rollback) {
  auto db = store::Database::Open(suite->data_dir + "/edgeprune.db", store::OpenOptions{});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  auto lease = (*db)->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.error().ToString();
  auto r = (*lease)->Execute("e2e_rollback",
                             "UPDATE device_assignments SET rollback = ? WHERE device_id = ?",
                             static_cast<std::int64_t>(rollback), device_id);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
}

TEST_F(FullLoopTest, DowngradeIsRefusedWithoutRollbackAndInstalledWithIt) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  const std::int64_t x_version = Int(suite->Variant(suite->model_a, x), "version");
  const std::string model_b = suite->UploadMaster("lenet5-b");
  const std::string model_c = suite->UploadMaster("lenet5-c");

  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  // Newer: model B's variant, built now, so its version is above X's.
  auto deployed_b = suite->Deploy(model_b, dev);
  const std::string y = suite->TargetOf(model_b, deployed_b);
  ASSERT_FALSE(y.empty()) << deployed_b.raw;
  ASSERT_TRUE(agent.WaitServing(y, seconds(180))) << agent.Log();
  const std::int64_t y_version = Int(suite->Variant(model_b, y), "version");
  ASSERT_GT(y_version, x_version);
  // The server has recorded (from the heartbeats) that the device runs Y.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        return d.status == 200 && d.body.is_object() &&
               d.body.as_object().contains("installed_variant") &&
               d.body.as_object().at("installed_variant").is_string() &&
               d.body.as_object().at("installed_variant").as_string() == y;
      },
      seconds(30), milliseconds(200)));
  ASSERT_EQ(agent.Stop(), 0);
  std::this_thread::sleep_for(milliseconds(500));  // the last heartbeat flushed

  // Model C: its build starts, so the device has no assigned variant for a while.
  auto deployed_c = suite->Deploy(model_c, dev);
  const auto& ac = deployed_c.body.as_object().at("assignments").as_array().at(0);
  ASSERT_EQ(Str(ac, "state"), "building") << deployed_c.raw;
  const std::string z = suite->TargetOf(model_c, deployed_c);
  const std::string job = Str(suite->Variant(model_c, z), "job_id");
  // Back to model A: X is ready and older than the Y the device still runs, so the assignment
  // carries the roll-back permission although the last assignment had no variant at all.
  auto deployed_a = suite->Deploy(suite->model_a, dev);
  const auto& aa = deployed_a.body.as_object().at("assignments").as_array().at(0);
  ASSERT_EQ(Str(aa, "variant_id"), x) << deployed_a.raw;
  ASSERT_TRUE(aa.as_object().contains("rollback")) << deployed_a.raw;
  EXPECT_TRUE(aa.as_object().at("rollback").as_bool()) << deployed_a.raw;
  if (!job.empty()) suite->Call("DELETE", "/api/v1/jobs/" + job);

  // Without the permission (as a server that does not grant it would send): refused, Y stays.
  SetRollbackFlag(dev, false);
  agent.Start();
  ASSERT_TRUE(WaitUntil([&] { return !suite->Audit("variant.refused", x, dev).empty(); },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  EXPECT_NE(Str(refusals.front(), "detail").find("version_not_newer"), std::string::npos)
      << bj::serialize(refusals.front());
  auto answer = agent.Infer();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(Str(answer, "variant_id"), y);
  ASSERT_EQ(agent.Stop(), 0);

  // With it, the signed roll-back manifest installs X (a restart forgets the earlier refusal).
  SetRollbackFlag(dev, true);
  agent.Start();
  ASSERT_TRUE(agent.WaitServing(x, seconds(120))) << agent.Log();
  answer = agent.Infer();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(Str(answer, "variant_id"), x);
  EXPECT_EQ(agent.Stop(), 0);
}

// 5. A download cut at half resumes where it stopped: the agent is SIGKILLed after its first
// chunk (of two) reached the disk; restarted, it asks for the rest only.
TEST_F(FullLoopTest, DownloadCutAtHalfResumes) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::int64_t size = Int(v, "size_bytes");
  const std::int64_t chunk = (size + 1) / 2;
  ASSERT_GE(chunk, 1024);
  // Two chunks; the rate cap holds the second back ~4 s so the kill lands between them.
  Agent agent({"download.chunk_bytes=" + std::to_string(chunk)});
  agent.Start({"download.max_bytes_per_s=" + std::to_string(chunk / 4)});
  const std::string dev = agent.device_id();
  const std::string partial = agent.state_dir() + "/variants/.partial/" + x + ".v" +
                              std::to_string(Int(v, "version")) + ".part";
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::error_code ec;
        return static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)) == chunk;
      },
      seconds(60), milliseconds(5)))
      << agent.Log();
  agent.Kill();
  std::error_code ec;
  ASSERT_EQ(static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)), chunk)
      << "the kill came after the first chunk and before the second";

  agent.Start();
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  const std::string log = agent.Log();
  EXPECT_NE(log.find("resuming /agent/v1/variants/" + x + "/payload at byte " +
                     std::to_string(chunk) + " of " + std::to_string(size)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(std::to_string(size - chunk) + " bytes in 1 requests (resumed at " +
                     std::to_string(chunk) + ")"),
            std::string::npos)
      << log;
  EXPECT_EQ(agent.Stop(), 0);
}

// 5b. The assignment changes while a download waits between chunks: the agent stops asking for
// the withdrawn variant, goes back to heartbeating, and when the variant is assigned again it
// resumes the partial file it kept.
TEST_F(FullLoopTest, VariantWithdrawnDuringADownloadIsDroppedAndResumedWhenAssignedAgain) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::int64_t size = Int(v, "size_bytes");
  const std::int64_t chunk = (size + 1) / 2;
  const std::string model_w = suite->UploadMaster("lenet5-w");
  Agent agent({"download.chunk_bytes=" + std::to_string(chunk),
               "download.max_bytes_per_s=" + std::to_string(chunk / 4)});
  agent.Start();
  const std::string dev = agent.device_id();
  const std::string partial = agent.state_dir() + "/variants/.partial/" + x + ".v" +
                              std::to_string(Int(v, "version")) + ".part";
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::error_code ec;
        return static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)) == chunk;
      },
      seconds(60), milliseconds(5)))
      << agent.Log();
  // While the agent waits before its second chunk, the device moves to model W (still
  // building, so no variant yet): X is no longer the device's to fetch.
  auto deployed_w = suite->Deploy(model_w, dev);
  const std::string job = Str(suite->Variant(model_w, suite->TargetOf(model_w, deployed_w)),
                              "job_id");
  if (!job.empty()) suite->Call("DELETE", "/api/v1/jobs/" + job);
  ASSERT_TRUE(agent.WaitLine("variant " + x + " is no longer offered", seconds(30)))
      << agent.Log();
  EXPECT_TRUE(agent.WaitLine(": serving nothing", seconds(30))) << agent.Log();
  EXPECT_TRUE(suite->Audit("variant.refused", x, dev).empty()) << "a withdrawal is no refusal";

  // Model A again: X is fetched from where the kept partial file stops.
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_NE(agent.Log().find("resuming /agent/v1/variants/" + x + "/payload at byte " +
                             std::to_string(chunk) + " of " + std::to_string(size)),
            std::string::npos)
      << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 6. The server SIGKILLed and restarted while agents report: every report the agents made is
// stored exactly once.
TEST_F(FullLoopTest, ServerKilledWhileAgentsReportLosesNoReport) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent a, b;
  a.Start();
  b.Start();
  for (Agent* agent : {&a, &b}) {
    suite->Deploy(suite->model_a, agent->device_id());
    ASSERT_TRUE(agent->WaitServing(x, seconds(60))) << agent->Log();
  }
  ASSERT_TRUE(AllReportsArrived(a, seconds(30)));
  ASSERT_TRUE(AllReportsArrived(b, seconds(30)));

  suite->server->Signal(SIGKILL);
  suite->server->Wait(seconds(20));
  // Reports pile up in the agents' queues while the server is gone.
  for (Agent* agent : {&a, &b}) {
    ASSERT_TRUE(WaitUntil([&] { return agent->TelemetryCounts().second >= 3; }, seconds(30),
                          milliseconds(100)))
        << agent->Log();
  }
  suite->StartServer();
  ASSERT_TRUE(suite->server && suite->server->Running());
  EXPECT_TRUE(AllReportsArrived(a, seconds(60))) << a.Log();
  EXPECT_TRUE(AllReportsArrived(b, seconds(60))) << b.Log();
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

// 7. An agent SIGKILLed with reports still queued: restarted, it sends them.
TEST_F(FullLoopTest, AgentKilledAndRestartedStillDeliversItsQueuedReports) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent agent;
  agent.Start();
  suite->Deploy(suite->model_a, agent.device_id());
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  ASSERT_TRUE(AllReportsArrived(agent, seconds(30)));

  // The server goes away so reports stay queued, then the agent dies with them.
  suite->server->Signal(SIGKILL);
  suite->server->Wait(seconds(20));
  std::pair<std::int64_t, std::int64_t> at_kill;
  ASSERT_TRUE(WaitUntil(
      [&] {
        at_kill = agent.TelemetryCounts();
        return at_kill.second >= 3;
      },
      seconds(30), milliseconds(100)))
      << agent.Log();
  agent.Kill();
  suite->StartServer();
  ASSERT_TRUE(suite->server && suite->server->Running());
  const std::int64_t stored_before = suite->TotalReports(agent.device_id());
  EXPECT_LE(stored_before, at_kill.first - at_kill.second);

  agent.Start();
  ASSERT_TRUE(AllReportsArrived(agent, seconds(60))) << agent.Log();
  EXPECT_GE(suite->TotalReports(agent.device_id()), at_kill.first)
      << "every report queued at the kill arrived";
  EXPECT_EQ(agent.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
