#pragma once
// HTTP request metrics on a prometheus-cpp core registry, and the GET /metrics route that
// serializes that registry in the text format. The registry is shared: other components add
// their own families to it.
//
// Thread-safety: Observe() may be called from any thread; the registry is thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>
#include <unordered_map>

#include "common/http/router.hpp"

namespace edgeprune::http {

class HttpMetrics {
 public:
  // Builds edgeprune_http_requests_total{route,method,status} and
  // edgeprune_http_request_duration_seconds{route,method} once, on this registry.
  explicit HttpMetrics(std::shared_ptr<prometheus::Registry> registry);

  void Observe(const std::string& route, Verb method, unsigned status, double seconds);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  // Family::Add hashes the label set under a lock on every call; we resolve each label set once.
  std::shared_mutex mutex_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  std::unordered_map<std::string, prometheus::Histogram*> histograms_;
};

// GET /metrics: the registry in Prometheus text format 0.0.4. auth kViewer makes the scraper
// present a viewer token (Prometheus: authorization.credentials_file), since the series name
// every device and model. The answer ends with the process_* series (process_metrics.hpp).
// Text that follows the registry's exposition in the answer: series kept outside the registry
// because they are too many to convert on every scrape (the per-device telemetry families).
using ExpositionAppender = std::function<void(std::string& out)>;

Route MetricsRoute(std::shared_ptr<prometheus::Registry> registry, Auth auth = Auth::kPublic,
                   std::vector<ExpositionAppender> appenders = {});

}  // namespace edgeprune::http
