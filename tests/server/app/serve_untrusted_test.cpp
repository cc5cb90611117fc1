// The real edgeprune-server binary (issue 13 items 7 and 9): its data stays private to its user,
// and the bootstrap admin secret is printed on an empty database only.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "server/support/serve_fixture.hpp"

namespace edgeprune::server {
namespace {

class ServeUntrustedTest : public testing::ServeFixture {};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST_F(ServeUntrustedTest, DataIsPrivateAndTheBootstrapSecretIsPrintedOnlyOnAnEmptyDatabase) {
  const mode_t old_umask = ::umask(022);  // the usual umask, under which all of this was 0755/0644
  StartServer();
  ::umask(old_umask);
  const std::string out = server_->Stdout();
  const auto at = out.find("admin token (shown once): ept_");
  ASSERT_NE(at, std::string::npos) << out;
  const auto secret_at = out.find("ept_", at);
  const std::string admin = out.substr(secret_at, out.find('\n', secret_at) - secret_at);

  EXPECT_EQ(ModeOf(dir_.File("data")), 0700u);
  EXPECT_EQ(ModeOf(dir_.File("data/edgeprune.db")), 0600u);
  EXPECT_EQ(ModeOf(dir_.File("data/blobs")), 0700u);

  // Every admin token revoked: the next start must not print a fresh secret.
  auto revoked = Client()->Send({"DELETE", "/api/v1/tokens/bootstrap-admin",
                                 {{"Authorization", "Bearer " + admin}}, ""});
  ASSERT_TRUE(revoked.ok()) << revoked.error().ToString();
  ASSERT_EQ(revoked->status, 200) << revoked->body;
  EXPECT_EQ(server_->Stop(), 0);
  StartServer();
  EXPECT_EQ(server_->Stdout().find("admin token"), std::string::npos) << server_->Stdout();
  auto refused = Client()->Get("/api/v1/tokens", {{"Authorization", "Bearer " + admin}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
}

}  // namespace
}  // namespace edgeprune::server
