// The serving stack as the agent's run command builds it: config → stack → the state machine's
// download/verify/install states (on an AgentContext) against a real HTTPS server → local API
// serving the variant → telemetry reaching the server.
#include <gtest/gtest.h>

#include "support/build_paths.hpp"
#include "agent/local_api/serving_stack.hpp"
#include "agent/state/states.hpp"
#include "download_test_server.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "local_api_client.hpp"
#include "runtime_fixture_models.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

// Stands in for the poll state's heartbeat: reports nothing new.
class QuietHeartbeat : public StateHandler {
 public:
  explicit QuietHeartbeat(int* runs) : runs_(runs) {}
  StepResult Run() override {
    ++*runs_;
    return {Event::kDone, std::chrono::milliseconds(0), ""};
  }

 private:
  int* runs_;
};

// The agent's state as the daemon sets it up around a stack, wanting `desired`.
std::unique_ptr<AgentContext> ContextFor(ServingStack& stack, const std::string& state_root,
                                         const std::string& desired) {
  auto ctx = std::make_unique<AgentContext>(AgentSettings{}, StateDir::Open(state_root).value());
  ctx->serving = &stack;
  ctx->updater = &stack.updater();
  wire::HeartbeatResponse hb;
  hb.desired_state.variant_id = desired;
  ctx->last_heartbeat = hb;
  return ctx;
}

TEST(ServingStackTest, StateMachineInstallsTheDesiredVariantAndTheLocalApiServesIt) {
  edgeprune::testing::TempDir dir("serving-stack");
  edgeprune::testing::AgentTestServer server(dir.path());
  auto client = server.MakeClient();
  edgeprune::testing::SyntheticTask task{1, 28, 28, 10};

  // The server side: a signed variant.
  auto keys = crypto::GenerateEd25519().value();
  dir.WriteFile("keys/signing.pub", keys.public_pem);
  const auto model_path = dir.File("model.pt");
  edgeprune::testing::WriteTemplateModel(model_path, task);
  const auto payload = fs::ReadFile(model_path).value();
  wire::VariantManifest m;
  m.model_id = "synthetic";
  m.variant_id = "var-1";
  m.version = 1;
  m.payload = {crypto::Sha256Hex(payload), static_cast<std::int64_t>(payload.size())};
  m.input_shape = task.input_shape();
  m.num_classes = task.classes;
  m.key_id = crypto::Ed25519KeyId(keys.public_pem).value();
  const auto bytes = wire::SerializeManifest(m);
  server.AddVariant("var-1",
                    {bytes, crypto::Ed25519Sign(keys.private_pem, bytes).value(), payload, ""});

  ConfigSchema schema;
  AddServingKeys(schema);
  auto config = Config::Load(schema, "",
                             {"probe.samples=0", "local_api.port=0",
                              std::string("runtime.module=") + edgeprune::testing::AgentTorchModule(),
                              "trust.keys_dir=" + dir.File("keys")},
                             "");
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto stack = ServingStack::Create(
      *config, dir.Subdir("state"),
      [&]() -> Result<http::HttpsClient*> { return client.get(); });
  ASSERT_TRUE(stack.ok()) << stack.error().ToString();
  ASSERT_TRUE((*stack)->Start().ok());
  edgeprune::testing::PlainClient api((*stack)->local_api_port());
  const auto sample = edgeprune::testing::MakeSample(task, 6);
  boost::json::array data;
  for (float x : sample) data.emplace_back(static_cast<double>(x));
  const auto body = json::Serialize(boost::json::object{
      {"shape", boost::json::array{1, 1, 28, 28}}, {"data", data}});
  EXPECT_EQ(api.Send("POST", "/v1/infer", body, {{"Content-Type", "application/json"}}).status, 503);

  auto stop = std::make_shared<StopSignal>();
  Machine machine(Backoff(std::chrono::milliseconds(1), std::chrono::milliseconds(5), 1), stop);
  int heartbeats = 0;
  auto ctx = ContextFor(**stack, dir.File("state"), "var-1");
  RegisterStates(machine, *ctx, [&] { return std::make_unique<QuietHeartbeat>(&heartbeats); });
  EXPECT_EQ(machine.Run(StateId::kDownload, 3), StateId::kServe);
  EXPECT_EQ((*stack)->installed_variant(), "var-1");

  auto served = api.Send("POST", "/v1/infer", body, {{"Content-Type", "application/json"}});
  ASSERT_EQ(served.status, 200) << served.body;
  auto o = json::ParseObject(served.body).value();
  EXPECT_EQ(o["class"].as_int64(), 6);
  EXPECT_EQ(o["variant_id"].as_string(), "var-1");

  // One serve step: a heartbeat, and (first step) a telemetry tick that reaches the server.
  EXPECT_EQ(machine.Run(StateId::kServe, 1), StateId::kServe);
  EXPECT_EQ(heartbeats, 1);
  auto stored = server.stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.begin()->second.variant_id, "var-1");
  EXPECT_EQ(stored.begin()->second.inference_count, 1);
  // The agent's /metrics counts the report made and, once acked, nothing queued.
  auto metrics = api.Send("GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("edgeprune_agent_telemetry_reports 1"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("edgeprune_agent_telemetry_queued 0"), std::string::npos)
      << metrics.body;
  // With the server refusing, the next report stays queued and says so.
  server.telemetry_status = 503;
  ASSERT_FALSE((*stack)->TelemetryTick(1700000000000).ok());
  metrics = api.Send("GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("edgeprune_agent_telemetry_reports 2"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("edgeprune_agent_telemetry_queued 1"), std::string::npos)
      << metrics.body;
  (*stack)->Stop();
}

// The LibTorch module cannot be opened: the variant is refused as a failed check naming the
// module, reported to the server, and the agent keeps serving (nothing) without crashing.
TEST(ServingStackTest, MissingRuntimeModuleRefusesTheVariantAndReportsIt) {
  edgeprune::testing::TempDir dir("serving-stack");
  edgeprune::testing::AgentTestServer server(dir.path());
  auto client = server.MakeClient();
  edgeprune::testing::SyntheticTask task{1, 28, 28, 10};
  auto keys = crypto::GenerateEd25519().value();
  dir.WriteFile("keys/signing.pub", keys.public_pem);
  const auto model_path = dir.File("model.pt");
  edgeprune::testing::WriteTemplateModel(model_path, task);
  const auto payload = fs::ReadFile(model_path).value();
  wire::VariantManifest m;
  m.model_id = "synthetic";
  m.variant_id = "var-1";
  m.version = 1;
  m.payload = {crypto::Sha256Hex(payload), static_cast<std::int64_t>(payload.size())};
  m.input_shape = task.input_shape();
  m.num_classes = task.classes;
  m.key_id = crypto::Ed25519KeyId(keys.public_pem).value();
  const auto bytes = wire::SerializeManifest(m);
  server.AddVariant("var-1",
                    {bytes, crypto::Ed25519Sign(keys.private_pem, bytes).value(), payload, ""});

  const std::string missing = dir.File("lib/edgeprune_agent_torch.so");
  ConfigSchema schema;
  AddServingKeys(schema);
  auto config = Config::Load(schema, "",
                             {"probe.samples=0", "local_api.port=0", "runtime.module=" + missing,
                              "trust.keys_dir=" + dir.File("keys")},
                             "");
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto stack = ServingStack::Create(
      *config, dir.Subdir("state"),
      [&]() -> Result<http::HttpsClient*> { return client.get(); });
  ASSERT_TRUE(stack.ok()) << stack.error().ToString();
  ASSERT_TRUE((*stack)->Start().ok());
  std::vector<std::string> events;
  auto ctx = ContextFor(**stack, dir.File("state"), "var-1");
  ctx->report = [&](const std::string& id, const std::string& event, const std::string& reason) {
    events.push_back(id + " " + event + " " + reason);
    return true;
  };
  auto stop = std::make_shared<StopSignal>();
  Machine machine(Backoff(std::chrono::milliseconds(1), std::chrono::milliseconds(5), 1), stop);
  int heartbeats = 0;
  RegisterStates(machine, *ctx, [&] { return std::make_unique<QuietHeartbeat>(&heartbeats); });
  // download, then verify refuses it for good: abandoned, straight back to serve.
  EXPECT_EQ(machine.Run(StateId::kDownload, 2), StateId::kServe);
  EXPECT_FALSE((*stack)->installed_variant().has_value());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rfind("var-1 check_failed runtime_unavailable: ", 0), 0u) << events[0];
  EXPECT_NE(events[0].find(missing), std::string::npos) << events[0];
  // Still alive: heartbeats go on, the local API answers "no model".
  EXPECT_EQ(machine.Run(StateId::kServe, 1), StateId::kServe);
  EXPECT_EQ(heartbeats, 1);
  edgeprune::testing::PlainClient api((*stack)->local_api_port());
  EXPECT_EQ(api.Send("GET", "/v1/nothing", "").status, 404);
  EXPECT_FALSE((*stack)->runtime().backend_loaded());
  (*stack)->Stop();
}

}  // namespace
}  // namespace edgeprune::agent
