#include "cli/output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "edgeprune/common/log_safety.hpp"

namespace edgeprune::ctl {
namespace bj = boost::json;

std::string Table::Render() const {
  std::vector<std::size_t> width(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], cells[i].size());
    }
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      l += cell;
      if (i + 1 < width.size()) l += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  std::vector<std::string> upper;
  for (auto h : headers_) {
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::toupper(c); });
    upper.push_back(h);
  }
  line(upper);
  for (const auto& r : rows_) line(r);
  return out;
}

std::string Text(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null: return "-";
    case bj::kind::string: return log::Escape(std::string(v.as_string()));
    case bj::kind::bool_: return v.as_bool() ? "yes" : "no";
    case bj::kind::int64: return std::to_string(v.as_int64());
    case bj::kind::uint64: return std::to_string(v.as_uint64());
    case bj::kind::double_: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.4g", v.as_double());
      return buf;
    }
    case bj::kind::array: {
      std::string out;
      for (const auto& x : v.as_array()) out += (out.empty() ? "" : ",") + Text(x);
      return out.empty() ? "-" : out;
    }
    case bj::kind::object: return log::Escape(bj::serialize(v));
  }
  return "-";
}

std::string Field(const bj::value& object, const std::string& key) {
  if (!object.is_object()) return "-";
  const auto* v = object.as_object().if_contains(key);
  return v ? Text(*v) : "-";
}

const bj::value& Member(const bj::value& object, const std::string& key) {
  static const bj::value kNull;
  if (!object.is_object()) return kNull;
  const auto* v = object.as_object().if_contains(key);
  return v ? *v : kNull;
}

double Number(const bj::value& object, const std::string& key, double fallback) {
  if (!object.is_object()) return fallback;
  const auto* v = object.as_object().if_contains(key);
  if (!v) return fallback;
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_double()) return v->as_double();
  return fallback;
}

const bj::array& Items(const bj::value& list) {
  static const bj::array kEmpty;
  if (!list.is_object()) return kEmpty;
  const auto* items = list.as_object().if_contains("items");
  return items && items->is_array() ? items->as_array() : kEmpty;
}

std::string Bytes(double n) {
  if (n < 0) return "-";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
  return buf;
}

std::string Count(double n) {
  if (n < 0) return "-";
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fG", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  else if (n >= 1e4) std::snprintf(buf, sizeof(buf), "%.1fk", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f", n);
  return buf;
}

std::string TimeMs(double unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Fixed(double v, int digits) {
  if (v < 0 || std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Describe(const bj::value& object, const std::vector<std::string>& keys) {
  std::size_t width = 0;
  for (const auto& k : keys) width = std::max(width, k.size());
  std::string out;
  for (const auto& k : keys) {
    out += k + ":" + std::string(width - k.size() + 1, ' ') + Field(object, k) + "\n";
  }
  return out;
}

void PrintOut(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace edgeprune::ctl
