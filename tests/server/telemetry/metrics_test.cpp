// The per-device series rendered outside the prometheus-cpp registry: the text must still be what
// Prometheus parses (one header per family, each family's lines together, escaped labels), the
// latest report must win, and the inference counter must only grow.
#include "server/telemetry/metrics.hpp"

#include <gtest/gtest.h>

#include <string>

namespace edgeprune::telemetry {
namespace {

wire::TelemetryReport Report(const std::string& variant, double accuracy, std::int64_t inferences) {
  wire::TelemetryReport r;
  r.seq = 1;
  r.timestamp_ms = 1;
  r.variant_id = variant;
  r.probe_accuracy = accuracy;
  r.probe_latency = wire::LatencyQuantiles{1.5, 2.5, 3.5, 10};
  r.inference_count = inferences;
  return r;
}

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(TelemetryMetricsTest, FamiliesAreContiguousWithOneHeaderEach) {
  TelemetryMetrics m(std::make_shared<prometheus::Registry>());
  m.Observe("dev-a", {Report("var-1", 0.9, 5)}, {"var-1"});
  m.Observe("dev-b", {Report("var-1", 0.8, 7)}, {"var-1"});
  std::string text;
  m.AppendExposition(text);
  EXPECT_EQ(Count(text, "# TYPE edgeprune_device_latency_ms gauge\n"), 1u) << text;
  EXPECT_EQ(Count(text, "# TYPE edgeprune_device_accuracy gauge\n"), 1u) << text;
  EXPECT_EQ(Count(text, "# TYPE edgeprune_device_inferences_total counter\n"), 1u) << text;
  // Every accuracy line comes after its family's header and before the next family's.
  const auto accuracy_header = text.find("# TYPE edgeprune_device_accuracy");
  const auto inference_header = text.find("# TYPE edgeprune_device_inferences_total");
  const auto a = text.find("edgeprune_device_accuracy{device=\"dev-a\"");
  const auto b = text.find("edgeprune_device_accuracy{device=\"dev-b\"");
  EXPECT_LT(accuracy_header, a);
  EXPECT_LT(a, inference_header);
  EXPECT_LT(b, inference_header);
  EXPECT_NE(text.find("edgeprune_device_latency_ms{device=\"dev-a\",quantile=\"0.95\","
                      "source=\"probe\",variant=\"var-1\"} 2.5\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(Count(text, "edgeprune_device_latency_ms{"), 6u) << "3 quantiles × 2 devices";
}

TEST(TelemetryMetricsTest, LatestGaugeWinsAndTheCounterAccumulates) {
  TelemetryMetrics m(std::make_shared<prometheus::Registry>());
  m.Observe("dev-a", {Report("var-1", 0.9, 5)}, {"var-1"});
  m.Observe("dev-a", {Report("var-1", 0.75, 3)}, {"var-1"});
  std::string text;
  m.AppendExposition(text);
  EXPECT_NE(text.find("edgeprune_device_accuracy{device=\"dev-a\",source=\"probe\","
                      "variant=\"var-1\"} 0.75\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgeprune_device_inferences_total{device=\"dev-a\",variant=\"var-1\"} 8\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(m.pairs(), 1u);
}

TEST(TelemetryMetricsTest, LabelValuesAreEscapedAndNothingIsRenderedWithoutSeries) {
  TelemetryMetrics m(std::make_shared<prometheus::Registry>());
  std::string empty;
  m.AppendExposition(empty);
  EXPECT_TRUE(empty.empty()) << "no headers for families without series";
  // Ids are validated before they reach the metrics; were one not, it must not forge a line.
  const std::string hostile = "dev\"} 1\nforged_metric{a=\"\\";
  m.Observe(hostile, {Report("var-1", 0.5, 1)}, {"var-1"});
  std::string text;
  m.AppendExposition(text);
  EXPECT_EQ(text.find("\nforged_metric"), std::string::npos) << text;
  EXPECT_NE(text.find("device=\"dev\\\"} 1\\nforged_metric{a=\\\"\\\\\""), std::string::npos) << text;
}

TEST(TelemetryMetricsTest, UnknownVariantsAndPairsOverTheCapGetNoSeries) {
  TelemetryMetrics m(std::make_shared<prometheus::Registry>());
  m.SetSeriesCap(1);
  m.Observe("dev-a", {Report("var-unknown", 0.9, 1)}, {"var-1"});
  m.Observe("dev-a", {Report("var-1", 0.9, 1)}, {"var-1"});
  m.Observe("dev-b", {Report("var-1", 0.9, 1)}, {"var-1"});
  std::string text;
  m.AppendExposition(text);
  EXPECT_EQ(m.pairs(), 1u);
  EXPECT_EQ(text.find("var-unknown"), std::string::npos);
  EXPECT_EQ(text.find("dev-b"), std::string::npos);
}

TEST(TelemetryMetricsTest, JobAttemptsAreAHistogramByKindAndOutcome) {
  auto registry = std::make_shared<prometheus::Registry>();
  TelemetryMetrics m(registry);
  m.ObserveJobAttempt("build_variant", "succeeded", 42.0);
  m.ObserveJobAttempt("build_variant", "succeeded", 3.0);
  m.ObserveJobAttempt("build_variant", "failed", 7.0);
  std::uint64_t succeeded = 0, failed = 0;
  double succeeded_sum = 0;
  for (const auto& family : registry->Collect()) {
    if (family.name != "edgeprune_job_attempt_seconds") continue;
    for (const auto& metric : family.metric) {
      const bool ok = metric.label.at(1).value == "succeeded";
      (ok ? succeeded : failed) = metric.histogram.sample_count;
      if (ok) succeeded_sum = metric.histogram.sample_sum;
    }
  }
  EXPECT_EQ(succeeded, 2u);
  EXPECT_EQ(failed, 1u);
  EXPECT_DOUBLE_EQ(succeeded_sum, 45.0);
}

}  // namespace
}  // namespace edgeprune::telemetry
