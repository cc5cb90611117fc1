#include "edgeprune/common/wire/manifest.hpp"

#include <algorithm>

#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/fields.hpp"
#include "edgeprune/common/wire/probe_file.hpp"

namespace edgeprune::wire {
namespace {

Error FieldError(std::string_view key, const std::string& what) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                   "field '" + std::string(key) + "' " + what);
}

Result<bj::object> ReadObject(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return FieldError(key, "is missing");
  if (!it->value().is_object()) return FieldError(key, "must be an object");
  return it->value().get_object();
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::vector<std::int64_t>> ReadShape(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) return FieldError(key, "must be an array of integers");
  const auto& a = it->value().get_array();
  if (a.empty() || a.size() > kMaxInputRank) {
    return FieldError(key, "must have 1 to " + std::to_string(kMaxInputRank) + " dimensions");
  }
  std::vector<std::int64_t> shape;
  for (const auto& d : a) {
    if (!d.is_int64() || d.get_int64() < 1 || d.get_int64() > kMaxInputElements) {
      return FieldError(key, "must contain positive integers");
    }
    shape.push_back(d.get_int64());
  }
  if (shape[0] != 1) return FieldError(key, "must start with batch dimension 1");
  if (ElementCount(shape) > kMaxInputElements) {
    return FieldError(key, "has more than " + std::to_string(kMaxInputElements) + " elements");
  }
  return shape;
}

Result<bool> ReadOptBool(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return false;
  if (!it->value().is_bool()) return FieldError(key, "must be true or false");
  return it->value().get_bool();
}

bj::array Doubles(const std::vector<double>& v) {
  bj::array a;
  for (double d : v) a.emplace_back(d);
  return a;
}

// An array of finite numbers in [min, 1e6].
Result<std::vector<double>> ReadDoubles(const bj::object& o, std::string_view name,
                                        std::string_view key, double min) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) return FieldError(name, "must be an array");
  std::vector<double> out;
  for (const auto& v : it->value().get_array()) {
    double d = 0.0;
    if (v.is_double()) {
      d = v.get_double();
    } else if (v.is_int64()) {
      d = static_cast<double>(v.get_int64());
    } else {
      return FieldError(name, "must contain numbers");
    }
    if (!(d >= min && d <= 1e6)) return FieldError(name, "holds a value out of range");
    out.push_back(d);
  }
  if (out.size() > 4096) return FieldError(name, "has too many entries");
  return out;
}

}  // namespace

std::int64_t ElementCount(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d <= 0) return 0;
    // Saturate instead of wrapping or answering 0: every caller compares the count against
    // kMaxInputElements, and an overflowed product must fail that comparison, not pass it.
    if (n > kMaxInputElements / d) return kElementCountSaturated;
    n *= d;
  }
  return n;
}

boost::json::object ToJson(const VariantManifest& m) {
  bj::array shape;
  for (auto d : m.input_shape) shape.emplace_back(d);
  bj::object o{{"model_id", m.model_id},
          {"variant_id", m.variant_id},
          {"version", m.version},
          {"rollback", m.rollback},
          {"payload", {{"sha256", m.payload.sha256}, {"size_bytes", m.payload.size_bytes}}},
          {"input_shape", std::move(shape)},
          {"num_classes", m.num_classes},
          {"normalize", {{"mean", Doubles(m.normalize.mean)}, {"std", Doubles(m.normalize.std)}}},
          {"metrics",
           {{"accuracy", m.metrics.accuracy},
            {"accuracy_floor", m.metrics.accuracy_floor},
            {"params", m.metrics.params},
            {"macs", m.metrics.macs}}},
          {"budget", ToJson(m.budget)},
          {"created_at", m.created_at},
          {"key_id", m.key_id}};
  if (m.probe) {
    o["probe"] = {{"sha256", m.probe->sha256},
                  {"size_bytes", m.probe->size_bytes},
                  {"samples", m.probe->samples}};
  }
  if (m.rollback) {
    o["device_id"] = m.device_id;
    o["expires_at"] = m.expires_at;
  }
  return o;
}

Result<VariantManifest> ManifestFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(
      RejectUnknownKeys(o,
                        {"model_id", "variant_id", "version", "rollback", "device_id", "expires_at",
                         "payload", "probe", "input_shape", "num_classes", "normalize", "metrics",
                         "budget", "created_at", "key_id"},
                        "manifest"));
  VariantManifest m;
  EP_ASSIGN_OR_RETURN(m.model_id, ReadString(o, "model_id", 128));
  EP_ASSIGN_OR_RETURN(m.variant_id, ReadString(o, "variant_id", 128));
  EP_ASSIGN_OR_RETURN(m.version, ReadInt(o, "version", 1, std::int64_t{1} << 53));
  EP_ASSIGN_OR_RETURN(m.rollback, ReadOptBool(o, "rollback"));
  EP_ASSIGN_OR_RETURN(auto device_id, ReadOptString(o, "device_id", 128));
  EP_ASSIGN_OR_RETURN(auto expires_at, ReadOptInt(o, "expires_at", 1, std::int64_t{1} << 40));
  if (m.rollback != device_id.has_value() || m.rollback != expires_at.has_value()) {
    return FieldError("rollback", "needs device_id and expires_at, and they belong to rollbacks only");
  }
  if (m.rollback) {
    if (device_id->empty()) return FieldError("device_id", "must not be empty");
    m.device_id = std::move(*device_id);
    m.expires_at = *expires_at;
  }

  EP_ASSIGN_OR_RETURN(auto payload, ReadObject(o, "payload"));
  EP_RETURN_IF_ERROR(RejectUnknownKeys(payload, {"sha256", "size_bytes"}, "payload"));
  EP_ASSIGN_OR_RETURN(m.payload.sha256, ReadString(payload, "sha256", 64));
  if (m.payload.sha256.size() != 64 || !IsLowerHex(m.payload.sha256)) {
    return FieldError("payload.sha256", "must be 64 lower-case hex characters");
  }
  EP_ASSIGN_OR_RETURN(m.payload.size_bytes, ReadInt(payload, "size_bytes", 1, kMaxPayloadBytes));

  if (auto it = o.find("probe"); it != o.end() && !it->value().is_null()) {
    EP_ASSIGN_OR_RETURN(auto probe, ReadObject(o, "probe"));
    EP_RETURN_IF_ERROR(RejectUnknownKeys(probe, {"sha256", "size_bytes", "samples"}, "probe"));
    ManifestProbe mp;
    EP_ASSIGN_OR_RETURN(mp.sha256, ReadString(probe, "sha256", 64));
    if (mp.sha256.size() != 64 || !IsLowerHex(mp.sha256)) {
      return FieldError("probe.sha256", "must be 64 lower-case hex characters");
    }
    EP_ASSIGN_OR_RETURN(mp.size_bytes, ReadInt(probe, "size_bytes", 1, kMaxProbeBytes));
    EP_ASSIGN_OR_RETURN(mp.samples, ReadInt(probe, "samples", 1, kMaxProbeSamples));
    m.probe = std::move(mp);
  }

  EP_ASSIGN_OR_RETURN(m.input_shape, ReadShape(o, "input_shape"));
  EP_ASSIGN_OR_RETURN(m.num_classes, ReadInt(o, "num_classes", 1, kMaxClasses));

  EP_ASSIGN_OR_RETURN(auto normalize, ReadObject(o, "normalize"));
  EP_RETURN_IF_ERROR(RejectUnknownKeys(normalize, {"mean", "std"}, "normalize"));
  EP_ASSIGN_OR_RETURN(m.normalize.mean, ReadDoubles(normalize, "normalize.mean", "mean", -1e6));
  EP_ASSIGN_OR_RETURN(m.normalize.std, ReadDoubles(normalize, "normalize.std", "std", 1e-9));
  const auto channels = static_cast<std::size_t>(m.input_shape.size() > 1 ? m.input_shape[1] : 1);
  if (m.normalize.mean.size() != m.normalize.std.size() ||
      (!m.normalize.mean.empty() && m.normalize.mean.size() != channels)) {
    return FieldError("normalize", "must hold one mean and one std per input channel");
  }

  EP_ASSIGN_OR_RETURN(auto metrics, ReadObject(o, "metrics"));
  EP_RETURN_IF_ERROR(
      RejectUnknownKeys(metrics, {"accuracy", "accuracy_floor", "params", "macs"}, "metrics"));
  EP_ASSIGN_OR_RETURN(m.metrics.accuracy, ReadDouble(metrics, "accuracy", 0.0, 1.0));
  EP_ASSIGN_OR_RETURN(m.metrics.accuracy_floor, ReadDouble(metrics, "accuracy_floor", 0.0, 1.0));
  EP_ASSIGN_OR_RETURN(m.metrics.params, ReadInt(metrics, "params", 0, std::int64_t{1} << 50));
  EP_ASSIGN_OR_RETURN(m.metrics.macs, ReadInt(metrics, "macs", 0, std::int64_t{1} << 60));

  EP_ASSIGN_OR_RETURN(auto budget, ReadObject(o, "budget"));
  auto b = BudgetFromJson(budget);
  if (!b.ok()) return b.error().WithContext("budget");
  m.budget = std::move(b).value();

  EP_ASSIGN_OR_RETURN(m.created_at, ReadInt(o, "created_at", 0, std::int64_t{1} << 40));
  EP_ASSIGN_OR_RETURN(m.key_id, ReadString(o, "key_id", 64));
  if (!IsLowerHex(m.key_id)) return FieldError("key_id", "must be lower-case hex");
  return m;
}

std::string SerializeManifest(const VariantManifest& m) { return json::Serialize(ToJson(m)); }

Result<VariantManifest> ParseManifest(std::string_view bytes) {
  if (bytes.size() > kMaxManifestBytes) {
    return MakeError(ErrorKind::kPayloadTooLarge, "manifest_too_large",
                     "manifest of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                         std::to_string(kMaxManifestBytes));
  }
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(bytes));
  auto m = ManifestFromJson(o);
  if (!m.ok()) return m.error().WithContext("manifest");
  return m;
}

}  // namespace edgeprune::wire
