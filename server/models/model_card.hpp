#pragma once
// The JSON model card written next to every master (`master.pt` → `master.json`): what the model
// is, what it expects and how well it does. LibTorch-free so the API and store can read cards.
//
// Thread-safety: plain value type.

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::models {

struct TrainingSettings {
  std::string optimizer;
  double learning_rate = 0.0;
  double momentum = 0.0;
  double weight_decay = 0.0;
  int epochs = 0;
  std::int64_t batch_size = 0;
  bool augment = false;
  std::uint64_t seed = 0;
  int threads = 0;
  double seconds = 0.0;  // wall time of training
};

struct ModelCard {
  std::string name;                       // file stem, e.g. "vgg"
  std::string architecture;               // zoo name or "external"
  std::string dataset;                    // "fashion-mnist"
  std::vector<std::int64_t> input_shape;  // {C, H, W}
  std::vector<std::string> classes;
  std::vector<double> normalization_mean;  // per channel, applied to images in [0, 1]
  std::vector<double> normalization_std;
  double test_accuracy = -1.0;        // 0..1, -1 = not measured
  double validation_accuracy = -1.0;
  std::int64_t params = 0;
  std::int64_t param_bytes = 0;
  std::int64_t macs = 0;
  std::int64_t peak_activation_bytes = 0;
  double latency_p50_ms = -1.0;       // batch 1, latency_threads intra-op threads
  double latency_p95_ms = -1.0;
  int latency_threads = 0;
  TrainingSettings training;
  std::string created_at;             // ISO 8601 UTC
};

boost::json::object ToJson(const ModelCard& card);
// Errors ("invalid_field") name the offending field.
Result<ModelCard> ModelCardFromJson(const boost::json::object& o);

// `dir/name.pt` → `dir/name.json`.
std::string CardPathFor(const std::string& model_path);
Status WriteModelCard(const ModelCard& card, const std::string& path);
// Errors name the file: missing, not JSON, bad field.
Result<ModelCard> ReadModelCard(const std::string& path);

}  // namespace edgeprune::models
