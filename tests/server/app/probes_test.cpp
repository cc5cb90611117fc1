// /healthz and /readyz against a real SQLite file: ready while it answers, 503 once it does not.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/app/probes.hpp"
#include "server/store/database.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::server {
namespace {

http::Response Get(http::Router& router, const std::string& path) {
  http::RequestContext ctx;
  ctx.method = http::Verb::get;
  ctx.target = path;
  ctx.request_id = "probe-test";
  return router.Handle(ctx).response;
}

// Overwrites the database and its WAL files in place, as a failing disk would.
void Clobber(const std::string& db_path) {
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    const std::string p = db_path + suffix;
    if (!std::filesystem::exists(p)) continue;
    auto size = std::max<std::uintmax_t>(std::filesystem::file_size(p), 4096);
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    std::string junk(size, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
}

TEST(Probes, ReadyWhileTheDatabaseAnswersThen503) {
  edgeprune::testing::TempDir dir;
  store::OpenOptions options;
  options.busy_timeout = std::chrono::milliseconds(200);
  auto db = store::Database::Open(dir.File("probe.db"), options);
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  std::shared_ptr<store::Database> database = std::move(db).value();
  ASSERT_TRUE(database->Exec("seed", "CREATE TABLE t(x); INSERT INTO t VALUES (1);").ok());

  http::Router router;
  for (auto& route : ProbeRoutes(database)) ASSERT_TRUE(router.Add(std::move(route)).ok());

  auto health = Get(router, "/healthz");
  EXPECT_EQ(health.status, http::HttpStatus::ok);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  auto ready = Get(router, "/readyz");
  EXPECT_EQ(ready.status, http::HttpStatus::ok) << ready.body;

  Clobber(database->path());
  auto broken = Get(router, "/readyz");
  EXPECT_EQ(broken.status, http::HttpStatus::service_unavailable) << broken.body;
  EXPECT_NE(broken.body.find("database_unavailable"), std::string::npos) << broken.body;
  // Liveness does not depend on the database.
  EXPECT_EQ(Get(router, "/healthz").status, http::HttpStatus::ok);
}

}  // namespace
}  // namespace edgeprune::server
