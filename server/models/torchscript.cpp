#include "server/models/torchscript.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

namespace edgeprune::models {
namespace {

// LibTorch messages carry C++ backtraces and source excerpts; the first line says what happened.
std::string FirstLine(const std::string& s) {
  auto start = s.find_first_not_of(" \n\t");
  if (start == std::string::npos) return "unknown error";
  auto end = s.find('\n', start);
  return s.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// TorchScript errors put the useful line last before the source excerpt, e.g.
// "Expected 4-dimensional input ... but got 2-dimensional input of size [1, 5] instead".
std::string Reason(const std::exception& e) {
  std::string s = e.what();
  auto pos = s.rfind("RuntimeError: ");
  if (pos != std::string::npos) return FirstLine(s.substr(pos + 14));
  return FirstLine(s);
}

}  // namespace

Result<torch::jit::Module> LoadModule(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return MakeError(ErrorKind::kNotFound, "not_found",
                     "model file " + path + " does not exist or is not a regular file");
  }
  try {
    torch::jit::Module m = torch::jit::load(path, torch::kCPU);
    return m;
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_model",
                     "model file " + path + " is not a loadable TorchScript model: " +
                         FirstLine(e.what()));
  }
}

Status SaveModule(torch::jit::Module& module, const std::string& path) {
  std::string tmp = path + ".tmp";
  try {
    module.save(tmp);
  } catch (const std::exception& e) {
    std::filesystem::remove(tmp);
    return MakeError(ErrorKind::kIo, "io_error",
                     "cannot save model to " + path + ": " + FirstLine(e.what()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return MakeError(ErrorKind::kIo, "io_error", "cannot save model to " + path + ": " +
                                                     ec.message());
  }
  return Ok();
}

Result<ModuleCheck> CheckModule(torch::jit::Module& module,
                                const std::vector<std::int64_t>& input_shape,
                                const std::string& what, std::int64_t expected_classes) {
  auto invalid = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_model", what + " " + why);
  };
  ModuleCheck check;
  for (const auto& p : module.parameters()) check.parameters += p.numel();
  if (check.parameters == 0) return invalid("has no parameters");
  if (input_shape.empty()) return invalid("was given an empty input shape");
  std::vector<std::int64_t> shape = {1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  bool was_training = module.is_training();
  torch::jit::IValue out;
  try {
    module.eval();
    torch::InferenceMode guard;
    out = module.forward({torch::zeros(shape)});
  } catch (const std::exception& e) {
    module.train(was_training);
    return invalid("does not run on input of shape " + ShapeToString(shape) + ": " + Reason(e));
  }
  module.train(was_training);
  if (!out.isTensor()) {
    return invalid("returns " + out.tagKind() + " instead of a tensor of class scores");
  }
  auto t = out.toTensor();
  if (t.dim() != 2 || t.size(0) != 1) {
    return invalid("returns shape " + ShapeToString(t.sizes().vec()) +
                   " on input " + ShapeToString(shape) + "; expected [1, classes]");
  }
  check.num_classes = t.size(1);
  if (expected_classes > 0 && check.num_classes != expected_classes) {
    return invalid("outputs " + std::to_string(check.num_classes) + " class scores but " +
                   std::to_string(expected_classes) + " classes are expected");
  }
  return check;
}

int SetIntraOpThreads(int n) {
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
  return at::get_num_threads();
}

std::string ShapeToString(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}


}  // namespace edgeprune::models
