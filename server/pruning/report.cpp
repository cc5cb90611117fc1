#include "server/pruning/report.hpp"

#include <cstdio>
#include <sstream>

namespace edgeprune::pruning {
namespace {

namespace bj = boost::json;

bj::object CostJson(const Cost& c, const Measured& m) {
  bj::object o;
  o["params"] = c.params;
  o["param_bytes"] = c.param_bytes;
  o["macs"] = c.macs;
  o["peak_activation_bytes"] = c.peak_activation_bytes;
  if (m.accuracy >= 0) o["accuracy"] = m.accuracy;
  if (m.latency_p50_ms >= 0) {
    o["latency_p50_ms"] = m.latency_p50_ms;
    o["latency_p95_ms"] = m.latency_p95_ms;
  }
  return o;
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

boost::json::object ToJson(const VariantReport& r) {
  const PruneResult& p = r.result;
  bj::object o;
  o["master"] = CostJson(p.master_cost, r.master);
  bj::object v = CostJson(p.cost, r.variant);
  v["compressed_bytes"] = p.compressed_bytes;
  v["weight_sparsity"] = p.sparsity;
  o["variant"] = std::move(v);
  bj::object ratios;
  ratios["params"] = Ratio(double(p.master_cost.params), double(p.cost.params));
  ratios["macs"] = Ratio(double(p.master_cost.macs), double(p.cost.macs));
  if (r.master.latency_p50_ms > 0 && r.variant.latency_p50_ms > 0) {
    ratios["latency_speedup"] = Ratio(r.master.latency_p50_ms, r.variant.latency_p50_ms);
  }
  if (r.master.accuracy >= 0 && r.variant.accuracy >= 0) {
    ratios["accuracy_drop_points"] = 100.0 * (r.master.accuracy - r.variant.accuracy);
  }
  o["ratios"] = std::move(ratios);
  bj::array bounds;
  for (const auto& b : p.bounds) {
    bj::object e;
    e["bound"] = b.name;
    e["limit"] = b.limit;
    e["value"] = b.value;
    e["ok"] = b.ok;
    bounds.push_back(std::move(e));
  }
  o["bounds"] = std::move(bounds);
  bj::array layers;
  for (const auto& w : p.widths) {
    bj::object e;
    e["layer"] = w.name;
    e["master"] = w.master;
    e["kept"] = w.kept;
    layers.push_back(std::move(e));
  }
  o["kept_channels"] = std::move(layers);
  bj::array frozen;
  for (const auto& f : p.frozen_ops) frozen.push_back(bj::string(f));
  o["frozen_ops"] = std::move(frozen);
  o["criterion"] = r.criterion;
  o["steps"] = p.steps;
  o["finetune_steps"] = p.finetune_steps;
  o["finetune_seconds"] = p.finetune_seconds;
  o["batch_norm_recalibrations"] = p.recalibrations;
  o["folded_batch_norms"] = p.folded_batch_norms;
  if (!r.latency_method.empty()) o["latency_method"] = r.latency_method;
  return o;
}

std::string ToText(const VariantReport& r) {
  const PruneResult& p = r.result;
  std::ostringstream s;
  char line[256];
  auto row = [&](const char* name, double master, double variant) {
    std::snprintf(line, sizeof(line), "  %-22s %14.0f %14.0f %8.2fx\n", name, master, variant,
                  Ratio(master, variant));
    s << line;
  };
  s << "                                 master        variant    ratio\n";
  row("parameters", double(p.master_cost.params), double(p.cost.params));
  row("parameter bytes", double(p.master_cost.param_bytes), double(p.cost.param_bytes));
  row("MACs", double(p.master_cost.macs), double(p.cost.macs));
  row("peak activation bytes", double(p.master_cost.peak_activation_bytes),
      double(p.cost.peak_activation_bytes));
  if (r.master.accuracy >= 0 && r.variant.accuracy >= 0) {
    std::snprintf(line, sizeof(line), "  %-22s %13.2f%% %13.2f%% %+7.2f pt\n", "accuracy",
                  100 * r.master.accuracy, 100 * r.variant.accuracy,
                  100 * (r.variant.accuracy - r.master.accuracy));
    s << line;
  }
  if (r.master.latency_p50_ms > 0 && r.variant.latency_p50_ms > 0) {
    std::snprintf(line, sizeof(line), "  %-22s %14.3f %14.3f %8.2fx\n", "latency p50 ms",
                  r.master.latency_p50_ms, r.variant.latency_p50_ms,
                  Ratio(r.master.latency_p50_ms, r.variant.latency_p50_ms));
    s << line;
    std::snprintf(line, sizeof(line), "  %-22s %14.3f %14.3f\n", "latency p95 ms",
                  r.master.latency_p95_ms, r.variant.latency_p95_ms);
    s << line;
    if (!r.latency_method.empty()) s << "  (latency of both: " << r.latency_method << ")\n";
  }
  s << "batch norm: statistics re-estimated " << p.recalibrations << " time(s), "
    << p.folded_batch_norms << " folded into the convolution or linear layer before them\n";
  s << "bounds:\n";
  for (const auto& b : p.bounds) {
    std::snprintf(line, sizeof(line), "  %-18s %14.3f <= %14.3f  %s\n", b.name.c_str(), b.value,
                  b.limit, b.ok ? "ok" : "VIOLATED");
    s << line;
  }
  s << "kept channels:\n";
  for (const auto& w : p.widths) {
    std::snprintf(line, sizeof(line), "  %-30s %5lld / %lld\n", w.name.c_str(),
                  static_cast<long long>(w.kept), static_cast<long long>(w.master));
    s << line;
  }
  s << "frozen operations:";
  if (p.frozen_ops.empty()) s << " none";
  for (const auto& f : p.frozen_ops) s << " " << f;
  s << "\n";
  return s.str();
}

}  // namespace edgeprune::pruning
