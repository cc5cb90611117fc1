#include "server/telemetry/metrics.hpp"

#include <charconv>

namespace edgeprune::telemetry {
namespace {

constexpr const char* kLatencyHeader =
    "# HELP edgeprune_device_latency_ms Latest reported batch-1 latency quantile per device and "
    "variant\n# TYPE edgeprune_device_latency_ms gauge\n";
constexpr const char* kAccuracyHeader =
    "# HELP edgeprune_device_accuracy Latest reported accuracy per device and variant (probe or "
    "feedback)\n# TYPE edgeprune_device_accuracy gauge\n";
constexpr const char* kInferencesHeader =
    "# HELP edgeprune_device_inferences_total Local API inferences reported per device and "
    "variant\n# TYPE edgeprune_device_inferences_total counter\n";

// A label value as the text format wants it: backslash, double quote and newline escaped. Ids
// are validated long before they get here; this keeps a bad one from breaking the exposition.
void AppendLabel(std::string& out, const char* name, const std::string& value) {
  out += name;
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendValue(std::string& out, double v) {
  char buf[32];
  // Shortest text that reads back as the same double; reports are validated finite.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out += ' ';
  out.append(buf, ec == std::errc() ? end : buf);
  out += '\n';
}

}  // namespace

TelemetryMetrics::TelemetryMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      variants_(prometheus::BuildGauge()
                    .Name("edgeprune_model_variants")
                    .Help("Variants per model and status")
                    .Register(*registry_)),
      jobs_(prometheus::BuildGauge()
                .Name("edgeprune_jobs")
                .Help("Jobs by state")
                .Register(*registry_)),
      job_seconds_(prometheus::BuildHistogram()
                       .Name("edgeprune_job_attempt_seconds")
                       .Help("Wall time of job attempts (e.g. variant builds) by kind and outcome")
                       .Register(*registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("edgeprune_metrics_reports_dropped_total")
                   .Help("Telemetry reports stored but given no per-device series: a variant the "
                         "device is not assigned, or the series cap reached")
                   .Register(*registry_)),
      dropped_unknown_(&dropped_.Add({{"reason", "unknown_variant"}})),
      dropped_cap_(&dropped_.Add({{"reason", "series_cap"}})) {}

void TelemetryMetrics::SetSeriesCap(std::size_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  series_cap_ = cap;
}

std::size_t TelemetryMetrics::pairs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pairs_.size();
}

void TelemetryMetrics::Observe(const std::string& device_id,
                               const std::vector<wire::TelemetryReport>& reports,
                               const std::set<std::string>& known_variants) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : reports) {
    const std::string& v = r.variant_id;
    if (!known_variants.count(v)) {
      dropped_unknown_->Increment();
      continue;
    }
    auto it = pairs_.find({device_id, v});
    if (it == pairs_.end()) {
      if (pairs_.size() >= series_cap_) {
        dropped_cap_->Increment();
        continue;
      }
      it = pairs_.emplace(std::make_pair(device_id, v), PairSeries{}).first;
    }
    PairSeries& s = it->second;
    if (r.probe_latency) s.probe_latency = r.probe_latency;
    if (r.live_latency && r.live_latency->count > 0) s.live_latency = r.live_latency;
    if (r.probe_accuracy) s.probe_accuracy = r.probe_accuracy;
    if (r.feedback_accuracy) s.feedback_accuracy = r.feedback_accuracy;
    if (r.inference_count > 0) s.inferences += static_cast<double>(r.inference_count);
    Render(device_id, v, s);
  }
}

void TelemetryMetrics::Render(const std::string& device_id, const std::string& variant_id,
                              PairSeries& s) {
  // One exposition line: name{device=…,<extra labels>,variant=…} value. Labels in name order, as
  // prometheus-cpp wrote them: dashboards and tests match either.
  using Label = std::pair<const char*, std::string>;
  auto line = [&](std::string& out, const char* name, std::initializer_list<Label> extra,
                  double value) {
    out += name;
    out += '{';
    AppendLabel(out, "device", device_id);
    for (const auto& [label, text] : extra) {
      out += ',';
      AppendLabel(out, label, text);
    }
    out += ',';
    AppendLabel(out, "variant", variant_id);
    out += '}';
    AppendValue(out, value);
  };
  s.latency_lines.clear();
  auto quantiles = [&](const char* source, const wire::LatencyQuantiles& q) {
    for (auto [quantile, value] : {std::pair{"0.5", q.p50_ms}, std::pair{"0.95", q.p95_ms},
                                   std::pair{"0.99", q.p99_ms}}) {
      line(s.latency_lines, "edgeprune_device_latency_ms",
           {{"quantile", quantile}, {"source", source}}, value);
    }
  };
  if (s.live_latency) quantiles("live", *s.live_latency);
  if (s.probe_latency) quantiles("probe", *s.probe_latency);

  s.accuracy_lines.clear();
  if (s.feedback_accuracy) {
    line(s.accuracy_lines, "edgeprune_device_accuracy", {{"source", "feedback"}},
         *s.feedback_accuracy);
  }
  if (s.probe_accuracy) {
    line(s.accuracy_lines, "edgeprune_device_accuracy", {{"source", "probe"}}, *s.probe_accuracy);
  }

  s.inference_lines.clear();
  if (s.inferences > 0) line(s.inference_lines, "edgeprune_device_inferences_total", {}, s.inferences);
}

void TelemetryMetrics::AppendExposition(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t bytes = 0;
  for (const auto& [key, s] : pairs_) {
    bytes += s.latency_lines.size() + s.accuracy_lines.size() + s.inference_lines.size();
  }
  out.reserve(out.size() + bytes + 512);
  // One family at a time: the text format wants a family's lines together, after its header.
  auto family = [&](const char* header, std::string PairSeries::*lines) {
    bool any = false;
    for (const auto& [key, s] : pairs_) {
      if ((s.*lines).empty()) continue;
      if (!any) out += header;
      any = true;
      out += s.*lines;
    }
  };
  family(kLatencyHeader, &PairSeries::latency_lines);
  family(kAccuracyHeader, &PairSeries::accuracy_lines);
  family(kInferencesHeader, &PairSeries::inference_lines);
}

void TelemetryMetrics::Refresh(const std::vector<VariantCount>& variants,
                               const std::vector<std::pair<std::string, std::int64_t>>& jobs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : variants) {
    variants_.Add({{"model", r.model_id}, {"status", r.status}}).Set(static_cast<double>(r.n));
  }
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"}) {
    jobs_.Add({{"state", state}}).Set(0);
  }
  for (const auto& [state, n] : jobs) jobs_.Add({{"state", state}}).Set(static_cast<double>(n));
}

void TelemetryMetrics::ObserveJobAttempt(const std::string& kind, const std::string& outcome,
                                         double seconds) {
  // Builds take seconds to tens of minutes.
  static const prometheus::Histogram::BucketBoundaries kBuckets{1, 5, 15, 30, 60, 120, 300, 600,
                                                                1200, 1800, 3600};
  std::lock_guard<std::mutex> lock(mu_);
  job_seconds_.Add({{"kind", kind}, {"outcome", outcome}}, kBuckets).Observe(seconds);
}

}  // namespace edgeprune::telemetry
