// `edgeprune-server worker` as a real process beside a real `serve` on one PostgreSQL database:
// the serve process runs no build workers (variants.workers = 0) and enqueues the build of a
// deployment; the worker process claims and builds it, and the variant becomes ready for serve
// to deliver. Also the refusals: a worker on SQLite, a serve without workers on SQLite.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "server/support/serve_fixture.hpp"
#include "server/store/database.hpp"
#include "support/build_paths.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::server {
namespace {

namespace bj = boost::json;

class WorkerProcessTest : public testing::ServeFixture {
 protected:
  // Small builds: a few hundred images and fine-tuning steps.
  std::vector<std::string> Settings(const std::string& store_url, int workers) const {
    return {"--set", "store.url=" + store_url,
            "--set", "variants.workers=" + std::to_string(workers),
            "--set", "variants.finetune_steps=20",
            "--set", "variants.step_finetune_steps=5",
            "--set", "variants.train_limit=600",
            "--set", "variants.test_limit=200"};
  }

  // `edgeprune-server worker` with serve's configuration (every key but the listener's).
  std::unique_ptr<edgeprune::testing::Process> StartWorker(const std::string& store_url) {
    std::vector<std::string> args = ServeArgs(Settings(store_url, 1));
    args[0] = "worker";
    return std::make_unique<edgeprune::testing::Process>(edgeprune::testing::ProcessOptions{
        .program = edgeprune::testing::ServerBin(), .args = args, .env = {},
        .working_dir = dir_.path(), .output_dir = dir_.Subdir("worker-logs")});
  }

  bj::object Get(const std::string& target) {
    auto r = Client()->Get(target, {{"Authorization", "Bearer " + admin_}});
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << target << ": " << r->body;
    auto o = json::ParseObject(r->body);
    return o.ok() ? *o : bj::object{};
  }

  std::string admin_;
};

TEST_F(WorkerProcessTest, AServeWithoutWorkersEnqueuesAndAWorkerProcessBuilds) {
  edgeprune::testing::TestDatabase pg(store::Dialect::kPostgres);
  ASSERT_TRUE(pg.error().empty()) << pg.error();
  StartServer(Settings(pg.url(), 0));
  const std::string out = server_->Stdout();
  const auto at = out.find("ept_", out.find("admin token (shown once): "));
  ASSERT_NE(at, std::string::npos) << out;
  admin_ = out.substr(at, out.find('\n', at) - at);

  // A master, and a device whose budget needs a smaller variant of it.
  auto bytes = fs::ReadFile(edgeprune::testing::SourceDir() + "/tests/fixtures/pruning/mlp_scripted.pt");
  ASSERT_TRUE(bytes.ok());
  auto upload = Client()->Post("/api/v1/models?name=mlp&dataset=synthetic:1x28x28:10&input_shape=1,28,28",
                               *bytes, "application/octet-stream",
                               {{"Authorization", "Bearer " + admin_}});
  ASSERT_TRUE(upload.ok()) << upload.error().ToString();
  ASSERT_EQ(upload->status, 201) << upload->body;
  const std::string model(json::ParseObject(upload->body)->at("id").as_string());
  Budget half;
  half.max_macs = Get("/api/v1/models/" + model).at("macs").as_int64() / 2;
  {
    auto db = pg.Open(false);
    ASSERT_NE(db, nullptr);
    auto lease = db->Acquire();
    ASSERT_TRUE(lease.ok());
    auto added = (*lease)->Execute(
        "test_device", "INSERT INTO devices (id, tags, enrolled_at, budget) VALUES (?, ?, 0, ?)",
        "dev-a", "[\"lab\"]", json::Serialize(wire::ToJson(half)));
    ASSERT_TRUE(added.ok()) << added.error().ToString();
  }
  auto deployed = Client()->Post("/api/v1/deployments",
                                 R"({"model": ")" + model + R"(", "selector": {"tags": ["lab"]}})",
                                 "application/json", {{"Authorization", "Bearer " + admin_}});
  ASSERT_TRUE(deployed.ok()) << deployed.error().ToString();
  ASSERT_EQ(deployed->status, 201) << deployed->body;

  // Serve enqueued the build and nobody runs it.
  auto jobs = Get("/api/v1/jobs").at("items").as_array();
  ASSERT_EQ(jobs.size(), 1u);
  const std::string job_id(jobs[0].as_object().at("id").as_string());
  EXPECT_EQ(jobs[0].as_object().at("state").as_string(), "queued");
  EXPECT_NE(server_->Stderr().find("no build workers here"), std::string::npos);

  // A worker process builds it.
  auto worker = StartWorker(pg.url());
  ASSERT_TRUE(worker->WaitForLine("worker running: 1 build thread(s)", std::chrono::seconds(60)))
      << worker->Stdout() << worker->Stderr();
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    state = std::string(Get("/api/v1/jobs/" + job_id).at("state").as_string());
    if (state == "succeeded" || state == "failed" || state == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(state, "succeeded") << worker->Stderr();
  const auto variants = Get("/api/v1/models/" + model + "/variants").at("items").as_array();
  ASSERT_EQ(variants.size(), 1u);
  EXPECT_EQ(variants[0].as_object().at("status").as_string(), "ready");
  // The worker process ran it: the job names the worker by its process id.
  EXPECT_NE(worker->Stderr().find("runs build_variant job " + job_id), std::string::npos)
      << worker->Stderr();
  EXPECT_EQ(server_->Stderr().find("runs build_variant job"), std::string::npos);

  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(std::chrono::seconds(30)), 0) << worker->Stderr();
}

TEST_F(WorkerProcessTest, SqliteRefusesAWorkerAndAServeWithoutWorkers) {
  const std::string sqlite = "sqlite://" + dir_.File("data/edgeprune.db");
  auto worker = StartWorker(sqlite);
  EXPECT_EQ(worker->Wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(worker->Stderr().find("worker_needs_postgresql"), std::string::npos)
      << worker->Stderr();

  edgeprune::testing::Process serve({.program = edgeprune::testing::ServerBin(),
                                     .args = ServeArgs(Settings(sqlite, 0)),
                                     .env = {},
                                     .working_dir = dir_.path(),
                                     .output_dir = dir_.Subdir("serve-logs")});
  EXPECT_EQ(serve.Wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(serve.Stderr().find("variants.workers = 0"), std::string::npos) << serve.Stderr();
}

}  // namespace
}  // namespace edgeprune::server
