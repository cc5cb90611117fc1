// The model worker's cost, measured side by side in one run. Never run in CI.
//
// 1. /healthz latency on loopback (one keep-alive client, one request at a time) with no upload
//    running (baseline) and while 4 uploads of a VGG master are validated at once in model
//    workers (target: p99 <= 50 ms).
// 2. A variant build (prune + fine-tune + evaluate on Fashion-MNIST) run in-process (baseline,
//    what the server did before) and in a sandboxed model worker; alternated, median of 3 each
//    (target: the worker adds <= 10 %).
//
//   cmake --build <build> --target model_worker_bench edgeprune-server
//   nice -n 10 <build>/tests/model_worker_bench [--uploads-only | --builds-only] [--steps N]
// (nice: the worker lowers itself to nice 10; the in-process side must run at the same priority
// for the comparison to be fair on a machine with other work.)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

#include "support/build_paths.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/tls.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "server/model_worker/worker_client.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/zoo.hpp"
#include "server/model_worker/variant_build.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/app/variants_module.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace ep = edgeprune;
using Clock = std::chrono::steady_clock;

namespace {

class OperatorAuthenticator : public ep::http::Authenticator {
 public:
  ep::Result<ep::http::Principal> AuthenticateBearer(std::string_view token) override {
    if (token == "op") {
      return ep::http::Principal{ep::http::Principal::Kind::kUser, "op", ep::http::Role::kOperator};
    }
    return ep::MakeError(ep::ErrorKind::kUnauthenticated, "unauthenticated", "unknown token");
  }
  ep::Result<ep::http::Principal> AuthenticateDevice(const ep::tls::PeerCertificate&) override {
    return ep::MakeError(ep::ErrorKind::kUnauthenticated, "unauthenticated", "no devices");
  }
};

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

double Median(std::vector<double> v) { return Quantile(std::move(v), 0.5); }

void Die(const std::string& what) {
  std::fprintf(stderr, "model_worker_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<ep::http::HttpsClient> Client(const ep::testing::TestPki& pki, std::uint16_t port) {
  auto ctx = ep::tls::MakeClientContext({pki.ca.cert, "", ""});
  if (!ctx.ok()) Die(ctx.error().ToString());
  ep::http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.tls = *ctx;
  o.timeout = std::chrono::seconds(300);
  return std::make_unique<ep::http::HttpsClient>(o);
}

// /healthz latencies (ms) until `stop` or `count` requests.
std::vector<double> Probe(ep::http::HttpsClient& client, std::atomic<bool>* stop, int count) {
  std::vector<double> ms;
  while ((stop && !stop->load()) || (!stop && static_cast<int>(ms.size()) < count)) {
    const auto t0 = Clock::now();
    auto r = client.Get("/healthz");
    if (!r.ok() || r->status != 200) Die("healthz failed");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return ms;
}

void Print(const char* label, const std::vector<double>& ms) {
  std::printf("  %-34s n=%5zu  p50=%7.2f ms  p99=%7.2f ms  max=%7.2f ms\n", label, ms.size(),
              Quantile(ms, 0.5), Quantile(ms, 0.99), Quantile(ms, 1.0));
}

void UploadBench(const ep::testing::TempDir& dir) {
  auto pki = ep::testing::MakeTestPki(dir.path());
  auto opened = ep::store::Database::Open(dir.File("bench.db"), ep::store::OpenOptions{});
  if (!opened.ok()) Die(opened.error().ToString());
  std::shared_ptr<ep::store::Database> db = std::move(opened).value();
  auto migrator = ep::store::Migrator::Load(ep::store::DefaultMigrationsDir(), ep::store::Dialect::kSqlite);
  if (!migrator.ok() || !migrator->Apply(*db).ok()) Die("migrate");
  ep::ConfigSchema schema;
  ep::server::AddVariantsConfig(schema);
  auto config = ep::Config::Load(
      schema, "", {std::string("model_worker.executable=") + edgeprune::testing::ServerBin(),
                   "variants.max_model_bytes=1073741824"}, "");
  if (!config.ok()) Die(config.error().ToString());
  auto module = ep::server::VariantsModule::Start(
      *config, db, std::make_shared<prometheus::Registry>(), dir.File("data"));
  if (!module.ok()) Die(module.error().ToString());
  auto router = std::make_shared<ep::http::Router>(std::make_shared<OperatorAuthenticator>());
  for (auto& r : (*module)->Routes()) (void)router->Add(std::move(r));
  ep::http::Route health;
  health.pattern = "/healthz";
  health.handler = [](const ep::http::RequestContext&) -> ep::Result<ep::http::Response> {
    return ep::http::JsonResponse(boost::json::object{{"status", "ok"}});
  };
  (void)router->Add(std::move(health));
  auto tls = ep::tls::MakeServerContext({pki.server.cert, pki.server.key, "",
                                         ep::tls::ClientCertMode::kNone});
  if (!tls.ok()) Die(tls.error().ToString());
  ep::http::ServerOptions options;  // the server's defaults: 2 I/O threads, 4 blocking threads
  options.body_limit = 1u << 30;
  ep::http::HttpsServer server(options, *tls, router, nullptr);
  auto port = server.Start();
  if (!port.ok()) Die(port.error().ToString());

  auto vgg = ep::models::BuildMaster("vgg", {{1, 28, 28}, 10, 1, 1.0});
  if (!vgg.ok()) Die(vgg.error().ToString());
  const std::string path = dir.File("vgg.pt");
  if (!ep::models::SaveModule(*vgg, path).ok()) Die("save vgg");
  const std::string bytes = ep::fs::ReadFile(path, 1u << 30).value();
  std::printf("/healthz while VGG masters (%zu bytes) are validated in model workers\n",
              bytes.size());

  auto health_client = Client(pki, *port);
  const auto baseline = Probe(*health_client, nullptr, 400);
  std::atomic<bool> stop{false};
  std::atomic<int> uploads{0}, refused{0};
  std::vector<std::thread> uploaders;
  for (int i = 0; i < 4; ++i) {
    uploaders.emplace_back([&] {
      auto c = Client(pki, *port);
      while (!stop) {
        auto r = c->Post("/api/v1/models?name=vgg&dataset=fashion-mnist&input_shape=1,28,28",
                         bytes, "application/octet-stream", {{"Authorization", "Bearer op"}});
        (r.ok() && r->status == 201 ? uploads : refused)++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // all four in flight
  std::atomic<bool> probe_stop{false};
  auto during = std::async(std::launch::async, [&] { return Probe(*health_client, &probe_stop, 0); });
  std::this_thread::sleep_for(std::chrono::seconds(30));
  probe_stop = true;
  const auto loaded = during.get();
  stop = true;
  for (auto& t : uploaders) t.join();
  Print("no upload (baseline)", baseline);
  Print("4 uploads validating at once", loaded);
  std::printf("  uploads completed: %d (refused: %d)\n", uploads.load(), refused.load());
  server.Stop();
  server.Wait();
  (*module)->Stop();
}

void BuildBench(const ep::testing::TempDir& dir, std::int64_t steps) {
  auto master = ep::models::BuildMaster("lenet5", {{1, 28, 28}, 10, 1, 1.0});
  if (!master.ok()) Die(master.error().ToString());
  const std::string master_path = dir.File("lenet5.pt");
  if (!ep::models::SaveModule(*master, master_path).ok()) Die("save");
  auto cost = ep::models::EstimateCost(*master, {1, 28, 28});
  if (!cost.ok()) Die(cost.error().ToString());
  ep::catalog::VariantBuildOptions options;
  options.dataset_dir = "/usr/share/datasets/fashion-mnist";
  options.train_limit = 6000;
  options.test_limit = 2000;
  options.finetune_steps = steps;
  options.finetune_seconds = 600;
  ep::catalog::BuildRequest r;
  r.master_path = master_path;
  r.input_shape = {1, 1, 28, 28};
  r.num_classes = 10;
  r.dataset = "fashion-mnist";
  r.budget.max_macs = cost->macs / 4;
  ep::model_worker::WorkerOptions w;
  w.executable = edgeprune::testing::ServerBin();
  w.scratch_root = dir.File("sandbox");
  auto in_process = ep::model_worker::MakeVariantBuilder(options);
  auto in_worker = ep::model_worker::ModelWorkerClient(w).Builder(options);
  ep::models::SetIntraOpThreads(1);  // as in the worker (model_worker.threads = 1)
  std::vector<double> a, b;
  std::printf("variant build (LeNet-5 master, 4x fewer MACs, 6000 images, %lld steps)\n",
              static_cast<long long>(steps));
  for (int i = 0; i < 3; ++i) {
    for (int side = 0; side < 2; ++side) {
      r.output_path = dir.File("variant-" + std::to_string(i) + "-" + std::to_string(side) + ".pt");
      const auto t0 = Clock::now();
      auto o = side == 0 ? in_process(r) : in_worker(r);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!o.ok()) Die(o.error().ToString());
      (side == 0 ? a : b).push_back(s);
      std::printf("  run %d %-10s %6.2f s  accuracy %.4f\n", i + 1,
                  side == 0 ? "in-process" : "worker", s, o->accuracy);
      std::fflush(stdout);
    }
  }
  std::printf("  median in-process %.2f s, worker %.2f s, worker/in-process %.3f\n", Median(a),
              Median(b), Median(b) / Median(a));
}

}  // namespace

int main(int argc, char** argv) {
  ep::log::Get("model_worker")->set_level(spdlog::level::warn);
  ep::testing::TempDir dir("edgeprune-worker-bench");
  bool uploads_only = false, builds_only = false;
  std::int64_t steps = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--uploads-only") == 0) uploads_only = true;
    if (std::strcmp(argv[i], "--builds-only") == 0) builds_only = true;
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = std::atoll(argv[++i]);
  }
  if (!builds_only) UploadBench(dir);
  if (!uploads_only) BuildBench(dir, steps);
  return 0;
}
