#include "enroll_fixture.hpp"

#include <chrono>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/tls.hpp"
#include "fleet_test_csr.hpp"
#include "server/api/agent_routes.hpp"
#include "server/api/fleet_authenticator.hpp"
#include "server/api/operator_routes.hpp"
#include "common/http/metrics.hpp"
#include "server/store/migrator.hpp"

namespace edgeprune::fleet_test {

void EnrollFixture::SetUp() {
  pki_ = edgeprune::testing::MakeTestPki(dir_.path());
  clock_ = std::make_shared<ManualClock>(SystemClock().NowMs());
  auto db = store::Database::Open(dir_.File("server.db"), store::OpenOptions{});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  db_ = std::move(db).value();
  auto migrator = store::Migrator::Load(store::DefaultMigrationsDir(), store::Dialect::kSqlite);
  ASSERT_TRUE(migrator.ok()) << migrator.error().ToString();
  ASSERT_TRUE(migrator->Apply(*db_).ok());

  ConfigSchema schema;
  fleet::AddFleetConfig(schema);
  std::vector<std::string> overrides = {"fleet.device_ca_cert=" + pki_.client_ca.cert,
                                        "fleet.device_ca_key=" + pki_.client_ca.key,
                                        "fleet.heartbeat_interval_s=10"};
  overrides.insert(overrides.end(), extra_config_.begin(), extra_config_.end());
  auto config = Config::Load(schema, "", overrides, "");
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto fleet = fleet::FleetService::Build(*config, db_, registry_, clock_);
  ASSERT_TRUE(fleet.ok()) << fleet.error().ToString();
  fleet_ = std::move(fleet).value();
  auto admin = fleet_->api_tokens->EnsureAdmin();
  ASSERT_TRUE(admin.ok() && admin->has_value());
  admin_token_ = (*admin)->secret;

  auto router = std::make_shared<http::Router>(
      std::make_shared<api::FleetAuthenticator>(fleet_->api_tokens, fleet_->registry,
                                                fleet_->audit));
  for (auto& r : api::OperatorRoutes(fleet_)) ASSERT_TRUE(router->Add(std::move(r)).ok());
  for (auto& r : api::AgentRoutes(fleet_)) ASSERT_TRUE(router->Add(std::move(r)).ok());
  ASSERT_TRUE(router->Add(http::MetricsRoute(registry_)).ok());
  auto tls_ctx = tls::MakeServerContext({pki_.server.cert, pki_.server.key, pki_.client_ca.cert,
                                         tls::ClientCertMode::kOptional});
  ASSERT_TRUE(tls_ctx.ok()) << tls_ctx.error().ToString();
  http::ServerOptions options;
  options.threads = 2;
  server_ = std::make_unique<http::HttpsServer>(options, *tls_ctx, router, nullptr);
  auto port = server_->Start();
  ASSERT_TRUE(port.ok()) << port.error().ToString();
  port_ = *port;
}

void EnrollFixture::TearDown() {
  if (server_) {
    server_->Stop();
    server_->Wait();
  }
  server_.reset();
  if (fleet_) fleet_->Stop();
  fleet_.reset();
}

std::unique_ptr<http::HttpsClient> EnrollFixture::Client(const std::string& cert,
                                                         const std::string& key,
                                                         const std::string& ca) {
  auto ctx = tls::MakeClientContext({ca.empty() ? pki_.ca.cert : ca, cert, key});
  EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
  http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.tls = *ctx;
  o.timeout = std::chrono::seconds(10);
  return std::make_unique<http::HttpsClient>(o);
}

Reply EnrollFixture::Call(http::HttpsClient& client, const std::string& method,
                          const std::string& target, const std::string& body,
                          const std::string& bearer) {
  http::ClientRequest req{method, target, {{"Content-Type", "application/json"}}, body};
  if (!bearer.empty()) req.headers.emplace_back("Authorization", "Bearer " + bearer);
  auto resp = client.Send(req);
  if (!resp.ok()) {
    ADD_FAILURE() << method << " " << target << ": " << resp.error().ToString();
    return {};
  }
  Reply r{resp->status, {}, resp->body};
  if (auto o = json::ParseObject(resp->body); o.ok()) r.body = *o;
  return r;
}

Reply EnrollFixture::Operator(const std::string& method, const std::string& target,
                              const std::string& body, const std::string& bearer) {
  auto client = Client();
  return Call(*client, method, target, body, bearer.empty() ? admin_token_ : bearer);
}

std::string EnrollFixture::NewEnrollmentToken(int max_uses, int ttl_s) {
  auto r = Operator("POST", "/api/v1/enrollment-tokens",
                    boost::json::serialize(boost::json::object{{"max_uses", max_uses},
                                                               {"ttl_s", ttl_s}}));
  EXPECT_EQ(r.status, 201) << r.raw;
  return std::string(r.body["token"].as_string());
}

DeviceFiles EnrollFixture::EnrollDirect(const std::string& token) {
  auto kc = MakeKeyAndCsr();
  auto client = Client();
  auto r = Call(*client, "POST", "/agent/v1/enroll",
                boost::json::serialize(boost::json::object{
                    {"token", token}, {"csr_pem", kc.csr_pem}, {"hostname", "direct"}}));
  EXPECT_EQ(r.status, 201) << r.raw;
  DeviceFiles f;
  if (r.status != 201) return f;
  f.device_id = std::string(r.body["device_id"].as_string());
  const std::string base = "device-" + std::to_string(++enrolled_);
  f.cert = dir_.WriteFile(base + ".crt", std::string(r.body["certificate_pem"].as_string()));
  f.key = dir_.File(base + ".key");
  EXPECT_TRUE(fs::WriteFileAtomic(f.key, kc.key_pem, 0600).ok());
  return f;
}

std::int64_t EnrollFixture::DeviceCount() {
  auto list = fleet_->registry->List({}, 10000);
  return list.ok() ? static_cast<std::int64_t>(list->size()) : -1;
}

}  // namespace edgeprune::fleet_test
