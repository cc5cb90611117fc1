#include "server/deploy/rollout_gates.hpp"

namespace edgeprune::deploy {
namespace bj = boost::json;
namespace {

bool HasOutcome(const std::string& state) {
  return state == "installed" || state == "verified" || state == "failed";
}

bool Running(const std::string& state) { return state == "installed" || state == "verified"; }

GateValue Judge(const GateSpec& spec, double value, std::int64_t samples) {
  GateValue g;
  g.spec = spec;
  g.value = value;
  g.samples = samples;
  g.judged = samples >= spec.min_samples;
  g.tripped = g.judged && value > spec.threshold;
  return g;
}

GateValue Evaluate(const GateSpec& spec, const std::vector<DeviceObservation>& devices) {
  switch (spec.kind) {
    case GateKind::kInstallFailureRate: {
      std::int64_t n = 0, failed = 0;
      for (const auto& d : devices) {
        if (!HasOutcome(d.state)) continue;
        ++n;
        if (d.state == "failed") ++failed;
      }
      return Judge(spec, n ? static_cast<double>(failed) / static_cast<double>(n) : 0.0, n);
    }
    case GateKind::kOfflineAfterUpdate: {
      std::int64_t n = 0, silent = 0;
      for (const auto& d : devices) {
        if (!Running(d.state)) continue;
        ++n;
        if (d.silent) ++silent;
      }
      return Judge(spec, n ? static_cast<double>(silent) / static_cast<double>(n) : 0.0, n);
    }
    case GateKind::kProbeAccuracyDrop: {
      std::int64_t n = 0;
      double drop = 0.0;
      for (const auto& d : devices) {
        if (!Running(d.state) || !d.now || !d.now->probe_accuracy || !d.baseline_probe) continue;
        ++n;
        drop += *d.baseline_probe - *d.now->probe_accuracy;
      }
      return Judge(spec, n ? drop / static_cast<double>(n) : 0.0, n);
    }
    case GateKind::kFeedbackAccuracyDrop: {
      std::int64_t labels = 0;
      double drop = 0.0;
      for (const auto& d : devices) {
        if (!Running(d.state) || !d.now || !d.now->feedback_accuracy || d.now->labels <= 0) {
          continue;
        }
        const auto baseline = d.baseline_feedback ? d.baseline_feedback : d.baseline_probe;
        if (!baseline) continue;
        labels += d.now->labels;
        drop += (*baseline - *d.now->feedback_accuracy) * static_cast<double>(d.now->labels);
      }
      return Judge(spec, labels ? drop / static_cast<double>(labels) : 0.0, labels);
    }
    case GateKind::kP95OverSlo: {
      std::int64_t n = 0;
      std::vector<std::string> breaching;
      for (const auto& d : devices) {
        if (!Running(d.state) || !d.slo_ms || !d.now || !d.now->p95_ms) continue;
        ++n;
        if (*d.now->p95_ms > *d.slo_ms) breaching.push_back(d.device_id);
      }
      GateValue g = Judge(
          spec, n ? static_cast<double>(breaching.size()) / static_cast<double>(n) : 0.0, n);
      g.breaching = std::move(breaching);
      return g;
    }
  }
  return Judge(spec, 0.0, 0);
}

}  // namespace

std::vector<GateValue> EvaluateGates(const std::vector<GateSpec>& gates,
                                     const std::vector<DeviceObservation>& devices) {
  std::vector<GateValue> out;
  out.reserve(gates.size());
  for (const auto& g : gates) out.push_back(Evaluate(g, devices));
  return out;
}

bj::object ToJson(const GateValue& g) {
  return bj::object{{"gate", GateName(g.spec.kind)},   {"value", g.value},
                    {"threshold", g.spec.threshold},   {"samples", g.samples},
                    {"min_samples", g.spec.min_samples}, {"judged", g.judged},
                    {"tripped", g.tripped},            {"action", ActionName(g.spec.action)}};
}

}  // namespace edgeprune::deploy
