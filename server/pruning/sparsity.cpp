#include "server/pruning/sparsity.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <algorithm>

namespace edgeprune::pruning {

Result<std::map<std::string, at::Tensor>> ApplyMagnitudeSparsity(torch::jit::Module& m,
                                                                 double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_sparsity",
                     "sparsity must be in [0, 1), got " + std::to_string(fraction));
  }
  std::map<std::string, at::Tensor> masks;
  try {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, at::Tensor>> weights;
    std::vector<at::Tensor> flat;
    for (const auto& p : m.named_parameters(true)) {
      if (p.value.dim() < 2) continue;
      weights.push_back({p.name, p.value});
      flat.push_back(p.value.detach().abs().flatten());
    }
    if (weights.empty() || fraction == 0.0) return masks;
    at::Tensor all = at::cat(flat);
    int64_t k = static_cast<int64_t>(fraction * double(all.numel()));
    if (k == 0) return masks;
    double threshold = std::get<0>(all.kthvalue(k)).item<double>();
    for (auto& [name, w] : weights) {
      at::Tensor mask = (w.detach().abs() > threshold).to(w.scalar_type());
      w.mul_(mask);
      masks[name] = mask;
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInternal, "sparsity_failed",
                     "cannot sparsify: " + what.substr(0, what.find('\n')));
  }
  return masks;
}

Result<std::map<std::string, at::Tensor>> ApplyRandomSparsity(torch::jit::Module& m,
                                                              double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_sparsity",
                     "sparsity must be in [0, 1), got " + std::to_string(fraction));
  }
  std::map<std::string, at::Tensor> masks;
  try {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed);
    for (const auto& p : m.named_parameters(true)) {
      if (p.value.dim() < 2) continue;
      at::Tensor u = at::rand(p.value.sizes(), gen, p.value.options());
      at::Tensor mask = (u >= fraction).to(p.value.scalar_type());
      p.value.mul_(mask);
      masks[p.name] = mask;
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInternal, "sparsity_failed",
                     "cannot sparsify: " + what.substr(0, what.find('\n')));
  }
  return masks;
}

double WeightSparsity(const torch::jit::Module& m) {
  int64_t zeros = 0, total = 0;
  for (const auto& p : m.named_parameters(true)) {
    if (p.value.dim() < 2) continue;
    zeros += (p.value == 0).sum().item<int64_t>();
    total += p.value.numel();
  }
  return total ? double(zeros) / double(total) : 0.0;
}

Result<std::string> Compress(const std::string& bytes) {
  uLongf size = compressBound(bytes.size());
  std::string out(size, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                     reinterpret_cast<const Bytef*>(bytes.data()), bytes.size(), 9);
  if (rc != Z_OK) {
    return MakeError(ErrorKind::kInternal, "compress_failed",
                     "zlib failed with code " + std::to_string(rc));
  }
  out.resize(size);
  return out;
}

Result<std::string> Decompress(const std::string& compressed, size_t original_size) {
  std::string out(original_size, '\0');
  uLongf size = original_size;
  int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &size,
                      reinterpret_cast<const Bytef*>(compressed.data()), compressed.size());
  if (rc != Z_OK || size != original_size) {
    return MakeError(ErrorKind::kInvalidArgument, "corrupt_compressed_model",
                     "compressed model does not inflate to " + std::to_string(original_size) +
                         " bytes");
  }
  return out;
}

}  // namespace edgeprune::pruning
