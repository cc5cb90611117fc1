#pragma once
// An in-process HttpsServer on 127.0.0.1:0 with real TLS (test PKI in a temp dir), and helpers
// to make real HttpsClients trusting the right (or the wrong) CA.

#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/tls.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::http::testing {

class ServerFixture : public ::testing::Test {
 protected:
  ServerFixture();

  // Builds and starts the server with router_ (add routes first) and options_.
  void StartServer(tls::ClientCertMode client_cert = tls::ClientCertMode::kOptional);
  void StopServer();
  void TearDown() override { StopServer(); }

  // A client for the started server; ca defaults to the PKI's server CA.
  std::unique_ptr<HttpsClient> Client(const std::string& ca = "", const std::string& cert = "",
                                      const std::string& key = "");

  edgeprune::testing::TempDir dir_{"edgeprune-http"};
  edgeprune::testing::TestPki pki_;
  ServerOptions options_;
  std::shared_ptr<Router> router_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<HttpsServer> server_;
  std::uint16_t port_ = 0;
};

}  // namespace edgeprune::http::testing
