#include "server/models/model_card.hpp"

#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::models {
namespace {

namespace bj = boost::json;

template <typename T>
bj::array ToArray(const std::vector<T>& v) {
  bj::array a;
  for (const auto& x : v) a.emplace_back(x);
  return a;
}

Result<std::vector<std::int64_t>> IntArray(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<std::int64_t> out;
  for (const auto& v : a) {
    if (!v.is_int64() && !v.is_uint64()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field '" + std::string(key) + "' must hold integers");
    }
    out.push_back(v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(v.get_uint64()));
  }
  return out;
}

Result<std::vector<double>> DoubleArray(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<double> out;
  for (const auto& v : a) {
    if (v.is_double()) {
      out.push_back(v.get_double());
    } else if (v.is_int64()) {
      out.push_back(static_cast<double>(v.get_int64()));
    } else {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field '" + std::string(key) + "' must hold numbers");
    }
  }
  return out;
}

Result<std::vector<std::string>> StringArray(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<std::string> out;
  for (const auto& v : a) {
    if (!v.is_string()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field '" + std::string(key) + "' must hold strings");
    }
    out.emplace_back(v.get_string());
  }
  return out;
}

}  // namespace

bj::object ToJson(const ModelCard& c) {
  bj::object t;
  t["optimizer"] = c.training.optimizer;
  t["learning_rate"] = c.training.learning_rate;
  t["momentum"] = c.training.momentum;
  t["weight_decay"] = c.training.weight_decay;
  t["epochs"] = c.training.epochs;
  t["batch_size"] = c.training.batch_size;
  t["augment"] = c.training.augment;
  t["seed"] = c.training.seed;
  t["threads"] = c.training.threads;
  t["seconds"] = c.training.seconds;
  bj::object o;
  o["name"] = c.name;
  o["architecture"] = c.architecture;
  o["dataset"] = c.dataset;
  o["input_shape"] = ToArray(c.input_shape);
  o["classes"] = ToArray(c.classes);
  o["normalization"] = bj::object{{"mean", ToArray(c.normalization_mean)},
                                  {"std", ToArray(c.normalization_std)}};
  o["test_accuracy"] = c.test_accuracy;
  o["validation_accuracy"] = c.validation_accuracy;
  o["params"] = c.params;
  o["param_bytes"] = c.param_bytes;
  o["macs"] = c.macs;
  o["peak_activation_bytes"] = c.peak_activation_bytes;
  o["latency"] = bj::object{{"p50_ms", c.latency_p50_ms},
                            {"p95_ms", c.latency_p95_ms},
                            {"threads", c.latency_threads},
                            {"batch_size", 1}};
  o["training"] = std::move(t);
  o["created_at"] = c.created_at;
  return o;
}

Result<ModelCard> ModelCardFromJson(const bj::object& o) {
  ModelCard c;
  EP_ASSIGN_OR_RETURN(c.name, json::GetString(o, "name"));
  EP_ASSIGN_OR_RETURN(c.architecture, json::GetString(o, "architecture"));
  EP_ASSIGN_OR_RETURN(c.dataset, json::GetString(o, "dataset"));
  EP_ASSIGN_OR_RETURN(c.input_shape, IntArray(o, "input_shape"));
  // [C, H, W] images, [C, L] signals or [F] feature vectors (an operator's data set).
  if (c.input_shape.empty() || c.input_shape.size() > 3) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field 'input_shape' must be [C, H, W], [C, L] or [F]");
  }
  for (auto d : c.input_shape) {
    if (d <= 0) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field 'input_shape' must hold positive sizes");
    }
  }
  EP_ASSIGN_OR_RETURN(c.classes, StringArray(o, "classes"));
  EP_ASSIGN_OR_RETURN(bj::object norm, json::GetObject(o, "normalization"));
  EP_ASSIGN_OR_RETURN(c.normalization_mean, DoubleArray(norm, "mean"));
  EP_ASSIGN_OR_RETURN(c.normalization_std, DoubleArray(norm, "std"));
  if (c.normalization_mean.size() != c.normalization_std.size()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field 'normalization' must have as many std as mean values");
  }
  EP_ASSIGN_OR_RETURN(c.test_accuracy, json::GetDouble(o, "test_accuracy"));
  EP_ASSIGN_OR_RETURN(c.validation_accuracy, json::GetDouble(o, "validation_accuracy"));
  EP_ASSIGN_OR_RETURN(c.params, json::GetInt(o, "params"));
  EP_ASSIGN_OR_RETURN(c.param_bytes, json::GetInt(o, "param_bytes"));
  EP_ASSIGN_OR_RETURN(c.macs, json::GetInt(o, "macs"));
  EP_ASSIGN_OR_RETURN(c.peak_activation_bytes, json::GetInt(o, "peak_activation_bytes"));
  EP_ASSIGN_OR_RETURN(bj::object lat, json::GetObject(o, "latency"));
  EP_ASSIGN_OR_RETURN(c.latency_p50_ms, json::GetDouble(lat, "p50_ms"));
  EP_ASSIGN_OR_RETURN(c.latency_p95_ms, json::GetDouble(lat, "p95_ms"));
  EP_ASSIGN_OR_RETURN(std::int64_t lt, json::GetInt(lat, "threads"));
  c.latency_threads = static_cast<int>(lt);
  EP_ASSIGN_OR_RETURN(bj::object t, json::GetObject(o, "training"));
  EP_ASSIGN_OR_RETURN(c.training.optimizer, json::GetString(t, "optimizer"));
  EP_ASSIGN_OR_RETURN(c.training.learning_rate, json::GetDouble(t, "learning_rate"));
  EP_ASSIGN_OR_RETURN(c.training.momentum, json::GetDouble(t, "momentum"));
  EP_ASSIGN_OR_RETURN(c.training.weight_decay, json::GetDouble(t, "weight_decay"));
  EP_ASSIGN_OR_RETURN(std::int64_t epochs, json::GetInt(t, "epochs"));
  c.training.epochs = static_cast<int>(epochs);
  EP_ASSIGN_OR_RETURN(c.training.batch_size, json::GetInt(t, "batch_size"));
  EP_ASSIGN_OR_RETURN(c.training.augment, json::GetBool(t, "augment"));
  EP_ASSIGN_OR_RETURN(std::int64_t seed, json::GetInt(t, "seed"));
  c.training.seed = static_cast<std::uint64_t>(seed);
  EP_ASSIGN_OR_RETURN(std::int64_t threads, json::GetInt(t, "threads"));
  c.training.threads = static_cast<int>(threads);
  EP_ASSIGN_OR_RETURN(c.training.seconds, json::GetDouble(t, "seconds"));
  EP_ASSIGN_OR_RETURN(c.created_at, json::GetString(o, "created_at"));
  return c;
}

std::string CardPathFor(const std::string& model_path) {
  std::filesystem::path p(model_path);
  p.replace_extension(".json");
  return p.string();
}

Status WriteModelCard(const ModelCard& card, const std::string& path) {
  auto st = fs::WriteFileAtomic(path, json::SerializePretty(ToJson(card)) + "\n");
  if (!st.ok()) return st.error().WithContext("writing model card " + path);
  return Ok();
}

Result<ModelCard> ReadModelCard(const std::string& path) {
  auto text = fs::ReadFile(path, 1 << 20);
  if (!text.ok()) return text.error().WithContext("reading model card " + path);
  auto obj = json::ParseObject(*text);
  if (!obj.ok()) return obj.error().WithContext("model card " + path);
  auto card = ModelCardFromJson(*obj);
  if (!card.ok()) return card.error().WithContext("model card " + path);
  return card;
}

}  // namespace edgeprune::models
