// Hostile model uploads through the real HTTPS server: each is refused with its named code,
// leaves nothing stored, changes no file, leaks no secret byte, is audited, and never holds up
// the I/O threads (/healthz keeps answering while a model that never returns is being checked).
#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "support/build_paths.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/tls.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "server/app/variants_module.hpp"
#include "support/test_pki.hpp"
#include "server/support/variants_fixture.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

class OperatorAuthenticator : public http::Authenticator {
 public:
  Result<http::Principal> AuthenticateBearer(std::string_view token) override {
    if (token == "op") return http::Principal{http::Principal::Kind::kUser, "op", http::Role::kOperator};
    return MakeError(ErrorKind::kUnauthenticated, "unauthenticated", "unknown token");
  }
  Result<http::Principal> AuthenticateDevice(const tls::PeerCertificate&) override {
    return MakeError(ErrorKind::kUnauthenticated, "unauthenticated", "no devices here");
  }
};

constexpr char kSecret[] = "BEGIN PRIVATE KEY 7f3a9c1e";

class UntrustedUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = edgeprune::testing::MakeTestPki(t_.dir().path());
    // The secret the hostile models aim at, in the server's data directory.
    secret_ = t_.dir().WriteFile("data/edgeprune-target.bin", kSecret);
    ConfigSchema schema;
    server::AddVariantsConfig(schema);
    auto config = Config::Load(schema, "",
                               {std::string("model_worker.executable=") + edgeprune::testing::ServerBin(),
                                // The deadline counts from the worker's start, and starting a
                                // LibTorch process took over 6 s on a machine at load 9: the
                                // 8 TiB allocation then timed out before it was refused.
                                "model_worker.validate_seconds=15",
                                "model_worker.memory_bytes=3221225472"},
                               "");
    ASSERT_TRUE(config.ok()) << config.error().ToString();
    auto module = server::VariantsModule::Start(*config, t_.db(), registry_, t_.dir().File("data"));
    ASSERT_TRUE(module.ok()) << module.error().ToString();
    module_ = std::move(module).value();
    auto router = std::make_shared<http::Router>(std::make_shared<OperatorAuthenticator>());
    for (auto& r : module_->Routes()) ASSERT_TRUE(router->Add(std::move(r)).ok());
    http::Route health;
    health.pattern = "/healthz";
    health.handler = [](const http::RequestContext&) -> Result<http::Response> {
      return http::JsonResponse(bj::object{{"status", "ok"}});
    };
    ASSERT_TRUE(router->Add(std::move(health)).ok());
    auto tls_ctx = tls::MakeServerContext({pki_.server.cert, pki_.server.key, "",
                                           tls::ClientCertMode::kNone});
    ASSERT_TRUE(tls_ctx.ok()) << tls_ctx.error().ToString();
    http::ServerOptions options;
    options.threads = 2;
    options.blocking_threads = 2;
    options.body_limit = 4 << 20;
    server_ = std::make_unique<http::HttpsServer>(options, *tls_ctx, router, nullptr);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.error().ToString();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    if (module_) module_->Stop();
  }

  std::unique_ptr<http::HttpsClient> Client() {
    auto ctx = tls::MakeClientContext({pki_.ca.cert, "", ""});
    EXPECT_TRUE(ctx.ok());
    http::ClientOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.tls = *ctx;
    o.timeout = std::chrono::seconds(60);
    return std::make_unique<http::HttpsClient>(o);
  }

  http::ClientResponse Upload(const std::string& fixture) {
    auto bytes = fs::ReadFile(edgeprune::testing::SourceDir() + "/tests/fixtures/" + fixture);
    EXPECT_TRUE(bytes.ok());
    auto r = Client()->Post("/api/v1/models?name=m&dataset=synthetic:1x28x28:10&input_shape=1,28,28",
                            *bytes, "application/octet-stream", {{"Authorization", "Bearer op"}});
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }

  static std::string Code(const http::ClientResponse& r) {
    auto o = json::ParseObject(r.body);
    if (!o.ok() || !o->contains("error")) return "";
    return std::string(o->at("error").as_object().at("code").as_string());
  }

  testing::VariantsDb t_;
  edgeprune::testing::TestPki pki_;
  std::string secret_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<server::VariantsModule> module_;
  std::unique_ptr<http::HttpsServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(UntrustedUploadTest, HostileModelsAreRefusedStoreNothingLeakNothingAndAreAudited) {
  struct Case {
    const char* fixture;
    const char* code;
  };
  const Case cases[] = {
      {"hostile/read_secret.pt", "forbidden_operator"},
      {"hostile/write_file.pt", "forbidden_operator"},
      {"hostile/save_tensor.pt", "forbidden_operator"},
      {"hostile/set_storage.pt", "forbidden_operator"},
      {"hostile/dynamic_raise.pt", "forbidden_operator"},
      {"hostile/hidden_submodule.pt", "forbidden_operator"},
      {"hostile/hidden_export.pt", "forbidden_operator"},
      {"hostile/hidden_if.pt", "forbidden_operator"},
      {"hostile/setstate.pt", "forbidden_operator"},
      {"hostile/huge_alloc.pt", "model_resource_limit"},
      {"hostile/endless_loop.pt", "model_timeout"},
      {"hostile/compiler_crash.pt", "model_crashed"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fixture);
    auto r = Upload(c.fixture);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Code(r), c.code) << r.body;
    EXPECT_EQ(r.body.find(kSecret), std::string::npos);
    EXPECT_EQ(r.body.find(t_.dir().path()), std::string::npos) << r.body;
  }
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM models"), 0);
  auto secret = fs::ReadFile(secret_);
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(*secret, kSecret);
  std::size_t blobs = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(t_.dir().File("data/blobs"), ec)) {
    if (e.is_regular_file()) ++blobs;
  }
  EXPECT_EQ(blobs, 0u);
  // One audit row per attempt, each with the code the client got; no secret in any of them.
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'model.upload' AND "
                     "outcome = 'failed'"),
            static_cast<std::int64_t>(std::size(cases)));
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%forbidden_operator%'"), 9);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%BEGIN PRIVATE%'"), 0);

  // A good model still goes through, and its acceptance is audited too.
  auto good = Upload("models/lenet5_scripted.pt");
  EXPECT_EQ(good.status, 201) << good.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'model.upload' AND "
                     "outcome = 'ok'"),
            1);
}

TEST_F(UntrustedUploadTest, HealthzKeepsAnsweringWhileAModelThatNeverReturnsIsChecked) {
  // Two endless models occupy both blocking threads for the worker's whole deadline.
  auto first = std::async(std::launch::async, [&] { return Upload("hostile/endless_loop.pt"); });
  auto second = std::async(std::launch::async, [&] { return Upload("hostile/endless_loop.pt"); });
  auto client = Client();
  int answered_while_pending = 0;
  while (first.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready ||
         second.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    auto health = client->Get("/healthz");
    ASSERT_TRUE(health.ok()) << health.error().ToString();
    EXPECT_EQ(health->status, 200);
    if (first.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      ++answered_while_pending;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Code(first.get()), "model_timeout");
  EXPECT_EQ(Code(second.get()), "model_timeout");
  // The deadline is 6 s: with the I/O threads free, /healthz answered many times meanwhile.
  EXPECT_GE(answered_while_pending, 10);
}

}  // namespace
}  // namespace edgeprune::api
