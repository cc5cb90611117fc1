#include "support/build_paths.hpp"
#include "cli_fixture.hpp"

#include <fstream>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/tls.hpp"
#include "edgeprune/common/wire/profile.hpp"
#include "server/support/fleet_test_csr.hpp"

namespace edgeprune::cli_test {
namespace bj = boost::json;
using edgeprune::testing::Process;
using edgeprune::testing::ProcessOptions;

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

void CliTest::SetUp() {
  // The server's own configuration, with `token create` in place of `serve`.
  auto args = ServeArgs();
  args[0] = "token";
  for (const char* a : {"create", "--name", "admin", "--role", "admin"}) args.push_back(a);
  Process token({.program = edgeprune::testing::ServerBin(), .args = args});
  ASSERT_EQ(token.Wait(std::chrono::seconds(60)), 0) << token.Stderr();
  admin_token_ = token.Stdout().substr(0, token.Stdout().find('\n'));
  ASSERT_FALSE(admin_token_.empty());
  StartServer({"--set", "fleet.device_ca_cert=" + pki_.client_ca.cert,
               "--set", "fleet.device_ca_key=" + pki_.client_ca.key,
               "--set", "rollouts.tick_seconds=1",
               // Builds small enough for a test: a few steps on a few synthetic images.
               "--set", "variants.train_limit=64", "--set", "variants.test_limit=32",
               "--set", "variants.prune_steps=2", "--set", "variants.step_finetune_steps=2",
               "--set", "variants.finetune_steps=2", "--set", "variants.batch_size=16",
               "--set", "variants.max_accuracy_drop=100"});
  ASSERT_TRUE(server_);
  const std::string token_file = dir_.WriteFile("admin.token", admin_token_ + "\n");
  config_path_ = dir_.File("cli/config.json");
  bj::object ctx{{"server", Url()}, {"ca", pki_.ca_cert()}, {"token_file", token_file}};
  dir_.WriteFile("cli/config.json",
                 bj::serialize(bj::object{{"current", "test"}, {"contexts", bj::object{{"test", ctx}}}}));
}

CliRun CliTest::Cli(const std::vector<std::string>& args,
                 const std::vector<std::pair<std::string, std::string>>& env,
                 std::chrono::seconds timeout) const {
  auto vars = env;
  vars.emplace_back("EDGEPRUNE_CONFIG", config_path_);
  Process p({.program = edgeprune::testing::CliBin(), .args = args, .env = vars});
  CliRun r;
  auto code = p.Wait(timeout);
  r.exit = code.value_or(-1);
  r.out = p.Stdout();
  r.err = p.Stderr();
  boost::system::error_code ec;
  r.json = bj::parse(r.out, ec);
  if (ec) r.json = nullptr;
  return r;
}

std::unique_ptr<Process> CliTest::StartCli(const std::vector<std::string>& args) const {
  return std::make_unique<Process>(ProcessOptions{
      .program = edgeprune::testing::CliBin(), .args = args, .env = {{"EDGEPRUNE_CONFIG", config_path_}}});
}

std::string CliTest::RawGet(const std::string& path) const {
  auto c = Client();
  auto r = c->Get(path, {{"Authorization", "Bearer " + admin_token_}});
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? r->body : std::string();
}

std::string CliTest::NewToken(const std::string& name, const std::string& role) {
  auto r = Cli({"-o", "json", "tokens", "create", "--name", name, "--role", role});
  EXPECT_EQ(r.exit, 0) << r.err;
  return r.json.is_object() ? std::string(r.json.at("token").as_string()) : std::string();
}

Device CliTest::EnrollDevice(const std::string& hostname) {
  Device d;
  auto token = Cli({"-o", "json", "enroll-tokens", "create"});
  EXPECT_EQ(token.exit, 0) << token.err;
  if (!token.json.is_object()) return d;
  auto kc = fleet_test::MakeKeyAndCsr();
  auto c = Client();
  auto grant = c->Post("/agent/v1/enroll",
                       bj::serialize(bj::object{{"token", token.json.at("token")},
                                                {"csr_pem", kc.csr_pem},
                                                {"hostname", hostname}}));
  EXPECT_TRUE(grant.ok() && grant->status == 201) << (grant.ok() ? grant->body : grant.error().ToString());
  if (!grant.ok() || grant->status != 201) return d;
  auto g = bj::parse(grant->body).as_object();
  d.id = std::string(g.at("device_id").as_string());
  d.key_file = dir_.WriteFile(d.id + ".key", kc.key_pem);
  d.cert_file = dir_.WriteFile(d.id + ".pem", std::string(g.at("certificate_pem").as_string()));
  // The device's own mTLS connection reports the profile that gives it a budget.
  auto tls = tls::MakeClientContext({pki_.ca_cert(), d.cert_file, d.key_file});
  EXPECT_TRUE(tls.ok());
  http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.tls = *tls;
  http::HttpsClient device(o);
  wire::DeviceProfile p;
  p.arch = "x86_64";
  p.cpu_model = "test";
  p.cores = 4;
  p.simd_flags = {"avx2"};
  p.ram_total_bytes = 4LL << 30;
  p.ram_available_bytes = 3LL << 30;
  p.disk_free_bytes = 20LL << 30;
  p.os = "Linux";
  p.torch_version = "1.13.1";
  p.agent_version = "0.1.0";
  p.bench = {8.0, 3.0, 0.2, 4.0, 4};
  p.measured_at = 1800000000;
  const auto profile = wire::ToJson(p);
  auto put = device.Send({"PUT", "/agent/v1/profile", {{"Content-Type", "application/json"}},
                          bj::serialize(profile)});
  EXPECT_TRUE(put.ok() && put->status == 200) << (put.ok() ? put->body : put.error().ToString());
  return d;
}

}  // namespace edgeprune::cli_test
