#include "server/models/evaluate.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "server/models/torchscript.hpp"

namespace edgeprune::models {
namespace {

// Restores the module's training flag however the caller leaves.
class EvalScope {
 public:
  explicit EvalScope(torch::jit::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  torch::jit::Module& m_;
  bool was_training_;
};

Error Failed(const std::string& what, const std::exception& e) {
  std::string msg = e.what();
  auto nl = msg.find('\n');
  return MakeError(ErrorKind::kInvalidArgument, "invalid_model",
                   what + ": " + msg.substr(0, nl));
}

}  // namespace

Result<AccuracyResult> EvaluateAccuracy(torch::jit::Module& module, const Dataset& data,
                                        std::int64_t batch_size) {
  if (data.size() == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "data set " + data.name + " is empty");
  }
  if (batch_size < 1) batch_size = 1;
  auto check = CheckModule(module, data.image_shape(), "model", data.num_classes());
  if (!check.ok()) return check.error().WithContext("evaluating on data set " + data.name);
  AccuracyResult r;
  try {
    EvalScope scope(module);
    torch::InferenceMode guard;
    for (std::int64_t start = 0; start < data.size(); start += batch_size) {
      std::int64_t n = std::min(batch_size, data.size() - start);
      auto logits = module.forward({data.images.narrow(0, start, n)}).toTensor();
      r.correct += logits.argmax(1).eq(data.labels.narrow(0, start, n)).sum().item<std::int64_t>();
    }
  } catch (const std::exception& e) {
    return Failed("evaluating on data set " + data.name, e);
  }
  r.total = data.size();
  r.accuracy = static_cast<double>(r.correct) / static_cast<double>(r.total);
  return r;
}

Result<LatencyStats> MeasureLatency(torch::jit::Module& module,
                                    const std::vector<std::int64_t>& input_shape,
                                    const LatencyOptions& options) {
  if (options.runs < 1 || options.warmup < 0 || options.threads < 1 || options.batch_size < 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "latency needs runs >= 1, warmup >= 0, threads >= 1 and batch size >= 1");
  }
  EP_ASSIGN_OR_RETURN(auto check, CheckModule(module, input_shape, "model"));
  (void)check;
  std::vector<std::int64_t> shape = {options.batch_size};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  int previous = SetIntraOpThreads(0);
  SetIntraOpThreads(options.threads);
  std::vector<double> ms;
  try {
    EvalScope scope(module);
    torch::InferenceMode guard;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    torch::Tensor input = torch::randn(shape, gen);
    for (int i = 0; i < options.warmup; ++i) module.forward({input});
    for (int i = 0; i < options.runs; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      module.forward({input});
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                       .count());
    }
  } catch (const std::exception& e) {
    SetIntraOpThreads(previous);
    return Failed("measuring latency", e);
  }
  SetIntraOpThreads(previous);
  LatencyStats s;
  s.runs = options.runs;
  s.threads = options.threads;
  s.batch_size = options.batch_size;
  double sum = 0.0;
  for (double v : ms) sum += v;
  s.mean_ms = sum / static_cast<double>(ms.size());
  std::sort(ms.begin(), ms.end());
  s.min_ms = ms.front();
  std::size_t n = ms.size();
  s.p50_ms = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  std::size_t p95 = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(n)));
  s.p95_ms = ms[std::clamp<std::size_t>(p95, 1, n) - 1];
  s.items_per_second = s.p50_ms > 0.0 ? static_cast<double>(options.batch_size) * 1000.0 / s.p50_ms
                                      : 0.0;
  return s;
}

}  // namespace edgeprune::models
