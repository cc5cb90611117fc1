// Enrollment with the real edgeprune-agent binary against the in-process server.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <regex>

#include "support/build_paths.hpp"
#include "server/support/enroll_fixture.hpp"
#include "support/process.hpp"

namespace edgeprune::fleet_test {
namespace {

using std::chrono::seconds;

class AgentProcessTest : public EnrollFixture {
 protected:
  edgeprune::testing::ProcessOptions AgentRun(const std::string& state_dir, const std::string& token) {
    std::vector<std::string> args = {"run",
                                     "--set", "agent.server_url=" + ServerUrl(),
                                     "--set", "agent.server_ca=" + pki_.ca.cert,
                                     "--set", "agent.state_dir=" + state_dir,
                                     "--set", "agent.bench_ms=80",
                                     "--set", "agent.backoff_base_ms=50",
                                     "--set", "agent.backoff_cap_ms=200",
                                     "--set", "caps.latency_slo_ms=20",
                                     "--set", "local_api.port=0",
                                     "--set", "probe.samples=20"};
    if (!token.empty()) {
      args.push_back("--set");
      args.push_back("agent.enrollment_token=" + token);
    }
    return {.program = edgeprune::testing::AgentBin(), .args = args, .env = {{"EDGEPRUNE_TEST", "1"}}};
  }
};

TEST_F(AgentProcessTest, EnrollsReportsItsProfileHeartbeatsAndResumesAfterARestart) {
  const std::string token = NewEnrollmentToken(1);
  const std::string state_dir = dir_.File("agent-state");
  std::string device_id;
  {
    edgeprune::testing::Process agent(AgentRun(state_dir, token));
    auto m = agent.WaitForMatch(std::regex("agent (dev-[0-9a-f]+): polling"), seconds(60));
    ASSERT_TRUE(m) << agent.Stdout() << agent.Stderr();
    device_id = (*m)[1];
    // The first heartbeat follows the profile at once; wait for the server to see it.
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (fleet_->heartbeats->LivenessOf(device_id) != fleet::Liveness::kOnline &&
           std::chrono::steady_clock::now() < deadline) {
      agent.WaitForLine("never-printed", std::chrono::milliseconds(50));
    }
    EXPECT_EQ(agent.Stop(), 0) << agent.Stderr();
  }
  auto r = Operator("GET", "/api/v1/devices/" + device_id);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["liveness"].as_string(), "online");
  EXPECT_EQ(r.body["status"].as_string(), "active");
  ASSERT_TRUE(r.body["profile"].is_object()) << r.raw;
  auto& profile = r.body["profile"].as_object();
  EXPECT_GE(profile["cores"].as_int64(), 1);
  EXPECT_GT(profile["ram_total_bytes"].as_int64(), 0);
  EXPECT_EQ(profile["caps"].as_object()["latency_slo_ms"].as_double(), 20.0);
  ASSERT_TRUE(r.body["budget"].is_object());
  EXPECT_EQ(r.body["budget"].as_object()["max_latency_ms"].as_double(), 20.0);

  // The private key stayed on the device, owner-only; the server never saw it.
  struct stat st {};
  ASSERT_EQ(::stat((state_dir + "/identity/device.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Restart without a token: the agent resumes with its identity, no second enrollment.
  {
    edgeprune::testing::Process agent(AgentRun(state_dir, ""));
    ASSERT_TRUE(agent.WaitForLine("agent " + device_id + ": polling", seconds(60)))
        << agent.Stdout() << agent.Stderr();
    EXPECT_NE((agent.Stdout() + agent.Stderr()).find("resuming as " + device_id), std::string::npos)
        << agent.Stderr();
    EXPECT_EQ(agent.Stop(), 0);
  }
  EXPECT_EQ(DeviceCount(), 1);
  auto history = fleet_->registry->ProfileHistory(device_id, 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 2u) << "one profile per start";
}

TEST_F(AgentProcessTest, EnrollCommandRefusesAUsedTokenAndCreatesNothing) {
  const std::string token = NewEnrollmentToken(1);
  auto enroll = [&](const std::string& state_dir) {
    edgeprune::testing::Process p({.program = edgeprune::testing::AgentBin(),
                                   .args = {"enroll", "--server", ServerUrl(), "--token", token,
                                            "--ca", pki_.ca.cert, "--state-dir", state_dir}});
    auto code = p.Wait(seconds(60));
    return std::make_pair(code.value_or(-1), p.Stdout() + p.Stderr());
  };
  auto [ok_code, ok_out] = enroll(dir_.File("a"));
  EXPECT_EQ(ok_code, 0) << ok_out;
  EXPECT_NE(ok_out.find("enrolled as dev-"), std::string::npos);
  auto [used_code, used_out] = enroll(dir_.File("b"));
  EXPECT_EQ(used_code, 1) << used_out;
  EXPECT_NE(used_out.find("enrollment_token_used_up"), std::string::npos) << used_out;
  struct stat st {};
  EXPECT_NE(::stat(dir_.File("b/identity/identity.json").c_str(), &st), 0) << "no identity saved";
  EXPECT_EQ(DeviceCount(), 1);
}

}  // namespace
}  // namespace edgeprune::fleet_test
