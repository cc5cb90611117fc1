// Data set uploads through the real HTTPS server: the body streams to a spool file and is
// validated from there; a body declared over datasets.max_upload_bytes (2 GiB here) is refused
// from its Content-Length alone, before the client has sent more than a few bytes of it.
#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <chrono>

#include "support/build_paths.hpp"
#include "common/http/raw_tls_client.hpp"
#include "common/http/server.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/app/variants_module.hpp"
#include "server/datasets/dataset_files.hpp"
#include "server/support/variants_api_fixture.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::api {
namespace {

class DatasetUploadCapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = edgeprune::testing::MakeTestPki(t_.dir().path());
    ConfigSchema schema;
    server::AddVariantsConfig(schema);
    auto config = Config::Load(schema, "",
                               {std::string("model_worker.executable=") + edgeprune::testing::ServerBin(),
                                "datasets.max_upload_bytes=8388608"},
                               "");
    ASSERT_TRUE(config.ok()) << config.error().ToString();
    auto module = server::VariantsModule::Start(*config, t_.db(), registry_, t_.dir().File("data"));
    ASSERT_TRUE(module.ok()) << module.error().ToString();
    module_ = std::move(module).value();
    auto router = std::make_shared<http::Router>(std::make_shared<FixtureAuthenticator>());
    for (auto& r : module_->Routes()) ASSERT_TRUE(router->Add(std::move(r)).ok());
    auto tls_ctx = tls::MakeServerContext({pki_.server.cert, pki_.server.key, "",
                                           tls::ClientCertMode::kNone});
    ASSERT_TRUE(tls_ctx.ok()) << tls_ctx.error().ToString();
    http::ServerOptions options;
    options.threads = 2;
    options.blocking_threads = 2;
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

  testing::VariantsDb t_;
  edgeprune::testing::TestPki pki_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<server::VariantsModule> module_;
  std::unique_ptr<http::HttpsServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(DatasetUploadCapTest, AStreamedUploadIsStoredAndTwoGibibytesOverTheCapAreNeverRead) {
  auto client_tls = tls::MakeClientContext({pki_.ca.cert, "", ""});
  ASSERT_TRUE(client_tls.ok());
  http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.tls = *client_tls;
  http::HttpsClient client(o);
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {20};
  spec.dtype = "<f4";
  auto ok = client.Post("/api/v1/datasets?name=features", edgeprune::testing::Npz(spec, true),
                        "application/octet-stream", {{"Authorization", "Bearer op"}});
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->status, 201) << ok->body;

  // 2 GiB declared, 64 KiB sent: the answer comes at once and nothing waits for the rest.
  const auto start = std::chrono::steady_clock::now();
  http::testing::RawTlsClient raw(*client_tls, port_);
  raw.Write("POST /api/v1/datasets?name=huge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 2147483648\r\n\r\n");
  (void)raw.TryWrite(std::string(64 * 1024, 'x'));
  boost::beast::http::response<boost::beast::http::string_body> res;
  ASSERT_FALSE(raw.Read(res));
  EXPECT_EQ(res.result_int(), 413u) << res.body();
  EXPECT_NE(res.body().find("payload_too_large"), std::string::npos) << res.body();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 1);
}

}  // namespace
}  // namespace edgeprune::api
