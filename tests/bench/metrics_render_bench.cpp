// What `/metrics` costs as the fleet grows, and what a device spraying fresh variant ids costs.
// The real TelemetryMetrics on a real prometheus-cpp registry, rendered by the real `/metrics`
// route handler (http::MetricsRoute); each device reports one variant with every field a report
// can carry (probe and live latency quantiles, probe and feedback accuracy, inferences: 9 series).
// Printed side by side in one run:
//   - render time (median of 15) and body size at 1,000 / 10,000 / 20,000 devices (the default
//     series cap is 20,000 pairs), ours (each pair's lines pre-rendered, TelemetryMetrics) against
//     the same series as prometheus-cpp families on the registry; target: ≤ 50 ms at 10,000;
//   - 50,000 reports with distinct variant ids from one device: series added and RSS growth with
//     the bound (ours: only variants the device may run get series) against the same reports
//     admitted unchecked (the baseline: what the server did before issue 13).
// Never run in CI.
//   cmake --build <build> --target metrics_render_bench && nice -n 10 <build>/tests/metrics_render_bench
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/http/metrics.hpp"
#include "common/http/request_context.hpp"
#include "server/telemetry/metrics.hpp"

namespace ep = edgeprune;

namespace {

ep::wire::TelemetryReport FullReport(const std::string& variant) {
  ep::wire::TelemetryReport r;
  r.seq = 1;
  r.timestamp_ms = 1'700'000'000'000;
  r.variant_id = variant;
  r.probe_accuracy = 0.91;
  r.probe_latency = ep::wire::LatencyQuantiles{1.2, 2.3, 3.4, 200};
  r.live_latency = ep::wire::LatencyQuantiles{1.1, 2.2, 3.3, 50};
  r.feedback_accuracy = 0.88;
  r.feedback_count = 20;
  r.inference_count = 50;
  return r;
}

long RssKb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

std::size_t SeriesIn(const std::string& body) {
  std::size_t n = 0;
  std::size_t at = 0;
  while (at < body.size()) {
    const auto end = body.find('\n', at);
    if (body[at] != '#' && end != at) ++n;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return n;
}

struct Render {
  double median_ms = 0.0;
  std::size_t bytes = 0;
  std::size_t series = 0;
};

Render Measure(const std::shared_ptr<prometheus::Registry>& registry,
               const ep::telemetry::TelemetryMetrics& metrics) {
  const auto route = ep::http::MetricsRoute(
      registry, ep::http::Auth::kPublic,
      {[&metrics](std::string& out) { metrics.AppendExposition(out); }});
  ep::http::RequestContext ctx;
  std::vector<double> ms;
  std::string body;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = route.handler(ctx);
    const auto t1 = std::chrono::steady_clock::now();
    if (!r.ok()) {
      std::fprintf(stderr, "render failed: %s\n", r.error().ToString().c_str());
      std::exit(1);
    }
    body = r->body;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], body.size(), SeriesIn(body)};
}

// The baseline: the same nine series per device as prometheus-cpp gauges and a counter on the
// registry, rendered by Registry::Collect and TextSerializer (what the server did before).
double RegistryBaselineMs(int devices) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& latency = prometheus::BuildGauge().Name("edgeprune_device_latency_ms").Register(*registry);
  auto& accuracy = prometheus::BuildGauge().Name("edgeprune_device_accuracy").Register(*registry);
  auto& inferences =
      prometheus::BuildCounter().Name("edgeprune_device_inferences_total").Register(*registry);
  for (int d = 0; d < devices; ++d) {
    const std::string dev = "dev-" + std::to_string(d);
    for (const char* source : {"probe", "live"}) {
      for (const char* q : {"0.5", "0.95", "0.99"}) {
        latency.Add({{"device", dev}, {"variant", "var-1"}, {"source", source}, {"quantile", q}})
            .Set(1.5);
      }
    }
    accuracy.Add({{"device", dev}, {"variant", "var-1"}, {"source", "probe"}}).Set(0.91);
    accuracy.Add({{"device", dev}, {"variant", "var-1"}, {"source", "feedback"}}).Set(0.88);
    inferences.Add({{"device", dev}, {"variant", "var-1"}}).Increment(50);
  }
  const auto route = ep::http::MetricsRoute(registry, ep::http::Auth::kPublic);
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = route.handler(ep::http::RequestContext{});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
    if (!r.ok()) std::exit(1);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void FleetRow(int devices) {
  auto registry = std::make_shared<prometheus::Registry>();
  ep::telemetry::TelemetryMetrics metrics(registry);
  const std::set<std::string> known{"var-1"};
  for (int d = 0; d < devices; ++d) {
    metrics.Observe("dev-" + std::to_string(d), {FullReport("var-1")}, known);
  }
  const Render r = Measure(registry, metrics);
  const double baseline = RegistryBaselineMs(devices);
  std::printf("| %d devices | %zu | %.1f KiB | %.2f ms | %.2f ms | %.0f× |\n", devices, r.series,
              static_cast<double>(r.bytes) / 1024.0, r.median_ms, baseline,
              baseline / std::max(r.median_ms, 1e-3));
}

void SprayRow(const char* label, bool bounded) {
  auto registry = std::make_shared<prometheus::Registry>();
  ep::telemetry::TelemetryMetrics metrics(registry);
  if (!bounded) metrics.SetSeriesCap(std::size_t{1} << 40);  // before issue 13 there was no cap
  const std::size_t before_series = Measure(registry, metrics).series;
  const long before_kb = RssKb();
  // Bounded: the route passes the variants the device may run (here one). Unbounded: every id
  // the device names is taken as known, as the server did before.
  std::set<std::string> known{"var-assigned"};
  for (int i = 0; i < 50'000; ++i) {
    const std::string id = "var-fresh-" + std::to_string(i);
    if (!bounded) known = {id};
    metrics.Observe("dev-sprayer", {FullReport(id)}, known);
  }
  const long after_kb = RssKb();
  const Render r = Measure(registry, metrics);
  std::printf("| %s | %zu | %+.1f MiB | %.1f KiB | %.2f ms |\n", label, r.series - before_series,
              static_cast<double>(after_kb - before_kb) / 1024.0,
              static_cast<double>(r.bytes) / 1024.0, r.median_ms);
}

}  // namespace

int main() {
  // The spray first: RSS only shows growth on a heap the fleet rows have not already grown.
  std::printf("50,000 reports with distinct variant ids from one device\n\n");
  std::printf("| | series added | RSS growth | body | render |\n|---|---|---|---|---|\n");
  SprayRow("ours (only variants the device may run)", true);
  SprayRow("baseline (every reported id admitted, no cap)", false);
  std::printf("\n/metrics render (the real route handler), median of 15\n\n");
  std::printf("| fleet | series | body | render (ours: pre-rendered lines) | render (baseline: "
              "prometheus-cpp registry) | ratio |\n|---|---|---|---|---|---|\n");
  for (int n : {1'000, 10'000, 20'000}) FleetRow(n);
  return 0;
}
