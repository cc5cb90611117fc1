#include "agent/local_api/local_api_server.hpp"

#include <algorithm>

namespace edgeprune::agent {

Result<std::unique_ptr<LocalApiServer>> LocalApiServer::Start(
    LocalApiOptions options, ModelRuntime& runtime, TelemetryCollector& collector,
    std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<LocalApiServer> server(new LocalApiServer());
  if (!registry) registry = std::make_shared<prometheus::Registry>();
  server->metrics_ = std::make_shared<AgentMetrics>(registry);
  auto http_metrics = std::make_shared<http::HttpMetrics>(registry);
  auto context = std::make_shared<LocalApiContext>();
  context->runtime = &runtime;
  context->collector = &collector;
  context->metrics = server->metrics_;
  context->max_infer_body_bytes = options.max_infer_body_bytes;
  auto router = std::make_shared<http::Router>();
  EP_RETURN_IF_ERROR(AddLocalApiRoutes(*router, context));
  // The listener's own limit sits above the handler's so an oversized infer body gets the
  // handler's 400 with its explanation; far larger bodies are cut off with 413.
  options.listener.body_limit =
      std::max<std::uint64_t>(options.listener.body_limit, 2 * options.max_infer_body_bytes);
  server->listener_ = std::make_unique<http::PlainHttpListener>(options.listener, router, http_metrics);
  EP_RETURN_IF_ERROR(server->listener_->Start());
  return server;
}

LocalApiServer::~LocalApiServer() { Stop(); }

void LocalApiServer::Stop() {
  if (listener_) {
    listener_->Stop();
    listener_->Wait();
  }
}

}  // namespace edgeprune::agent
