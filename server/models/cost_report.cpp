#include "server/models/cost_report.hpp"

#include <cstdio>
#include <sstream>

namespace edgeprune::models {
namespace {

namespace bj = boost::json;

bj::array ShapeJson(const std::vector<std::int64_t>& s) {
  bj::array a;
  for (auto d : s) a.emplace_back(d);
  return a;
}

std::string ShapeText(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

const LayerCost* CostReport::FindByPath(const std::string& path) const {
  for (const auto& l : layers) {
    if (l.path == path) return &l;
  }
  return nullptr;
}

std::int64_t CostReport::MacsUnder(const std::string& prefix) const {
  std::int64_t sum = 0;
  for (const auto& l : layers) {
    if (l.path == prefix || l.path.rfind(prefix + ".", 0) == 0) sum += l.macs;
  }
  return sum;
}

bj::object CostReport::ToJson() const {
  bj::array ls;
  for (const auto& l : layers) {
    bj::object o;
    o["path"] = l.path;
    o["op"] = l.op;
    o["node"] = l.node;
    o["input_shape"] = ShapeJson(l.input_shape);
    o["output_shape"] = ShapeJson(l.output_shape);
    o["params"] = l.params;
    o["macs"] = l.macs;
    o["output_bytes"] = l.output_bytes;
    if (l.op == "conv2d") o["groups"] = l.groups;
    ls.emplace_back(std::move(o));
  }
  bj::object o;
  o["input_shape"] = ShapeJson(input_shape);
  o["output_shape"] = ShapeJson(output_shape);
  o["params"] = params;
  o["param_bytes"] = param_bytes;
  o["buffer_bytes"] = buffer_bytes;
  o["macs"] = macs;
  o["peak_activation_bytes"] = peak_activation_bytes;
  o["layers"] = std::move(ls);
  return o;
}

std::string CostReport::ToTable() const {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof(line), "%-28s %-20s %-18s %10s %12s\n", "path", "op", "output",
                "params", "macs");
  os << line;
  for (const auto& l : layers) {
    std::snprintf(line, sizeof(line), "%-28s %-20s %-18s %10lld %12lld\n",
                  l.path.empty() ? "-" : l.path.c_str(), l.op.c_str(),
                  ShapeText(l.output_shape).c_str(), static_cast<long long>(l.params),
                  static_cast<long long>(l.macs));
    os << line;
  }
  std::snprintf(line, sizeof(line),
                "total: %lld params (%lld bytes, buffers %lld bytes), %lld MACs, peak "
                "activations %lld bytes at batch 1\n",
                static_cast<long long>(params), static_cast<long long>(param_bytes),
                static_cast<long long>(buffer_bytes), static_cast<long long>(macs),
                static_cast<long long>(peak_activation_bytes));
  os << line;
  return os.str();
}

}  // namespace edgeprune::models
