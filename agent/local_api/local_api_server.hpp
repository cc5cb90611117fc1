#pragma once
// The local inference API assembled: router with the /v1 routes and GET /metrics, the agent's
// metrics families, and the plaintext listener on loopback (address configurable).
//
// Thread-safety: Start() once; Stop() from any thread; the rest is read-only.

#include <prometheus/registry.h>

#include <memory>

#include "agent/local_api/agent_metrics.hpp"
#include "common/http/plain_listener.hpp"
#include "agent/local_api/routes.hpp"

namespace edgeprune::agent {

struct LocalApiOptions {
  http::ListenerOptions listener;
  std::size_t max_infer_body_bytes = 4 * 1024 * 1024;
};

class LocalApiServer {
 public:
  // runtime and collector must outlive the server. registry may be shared with other components.
  static Result<std::unique_ptr<LocalApiServer>> Start(LocalApiOptions options,
                                                       ModelRuntime& runtime,
                                                       TelemetryCollector& collector,
                                                       std::shared_ptr<prometheus::Registry> registry);
  ~LocalApiServer();

  std::uint16_t port() const { return listener_->port(); }
  void Stop();
  const std::shared_ptr<AgentMetrics>& metrics() const { return metrics_; }

 private:
  LocalApiServer() = default;
  std::shared_ptr<AgentMetrics> metrics_;
  std::unique_ptr<http::PlainHttpListener> listener_;
};

}  // namespace edgeprune::agent
