// The fleet API against untrusted clients (issue 13), over real TLS and SQLite: what anonymous
// and enrolled clients can no longer do, and the operator's view of enrollment tokens.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "enroll_fixture.hpp"
#include "server/fleet/device_ca.hpp"
#include "support/capture_stderr.hpp"

namespace edgeprune::fleet_test {
namespace {

class UntrustedClientsTest : public EnrollFixture {};

// Item 9: the device CA key gets the signing key's check.
TEST_F(UntrustedClientsTest, AGroupReadableDeviceCaKeyIsReported) {
  const std::string key = dir_.File("exposed-ca.key");
  std::filesystem::copy_file(pki_.client_ca.key, key);
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  edgeprune::testing::CaptureStderr capture(dir_.File("stderr.txt"));
  ASSERT_TRUE(fleet::DeviceCa::Load(pki_.client_ca.cert, key).ok());
  std::string text = capture.Stop();
  EXPECT_NE(text.find("device CA key"), std::string::npos) << text;
  EXPECT_NE(text.find("640"), std::string::npos) << text;

  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  edgeprune::testing::CaptureStderr quiet(dir_.File("stderr2.txt"));
  ASSERT_TRUE(fleet::DeviceCa::Load(pki_.client_ca.cert, key).ok());
  text = quiet.Stop();
  EXPECT_EQ(text.find("device CA key"), std::string::npos) << text;
}

}  // namespace
}  // namespace edgeprune::fleet_test
