#pragma once
// The real edgeprune-server binary started with `serve` on 127.0.0.1:0, real TLS from a test PKI
// and a database in a temp dir; clients are the real HttpsClient.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/build_paths.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/tls.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::server::testing {

class ServeFixture : public ::testing::Test {
 protected:
  ServeFixture() : pki_(edgeprune::testing::MakeTestPki(dir_.path())) {}

  std::vector<std::string> ServeArgs(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"serve",
                                     "--set", "server.listen_host=127.0.0.1",
                                     "--set", "server.listen_port=0",
                                     "--set", "server.threads=2",
                                     "--set", "server.tls_cert=" + pki_.server_cert(),
                                     "--set", "server.tls_key=" + pki_.server_key(),
                                     "--set", "server.client_ca=" + pki_.client_ca_cert(),
                                     "--set", "server.data_dir=" + dir_.File("data")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Starts the server and waits for its "listening on https://127.0.0.1:PORT" line.
  void StartServer(const std::vector<std::string>& extra = {}) {
    server_ = std::make_unique<edgeprune::testing::Process>(edgeprune::testing::ProcessOptions{
        .program = edgeprune::testing::ServerBin(), .args = ServeArgs(extra), .env = {}, .working_dir = dir_.path(),
        .output_dir = dir_.Subdir("server-logs")});
    auto port = server_->WaitForListening(std::chrono::seconds(60));
    ASSERT_TRUE(port.has_value()) << "server did not start:\n" << server_->Stdout() << server_->Stderr();
    port_ = *port;
  }

  std::unique_ptr<http::HttpsClient> Client() const {
    auto ctx = tls::MakeClientContext({pki_.ca_cert(), "", ""});
    EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
    http::ClientOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.tls = *ctx;
    o.timeout = std::chrono::seconds(20);
    return std::make_unique<http::HttpsClient>(o);
  }

  edgeprune::testing::TempDir dir_{"edgeprune-serve"};
  edgeprune::testing::TestPki pki_;
  std::unique_ptr<edgeprune::testing::Process> server_;
  std::uint16_t port_ = 0;
};

}  // namespace edgeprune::server::testing
