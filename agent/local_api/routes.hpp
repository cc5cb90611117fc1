#pragma once
// The agent's local inference API, as routes on the shared http::Router:
//   POST /v1/infer     JSON {"shape": [1,1,28,28], "data": [...]} or a raw little-endian float32
//                      body (Content-Type: application/octet-stream) with "X-Shape: 1,1,28,28"
//                      → {"class", "scores", "latency_ms", "variant_id", "request_id"}
//   POST /v1/feedback  {"request_id", "label"}: the true label of an earlier request
//                      → {"request_id", "correct"}
//   GET  /metrics      the agent's Prometheus registry
// Bad input (malformed JSON, wrong shape or element count, NaN/Inf, a body over
// max_infer_body_bytes) → 400 with {"error": {"code", "message"}}; no model yet → 503.
//
// Thread-safety: handlers run concurrently; everything they touch is thread-safe.

#include <memory>

#include "agent/local_api/agent_metrics.hpp"
#include "agent/runtime/runtime.hpp"
#include "agent/telemetry/telemetry_collector.hpp"
#include "edgeprune/common/result.hpp"
#include "common/http/router.hpp"

namespace edgeprune::agent {

struct LocalApiContext {
  ModelRuntime* runtime = nullptr;        // not owned; outlives the routes
  TelemetryCollector* collector = nullptr;
  std::shared_ptr<AgentMetrics> metrics;  // may be null
  std::size_t max_infer_body_bytes = 4 * 1024 * 1024;
};

Status AddLocalApiRoutes(http::Router& router, std::shared_ptr<const LocalApiContext> context);

}  // namespace edgeprune::agent
