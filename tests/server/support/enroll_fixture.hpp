#pragma once
// An in-process server with the fleet API (real TLS on 127.0.0.1:0, device CA from the test PKI,
// real SQLite file, a ManualClock starting at the real time) and helpers for operator and device
// clients. Agents run as real processes (edgeprune::testing::AgentBin()) or as in-test mTLS clients.

#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "support/build_paths.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "server/fleet/fleet_service.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::fleet_test {

struct Reply {
  int status = 0;
  boost::json::object body;
  std::string raw;
};

struct DeviceFiles {
  std::string device_id;
  std::string cert;
  std::string key;
};

class EnrollFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string ServerUrl() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::unique_ptr<http::HttpsClient> Client(const std::string& cert = "", const std::string& key = "",
                                            const std::string& ca = "");
  // One request; a transport failure fails the test and returns status 0.
  Reply Call(http::HttpsClient& client, const std::string& method, const std::string& target,
             const std::string& body = "", const std::string& bearer = "");
  Reply Operator(const std::string& method, const std::string& target, const std::string& body = "",
                 const std::string& bearer = "");  // bearer defaults to the admin token
  // POST /api/v1/enrollment-tokens as admin; returns the secret.
  std::string NewEnrollmentToken(int max_uses = 1, int ttl_s = 3600);
  // Enrolls in-test (CSR + token over TLS) and writes the device's cert/key files.
  DeviceFiles EnrollDirect(const std::string& token);
  std::int64_t DeviceCount();

  // Extra fleet config overrides ("fleet.key=value"), set by a subclass before SetUp.
  std::vector<std::string> extra_config_;
  edgeprune::testing::TempDir dir_{"edgeprune-enroll"};
  edgeprune::testing::TestPki pki_;
  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::shared_ptr<fleet::FleetService> fleet_;
  std::unique_ptr<http::HttpsServer> server_;
  std::uint16_t port_ = 0;
  std::string admin_token_;
  int enrolled_ = 0;
};

}  // namespace edgeprune::fleet_test
