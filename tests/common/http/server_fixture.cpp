#include "common/http/server_fixture.hpp"

namespace edgeprune::http::testing {

ServerFixture::ServerFixture() : pki_(edgeprune::testing::MakeTestPki(dir_.path())) {
  router_ = std::make_shared<Router>();
  options_.host = "127.0.0.1";
  options_.port = 0;
  options_.threads = 2;
  options_.body_limit = 64 * 1024;
  options_.discard_limit = 1024 * 1024;
  options_.header_limit = 8 * 1024;
}

void ServerFixture::StartServer(tls::ClientCertMode client_cert) {
  auto ctx = tls::MakeServerContext(
      {pki_.server_cert(), pki_.server_key(), pki_.client_ca_cert(), client_cert});
  ASSERT_TRUE(ctx.ok()) << ctx.error().ToString();
  server_ = std::make_unique<HttpsServer>(options_, *ctx, router_,
                                          std::make_shared<HttpMetrics>(registry_));
  auto port = server_->Start();
  ASSERT_TRUE(port.ok()) << port.error().ToString();
  ASSERT_NE(*port, 0);
  port_ = *port;
}

void ServerFixture::StopServer() {
  if (!server_) return;
  server_->Stop();
  server_->Wait();
  server_.reset();
}

std::unique_ptr<HttpsClient> ServerFixture::Client(const std::string& ca, const std::string& cert,
                                                   const std::string& key) {
  auto ctx = tls::MakeClientContext({ca.empty() ? pki_.ca_cert() : ca, cert, key});
  EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
  ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.tls = *ctx;
  o.timeout = std::chrono::seconds(20);
  return std::make_unique<HttpsClient>(o);
}

}  // namespace edgeprune::http::testing
