#pragma once
// The CLI's tests run the real `edgeprune` binary against the real `edgeprune-server serve`
// (ServeFixture: 127.0.0.1:0, the test PKI's TLS, a temp data dir) with a context file in the
// test's temp dir. Devices are enrolled over the agent API with a fresh key and CSR and report a
// profile over mTLS, as an agent would, without the agent's LibTorch start-up.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "server/support/serve_fixture.hpp"

namespace edgeprune::cli_test {

struct CliRun {
  int exit = -1;
  std::string out, err;
  boost::json::value json;  // stdout parsed, null when it is not JSON
};

struct Device {
  std::string id, key_file, cert_file;
};

class CliTest : public server::testing::ServeFixture {
 protected:
  // Starts the server with enrollment on and small, fast variant builds; makes the admin token
  // and a context "test" that the CLI uses by default.
  void SetUp() override;

  // Runs `edgeprune args...` with EDGEPRUNE_CONFIG pointing at this test's context file.
  CliRun Cli(const std::vector<std::string>& args,
          const std::vector<std::pair<std::string, std::string>>& env = {},
          std::chrono::seconds timeout = std::chrono::seconds(120)) const;
  // Starts it without waiting (a watch).
  std::unique_ptr<edgeprune::testing::Process> StartCli(const std::vector<std::string>& args) const;

  // The body of a GET made directly with the admin token.
  std::string RawGet(const std::string& path) const;
  // Enrolls a device and reports its profile; it then has a budget.
  Device EnrollDevice(const std::string& hostname);
  // A token made by the admin through the CLI.
  std::string NewToken(const std::string& name, const std::string& role);
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::string admin_token_;
  std::string config_path_;
};

// Lines of text (without the empty last one).
std::vector<std::string> SplitLines(const std::string& text);

}  // namespace edgeprune::cli_test
