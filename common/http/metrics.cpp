#include "common/http/metrics.hpp"

#include "common/http/process_metrics.hpp"

#include <prometheus/text_serializer.h>

#include <mutex>
#include <sstream>

namespace edgeprune::http {
namespace {

const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return buckets;
}

}  // namespace

HttpMetrics::HttpMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("edgeprune_http_requests_total")
                    .Help("HTTP requests answered, by route pattern, method and status code")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("edgeprune_http_request_duration_seconds")
                     .Help("Time from a complete request to its response being written")
                     .Register(*registry_)) {}

void HttpMetrics::Observe(const std::string& route, Verb method, unsigned status, double seconds) {
  std::string method_name(boost::beast::http::to_string(method));
  std::string hkey = route + '\n' + method_name;
  std::string ckey = hkey + '\n' + std::to_string(status);
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* histogram = nullptr;
  {
    std::shared_lock lock(mutex_);
    if (auto it = counters_.find(ckey); it != counters_.end()) counter = it->second;
    if (auto it = histograms_.find(hkey); it != histograms_.end()) histogram = it->second;
  }
  if (!counter || !histogram) {
    std::unique_lock lock(mutex_);
    auto& c = counters_[ckey];
    if (!c) {
      c = &requests_.Add({{"route", route}, {"method", method_name}, {"status", std::to_string(status)}});
    }
    auto& h = histograms_[hkey];
    if (!h) h = &durations_.Add({{"route", route}, {"method", method_name}}, Buckets());
    counter = c;
    histogram = h;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

Route MetricsRoute(std::shared_ptr<prometheus::Registry> registry, Auth auth,
                   std::vector<ExpositionAppender> appenders) {
  Route route;
  route.method = Verb::get;
  route.pattern = "/metrics";
  route.auth = auth;
  route.handler = [registry = std::move(registry),
                   appenders = std::move(appenders)](const RequestContext&) -> Result<Response> {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry->Collect());
    std::string text = std::move(out).str();
    for (const auto& append : appenders) append(text);
    AppendProcessMetrics(text);
    return TextResponse(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
  };
  return route;
}

}  // namespace edgeprune::http
