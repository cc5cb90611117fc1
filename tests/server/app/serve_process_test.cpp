// `edgeprune-server serve` as a real process: probes, metrics, config errors, SIGTERM drain.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "support/build_paths.hpp"
#include "edgeprune/common/json.hpp"
#include "server/support/serve_fixture.hpp"

namespace edgeprune::server {
namespace {

using testing::ServeFixture;

class ServeProcessTest : public ServeFixture {};

TEST_F(ServeProcessTest, AnswersHealthzReadyzAndMetricsOverTls) {
  StartServer();
  auto client = Client();
  auto health = client->Get("/healthz");
  ASSERT_TRUE(health.ok()) << health.error().ToString();
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  EXPECT_EQ(health->Header("content-type"), "application/json");
  auto ready = client->Get("/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find(R"(edgeprune_http_requests_total{method="GET",route="/healthz",status="200"} 1)"),
            std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("edgeprune_http_request_duration_seconds_bucket"), std::string::npos);
  auto missing = client->Get("/no/such/thing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(client->connections_opened(), 1u);
}

TEST_F(ServeProcessTest, SigtermDrainsAndExitsZero) {
  StartServer();
  ASSERT_TRUE(Client()->Get("/healthz").ok());
  server_->Signal(SIGTERM);
  auto status = server_->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "server did not exit after SIGTERM:\n" << server_->Stderr();
  EXPECT_EQ(*status, 0) << server_->Stderr();
  const std::string logs = server_->Stdout() + server_->Stderr();
  EXPECT_NE(logs.find("draining"), std::string::npos) << logs;
}

TEST_F(ServeProcessTest, RaisesItsOpenFileLimitToTheHardLimitAndLogsIt) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max == RLIM_INFINITY || original.rlim_max < 1024) {
    GTEST_SKIP() << "needs a finite hard RLIMIT_NOFILE of at least 1024";
  }
  // The server inherits a low soft limit from us, as from a default shell.
  rlimit lowered = original;
  lowered.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  struct Restore {
    rlimit limit;
    ~Restore() { setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{original};
  StartServer();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);

  const std::string hard = std::to_string(original.rlim_max);
  // The kernel's view of the running server.
  std::ifstream limits("/proc/" + std::to_string(server_->pid()) + "/limits");
  std::string line;
  bool found = false;
  while (std::getline(limits, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    found = true;
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    std::string soft_now, hard_now;
    fields >> soft_now >> hard_now;
    EXPECT_EQ(soft_now, hard) << line;
    EXPECT_EQ(hard_now, hard) << line;
  }
  EXPECT_TRUE(found) << "no 'Max open files' line in /proc/<pid>/limits";
  const std::string logs = server_->Stdout() + server_->Stderr();
  EXPECT_NE(logs.find("open-file limit " + hard + " (soft was 256, hard " + hard + ")"),
            std::string::npos)
      << logs;
}

TEST_F(ServeProcessTest, BadConfigurationIsRefusedNamingEveryKey) {
  edgeprune::testing::Process bad({.program = edgeprune::testing::ServerBin(),
                                   .args = {"serve", "--set", "server.listen_port=70000", "--set",
                                            "server.threads=zero", "--set", "server.nope=1"},
                                   .env = {}, .working_dir = dir_.path(), .output_dir = dir_.Subdir("bad")});
  auto status = bad.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 2);
  const std::string err = bad.Stderr();
  EXPECT_NE(err.find("server.listen_port"), std::string::npos) << err;
  EXPECT_NE(err.find("server.threads"), std::string::npos) << err;
  EXPECT_NE(err.find("server.nope"), std::string::npos) << err;
  EXPECT_NE(err.find("server.tls_cert"), std::string::npos) << err;  // required and unset
}

TEST_F(ServeProcessTest, MissingCertificateFileFailsAtStartupNamingIt) {
  edgeprune::testing::Process bad({.program = edgeprune::testing::ServerBin(),
                                   .args = ServeArgs({"--set", "server.tls_cert=" + dir_.File("absent.pem")}),
                                   .env = {}, .working_dir = dir_.path(), .output_dir = dir_.Subdir("bad")});
  auto status = bad.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  EXPECT_NE(bad.Stderr().find("absent.pem"), std::string::npos) << bad.Stderr();
}

TEST_F(ServeProcessTest, ConfigCommandPrintsTheSchema) {
  edgeprune::testing::Process cfg({.program = edgeprune::testing::ServerBin(), .args = {"config"}, .env = {},
                                   .working_dir = dir_.path(), .output_dir = dir_.Subdir("cfg")});
  auto status = cfg.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_NE(cfg.Stdout().find("| `server.listen_port` | integer | `8443` |"), std::string::npos)
      << cfg.Stdout();
}

}  // namespace
}  // namespace edgeprune::server
