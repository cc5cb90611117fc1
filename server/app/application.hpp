#pragma once
// The server process: builds every service explicitly, in order, from a loaded Config, serves
// until SIGINT/SIGTERM, drains and returns. No singletons: each service is owned here and handed
// to whoever needs it.
//
// Thread-safety: Run() is called once, from main's thread.

#include "edgeprune/common/config.hpp"

namespace edgeprune::server {

class Application {
 public:
  explicit Application(Config config) : config_(std::move(config)) {}

  // Returns the process exit code: 0 after a graceful drain, 1 when startup failed.
  int Run();

 private:
  Config config_;
};

}  // namespace edgeprune::server
