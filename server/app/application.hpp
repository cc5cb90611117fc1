#pragma once
// The server process: builds every service explicitly, in order, from a loaded Config, serves
// until SIGINT/SIGTERM, drains and returns. No singletons: each service is owned here and handed
// to whoever needs it. Routes() runs the same steps up to the route list and stops there, so
// `edgeprune-server routes` prints exactly the table `serve` serves.
//
// Thread-safety: Run(), RunWorker() or Routes() is called once, from main's thread.

#include <vector>

#include "common/http/router.hpp"
#include "edgeprune/common/config.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::server {

class Application {
 public:
  explicit Application(Config config) : config_(std::move(config)) {}

  // Returns the process exit code: 0 after a graceful drain, 1 when startup failed.
  int Run();
  // `edgeprune-server worker`: the variant-build workers only (no HTTP listener), on a
  // PostgreSQL database that `serve` processes share, until SIGINT/SIGTERM; running builds go
  // back to the queue. Same exit codes as Run().
  int RunWorker();
  // Every route Run() would serve, from the same composition (the services it starts for that,
  // worker pool included, are stopped again before it returns). Run it on a throwaway
  // server.data_dir: the steps open and migrate the database there.
  Result<std::vector<http::Route>> Routes();

 private:
  struct Assembly;
  Result<Assembly> Assemble();

  Config config_;
};

}  // namespace edgeprune::server
