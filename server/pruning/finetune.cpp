#include "server/pruning/finetune.hpp"

#include <torch/csrc/jit/runtime/interpreter.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "server/pruning/batch_norm.hpp"

namespace edgeprune::pruning {
namespace {

// Random shifts (zero-padded with the batch's background value, then cropped back) and flips.
at::Tensor Augment(const at::Tensor& x, const FinetuneOptions& o, std::mt19937_64& rng) {
  if (x.dim() != 4 || (o.shift_pixels <= 0 && !o.horizontal_flip)) return x;
  at::Tensor out = x;
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  if (o.horizontal_flip) {
    std::vector<uint8_t> flip(static_cast<size_t>(n));
    std::bernoulli_distribution coin(0.5);
    for (auto& f : flip) f = coin(rng) ? 1 : 0;
    at::Tensor mask = torch::from_blob(flip.data(), {n, 1, 1, 1}, torch::kUInt8)
                          .to(torch::kBool);
    out = at::where(mask, out.flip({3}), out);
  }
  if (o.shift_pixels > 0) {
    const int64_t s = o.shift_pixels;
    double background = out.min().item<double>();
    at::Tensor padded = at::constant_pad_nd(out, {s, s, s, s}, background);
    std::uniform_int_distribution<int64_t> offset(0, 2 * s);
    std::vector<at::Tensor> crops;
    crops.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      crops.push_back(padded[i].narrow(1, offset(rng), h).narrow(2, offset(rng), w));
    }
    out = at::stack(crops);
  }
  return out;
}

// Learning rate at `progress` in [0, 1] of the budget: linear warm-up, then cosine to zero.
double LearningRate(const FinetuneOptions& o, double progress) {
  progress = std::clamp(progress, 0.0, 1.0);
  if (o.warmup > 0 && progress < o.warmup) return o.learning_rate * (progress + 1e-3) / o.warmup;
  double t = o.warmup < 1.0 ? (progress - o.warmup) / (1.0 - o.warmup) : 1.0;
  return o.learning_rate * 0.5 * (1.0 + std::cos(M_PI * t));
}

}  // namespace

Result<FinetuneReport> Finetune(EvalModule& student, torch::jit::Module* teacher,
                                const models::Dataset& train, const FinetuneOptions& o) {
  FinetuneReport report;
  int64_t n = train.size();
  if (n == 0 || o.steps <= 0 || o.batch_size <= 0) return report;
  auto start = std::chrono::steady_clock::now();
  try {
    // The training-mode forward runs a copy of the forward graph through the interpreter on the
    // module's own `self`, so it reads (and the optimizer updates) the same parameter tensors.
    std::optional<torch::jit::Code> train_forward;
    if (o.train_batch_norm) {
      int switched = 0;
      auto g = TrainingModeGraph(student, o.bn_momentum, &switched);
      if (switched > 0) train_forward.emplace(g, "finetune_forward");
    }
    auto forward = [&](const at::Tensor& x) {
      // One sample has no batch statistics: such a batch runs the evaluation-mode graph.
      if (!train_forward || x.size(0) < 2) return student.module.forward({x}).toTensor();
      torch::jit::InterpreterState state(*train_forward);
      std::vector<c10::IValue> stack = {student.module._ivalue(), x};
      state.run(stack);
      return stack.back().toTensor();
    };
    std::vector<std::pair<std::string, at::Tensor>> params;
    std::vector<at::Tensor> velocity;
    for (const auto& p : student.module.named_parameters(true)) {
      p.value.set_requires_grad(true);
      params.push_back({p.name, p.value});
      velocity.push_back(torch::zeros_like(p.value));
    }
    std::mt19937_64 rng(o.seed);
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    int64_t cursor = n;
    for (int64_t step = 0; step < o.steps; ++step) {
      double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed >= o.seconds) {
        report.time_limited = true;
        break;
      }
      if (cursor + o.batch_size > n) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      int64_t b = std::min(o.batch_size, n);
      at::Tensor idx = torch::from_blob(order.data() + cursor, {b}, torch::kLong).clone();
      cursor += b;
      at::Tensor x = Augment(train.images.index_select(0, idx), o, rng);
      at::Tensor y = train.labels.index_select(0, idx);
      for (auto& [name, p] : params) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      at::Tensor logits = forward(x);
      at::Tensor loss = at::cross_entropy_loss(logits, y);
      if (teacher && o.kd_alpha > 0) {
        at::Tensor soft;
        {
          torch::NoGradGuard no_grad;
          soft = at::softmax(teacher->forward({x}).toTensor() / o.temperature, 1);
        }
        at::Tensor log_student = at::log_softmax(logits / o.temperature, 1);
        at::Tensor kl = (soft * (at::log(soft.clamp_min(1e-12)) - log_student)).sum(1).mean();
        loss = (1.0 - o.kd_alpha) * loss + o.kd_alpha * o.temperature * o.temperature * kl;
      }
      double value = loss.item<double>();
      if (!std::isfinite(value)) {
        return MakeError(ErrorKind::kInternal, "training_diverged",
                         "fine-tuning loss became " + std::to_string(value) + " at step " +
                             std::to_string(step));
      }
      loss.backward();
      double spent =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // Time only steers the schedule when the run is on course to hit its time limit, so runs
      // that finish their steps well inside it are reproducible (no dependence on timing).
      double progress = double(step) / double(o.steps);
      if (o.seconds > 0 && step > 0 && spent / double(step) * double(o.steps) > o.seconds) {
        progress = std::max(progress, spent / o.seconds);
      }
      double lr = LearningRate(o, progress);
      torch::NoGradGuard no_grad;
      double clip = 1.0;
      if (o.max_grad_norm > 0) {
        double sq = 0.0;
        for (auto& [name, p] : params) {
          if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
        }
        double norm = std::sqrt(sq);
        if (!std::isfinite(norm)) {
          return MakeError(ErrorKind::kInternal, "training_diverged",
                           "fine-tuning gradients became " + std::to_string(norm) + " at step " +
                               std::to_string(step));
        }
        if (norm > o.max_grad_norm) clip = o.max_grad_norm / norm;
      }
      for (size_t i = 0; i < params.size(); ++i) {
        at::Tensor& p = params[i].second;
        if (!p.grad().defined()) continue;
        at::Tensor g = clip < 1.0 ? p.grad() * clip : p.grad();
        if (o.weight_decay > 0 && p.dim() > 1) g = g + o.weight_decay * p;
        velocity[i].mul_(o.momentum).add_(g);
        p.add_(velocity[i], -lr);
        if (o.masks) {
          auto m = o.masks->find(params[i].first);
          if (m != o.masks->end()) p.mul_(m->second);
        }
      }
      report.steps = step + 1;
      report.last_loss = value;
      if (o.on_progress && o.report_every > 0 && report.steps % o.report_every == 0) {
        if (auto st = o.on_progress(report.steps); !st.ok()) {
          for (auto& [name, p] : params) {
            p.set_requires_grad(false);
            p.mutable_grad() = at::Tensor();
          }
          return st.error();
        }
      }
    }
    for (auto& [name, p] : params) {
      p.set_requires_grad(false);
      p.mutable_grad() = at::Tensor();
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInvalidArgument, "finetune_failed",
                     "fine-tuning failed: " + what.substr(0, what.find('\n')));
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace edgeprune::pruning
