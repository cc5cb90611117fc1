#include "edgeprune/common/json.hpp"

#include <cmath>
#include <sstream>

namespace edgeprune::json {
namespace {

const bj::value* Find(const bj::object& o, std::string_view key) { return FindField(o, key); }

void PrettyPrint(std::ostringstream& os, const bj::value& v, int indent) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  std::string inner(static_cast<size_t>(indent + 1) * 2, ' ');
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.empty()) { os << "{}"; return; }
    os << "{\n";
    bool first = true;
    for (const auto& kv : o) {
      if (!first) os << ",\n";
      first = false;
      os << inner << bj::serialize(bj::string(kv.key())) << ": ";
      PrettyPrint(os, kv.value(), indent + 1);
    }
    os << "\n" << pad << "}";
  } else if (v.is_array()) {
    const auto& a = v.get_array();
    if (a.empty()) { os << "[]"; return; }
    os << "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) os << ",\n";
      os << inner;
      PrettyPrint(os, a[i], indent + 1);
    }
    os << "\n" << pad << "]";
  } else {
    os << bj::serialize(v);
  }
}

}  // namespace

const bj::value* FindField(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

Error FieldError(std::string_view key, const std::string& what) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                   "field '" + std::string(key) + "' " + what);
}

Result<bj::value> Parse(std::string_view text) {
  boost::system::error_code ec;
  bj::parse_options opts;
  opts.max_depth = 64;
  bj::value v = bj::parse(text, ec, {}, opts);
  if (ec) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_json",
                     "request body is not valid JSON: " + ec.message());
  }
  return v;
}

Result<bj::object> ParseObject(std::string_view text) {
  EP_ASSIGN_OR_RETURN(bj::value v, Parse(text));
  if (!v.is_object()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_json", "expected a JSON object");
  }
  return std::move(v.get_object());
}

std::string Serialize(const bj::value& v) { return bj::serialize(v); }

std::string SerializePretty(const bj::value& v) {
  std::ostringstream os;
  PrettyPrint(os, v, 0);
  return os.str();
}

Result<std::string> GetString(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_string()) return FieldError(key, "must be a string");
  return std::string(v->get_string());
}

Result<std::int64_t> GetInt(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    if (v->get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return FieldError(key, "is too large");
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double()) {
    double d = v->get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      return static_cast<std::int64_t>(d);
    }
  }
  return FieldError(key, "must be an integer");
}

Result<double> GetDouble(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (v->is_double()) {
    if (!std::isfinite(v->get_double())) return FieldError(key, "must be finite");
    return v->get_double();
  }
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return FieldError(key, "must be a number");
}

Result<bool> GetBool(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_bool()) return FieldError(key, "must be true or false");
  return v->get_bool();
}

Result<bj::object> GetObject(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_object()) return FieldError(key, "must be an object");
  return v->get_object();
}

Result<bj::array> GetArray(const bj::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v) return FieldError(key, "is missing");
  if (!v->is_array()) return FieldError(key, "must be an array");
  return v->get_array();
}

Result<std::optional<std::string>> GetOptString(const bj::object& o, std::string_view key) {
  if (!Find(o, key)) return std::optional<std::string>();
  EP_ASSIGN_OR_RETURN(auto s, GetString(o, key));
  return std::optional<std::string>(std::move(s));
}

Result<std::optional<std::int64_t>> GetOptInt(const bj::object& o, std::string_view key) {
  if (!Find(o, key)) return std::optional<std::int64_t>();
  EP_ASSIGN_OR_RETURN(auto i, GetInt(o, key));
  return std::optional<std::int64_t>(i);
}

Result<std::optional<double>> GetOptDouble(const bj::object& o, std::string_view key) {
  if (!Find(o, key)) return std::optional<double>();
  EP_ASSIGN_OR_RETURN(auto d, GetDouble(o, key));
  return std::optional<double>(d);
}

}  // namespace edgeprune::json
