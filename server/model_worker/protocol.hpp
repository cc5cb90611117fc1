#pragma once
// What the server and a model worker say to each other. The server writes one request (a JSON
// object) to the worker's stdin and closes it; the worker answers on its event pipe with JSON
// lines: `sandbox` (what confines it), any number of `progress` and `checkpoint`, then exactly
// one `result` or `error`. Files (the model, checkpoints, the built variant) are exchanged in the
// worker's private scratch directory, named relative to it.
//
// An `error` carries a code and a message meant for the model's owner, written by us, plus a
// `detail` (LibTorch's own text) that the server logs and never returns to a client.
//
// Thread-safety: pure functions.

#include <boost/json/object.hpp>

#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/model_worker/variant_build.hpp"
#include "server/catalog/variant_build.hpp"

namespace edgeprune::model_worker {

struct ValidateRequest {
  std::string model_file;  // relative to the scratch directory
  std::vector<std::int64_t> input_shape;
  std::int64_t expected_classes = 0;
};

struct BuildJobRequest {
  std::string master_file;
  std::string output_file;
  std::optional<std::string> resume_file;
  std::vector<std::int64_t> input_shape;
  std::int64_t num_classes = 0;
  std::string dataset;
  Budget budget;
  catalog::VariantBuildOptions options;
};

struct WorkerRequest {
  int threads = 1;  // LibTorch intra-op threads
  std::optional<ValidateRequest> validate;
  std::optional<BuildJobRequest> build;
};

boost::json::object ToJson(const WorkerRequest& r);
Result<WorkerRequest> RequestFromJson(const boost::json::object& o);

boost::json::object ToJson(const catalog::MasterFacts& f);
Result<catalog::MasterFacts> FactsFromJson(const boost::json::object& o);
boost::json::object ToJson(const catalog::BuildOutcome& o);
Result<catalog::BuildOutcome> OutcomeFromJson(const boost::json::object& o);

// One event line (without the newline).
std::string SandboxEvent(const std::string& description);
std::string ProgressEvent(std::string_view phase, double percent);
std::string CheckpointEvent(const std::string& file);
std::string ResultEvent(boost::json::object result);
std::string ErrorEvent(const std::string& code, const std::string& message,
                       const std::string& detail);

}  // namespace edgeprune::model_worker
