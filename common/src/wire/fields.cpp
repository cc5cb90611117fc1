#include "edgeprune/common/wire/fields.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace edgeprune::wire {
namespace {

using json::FieldError;

const bj::value* Find(const bj::object& o, std::string_view key) { return json::FindField(o, key); }

std::string Render(const bj::value& v) {
  std::string s = bj::serialize(v);
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return s;
}

template <typename T>
std::string Num(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

Result<std::int64_t> ReadInt(const bj::object& o, std::string_view key, std::int64_t min,
                             std::int64_t max) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  std::string range = "an integer in [" + Num(min) + ", " + Num(max) + "]";
  std::optional<std::int64_t> out;
  if (v->is_int64()) {
    out = v->get_int64();
  } else if (v->is_uint64()) {
    if (v->get_uint64() <= static_cast<std::uint64_t>(max)) out = static_cast<std::int64_t>(v->get_uint64());
  } else if (v->is_double()) {
    double d = v->get_double();
    if (std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(min) &&
        d <= static_cast<double>(max)) {
      out = static_cast<std::int64_t>(d);
    }
  }
  if (!out || *out < min || *out > max) {
    return FieldError(key, "must be " + range + ", got " + Render(*v));
  }
  return *out;
}

Result<std::optional<std::int64_t>> ReadOptInt(const bj::object& o, std::string_view key,
                                               std::int64_t min, std::int64_t max) {
  if (!Find(o, key)) return std::optional<std::int64_t>();
  EP_ASSIGN_OR_RETURN(auto v, ReadInt(o, key, min, max));
  return std::optional<std::int64_t>(v);
}

Result<double> ReadDouble(const bj::object& o, std::string_view key, double min, double max) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  std::optional<double> out;
  if (v->is_double()) out = v->get_double();
  if (v->is_int64()) out = static_cast<double>(v->get_int64());
  if (v->is_uint64()) out = static_cast<double>(v->get_uint64());
  if (!out || !std::isfinite(*out) || *out < min || *out > max) {
    return FieldError(key, "must be a number in [" + Num(min) + ", " + Num(max) + "], got " +
                               Render(*v));
  }
  return *out;
}

Result<std::optional<double>> ReadOptDouble(const bj::object& o, std::string_view key, double min,
                                            double max) {
  if (!Find(o, key)) return std::optional<double>();
  EP_ASSIGN_OR_RETURN(auto v, ReadDouble(o, key, min, max));
  return std::optional<double>(v);
}

Result<std::string> ReadString(const bj::object& o, std::string_view key, std::size_t max_len,
                               std::size_t min_len) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_string()) return FieldError(key, "must be a string, got " + Render(*v));
  std::string s(v->get_string());
  if (s.size() < min_len) return FieldError(key, "must not be empty");
  if (s.size() > max_len) return FieldError(key, "is longer than " + Num(max_len) + " bytes");
  bool control = std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 && c != '\n' && c != '\t' && c != '\r';
  });
  if (control) return FieldError(key, "contains control characters");
  return s;
}

Result<std::optional<std::string>> ReadOptString(const bj::object& o, std::string_view key,
                                                 std::size_t max_len) {
  if (!Find(o, key)) return std::optional<std::string>();
  EP_ASSIGN_OR_RETURN(auto v, ReadString(o, key, max_len, 0));
  return std::optional<std::string>(std::move(v));
}

Result<std::vector<std::string>> ReadStringList(const bj::object& o, std::string_view key,
                                                std::size_t max_items, std::size_t max_len) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_array()) return FieldError(key, "must be an array of strings");
  const auto& a = v->get_array();
  if (a.size() > max_items) return FieldError(key, "has more than " + Num(max_items) + " items");
  std::vector<std::string> out;
  out.reserve(a.size());
  for (const auto& item : a) {
    if (!item.is_string()) return FieldError(key, "must contain only strings, got " + Render(item));
    if (item.get_string().size() > max_len || item.get_string().empty()) {
      return FieldError(key, "items must be 1 to " + Num(max_len) + " bytes long");
    }
    out.emplace_back(item.get_string());
  }
  return out;
}

Status RejectUnknownKeys(const bj::object& o, const std::vector<std::string_view>& allowed,
                         std::string_view where) {
  for (const auto& kv : o) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) == allowed.end()) {
      return MakeError(ErrorKind::kInvalidArgument, "unknown_field",
                       "unknown field '" + std::string(kv.key()) + "' in " + std::string(where));
    }
  }
  return Ok();
}

}  // namespace edgeprune::wire
