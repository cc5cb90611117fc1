#include "server/models/train.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "edgeprune/common/log.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/torchscript.hpp"

namespace edgeprune::models {
namespace {

Error Invalid(const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_argument", message);
}

Status Validate(const TrainOptions& o) {
  if (o.epochs < 1 || o.epochs > 10000) return Invalid("epochs must be 1 to 10000");
  if (o.batch_size < 1 || o.batch_size > 65536) return Invalid("batch size must be 1 to 65536");
  if (o.optimizer != "adam" && o.optimizer != "sgd") {
    return Invalid("optimizer '" + o.optimizer + "' is not adam or sgd");
  }
  if (!(o.learning_rate > 0.0 && o.learning_rate < 10.0)) {
    return Invalid("learning rate must be in (0, 10)");
  }
  if (!(o.min_lr_fraction >= 0.0 && o.min_lr_fraction <= 1.0)) {
    return Invalid("min lr fraction must be in [0, 1]");
  }
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) return Invalid("momentum must be in [0, 1)");
  if (!(o.weight_decay >= 0.0 && o.weight_decay < 1.0)) {
    return Invalid("weight decay must be in [0, 1)");
  }
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0)) {
    return Invalid("label smoothing must be in [0, 1)");
  }
  if (o.warmup_steps < 0 || o.max_steps_per_epoch < 0 || o.threads < 0) {
    return Invalid("warmup steps, max steps and threads must not be negative");
  }
  return Ok();
}

std::string Duration(double seconds) {
  char buf[32];
  auto s = static_cast<long long>(std::llround(seconds));
  std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  return buf;
}

void LogEpoch(const EpochReport& r) {
  char val[32] = "-";
  if (r.validation_accuracy >= 0.0) {
    std::snprintf(val, sizeof(val), "%.2f%%", 100.0 * r.validation_accuracy);
  }
  log::Get("models")->info("epoch {}/{} loss {:.4f} train acc {:.2f}% val acc {} lr {:.2e} "
                           "took {:.1f}s, {} left",
                           r.epoch, r.epochs, r.train_loss, 100.0 * r.train_accuracy, val,
                           r.learning_rate, r.seconds, Duration(r.eta_seconds));
}

// Random horizontal flip per image and one random shift of up to 2 px per batch (zero padded).
torch::Tensor Augment(const torch::Tensor& x, at::Generator& gen) {
  auto flip = torch::rand({x.size(0)}, gen).lt(0.5).view({-1, 1, 1, 1});
  auto out = torch::where(flip, x.flip({3}), x);
  auto offsets = torch::randint(0, 5, {2}, gen, torch::TensorOptions().dtype(torch::kInt64));
  auto dy = offsets[0].item<std::int64_t>(), dx = offsets[1].item<std::int64_t>();
  auto padded = torch::constant_pad_nd(out, {2, 2, 2, 2}, 0.0);
  return padded.narrow(2, dy, x.size(2)).narrow(3, dx, x.size(3)).contiguous();
}

}  // namespace

Result<TrainReport> Train(torch::jit::Module& module, const Dataset& train,
                          const Dataset* validation, const TrainOptions& options) {
  EP_RETURN_IF_ERROR(Validate(options));
  if (train.size() < 1) return Invalid("training set " + train.name + " is empty");
  SetIntraOpThreads(options.threads);
  auto check = CheckModule(module, train.image_shape(), "model", train.num_classes());
  if (!check.ok()) return check.error().WithContext("training on data set " + train.name);

  const std::int64_t n = train.size();
  const std::int64_t batch = std::min(options.batch_size, n);
  std::int64_t steps_per_epoch = n / batch;  // the last partial batch is dropped
  if (options.max_steps_per_epoch > 0) {
    steps_per_epoch = std::min(steps_per_epoch, options.max_steps_per_epoch);
  }
  const std::int64_t total_steps = steps_per_epoch * options.epochs;
  auto on_epoch = options.on_epoch ? options.on_epoch : LogEpoch;

  TrainReport report;
  auto started = std::chrono::steady_clock::now();
  try {
    torch::manual_seed(options.seed);  // dropout masks
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    std::vector<torch::Tensor> params;
    for (auto p : module.parameters()) {
      p.requires_grad_(true);
      params.push_back(p);
    }
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (options.optimizer == "adam") {
      opt = std::make_unique<torch::optim::Adam>(
          params, torch::optim::AdamOptions(options.learning_rate).weight_decay(options.weight_decay));
    } else {
      opt = std::make_unique<torch::optim::SGD>(
          params, torch::optim::SGDOptions(options.learning_rate)
                      .momentum(options.momentum)
                      .weight_decay(options.weight_decay));
    }
    auto lr_at = [&](std::int64_t step) {
      double peak = options.learning_rate;
      if (step < options.warmup_steps) return peak * static_cast<double>(step + 1) / options.warmup_steps;
      double span = static_cast<double>(std::max<std::int64_t>(total_steps - options.warmup_steps, 1));
      double t = static_cast<double>(step - options.warmup_steps) / span;
      double floor = peak * options.min_lr_fraction;
      return floor + 0.5 * (peak - floor) * (1.0 + std::cos(M_PI * t));
    };
    auto ce = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing);
    double lr = options.learning_rate;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      auto t0 = std::chrono::steady_clock::now();
      module.train(true);
      auto perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
      double loss_sum = 0.0;
      std::int64_t correct = 0, seen = 0;
      for (std::int64_t s = 0; s < steps_per_epoch; ++s) {
        auto idx = perm.narrow(0, s * batch, batch);
        auto x = train.images.index_select(0, idx);
        auto y = train.labels.index_select(0, idx);
        if (options.augment) x = Augment(x, gen);
        lr = lr_at(report.steps);
        for (auto& group : opt->param_groups()) group.options().set_lr(lr);
        auto logits = module.forward({x}).toTensor();
        auto loss = torch::nn::functional::cross_entropy(logits, y, ce);
        double loss_value = loss.item<double>();
        if (!std::isfinite(loss_value)) {
          module.eval();
          return MakeError(ErrorKind::kFailedPrecondition, "training_diverged",
                           "loss became " + std::to_string(loss_value) + " at epoch " +
                               std::to_string(epoch) + " step " + std::to_string(s + 1) +
                               "; lower the learning rate");
        }
        opt->zero_grad();
        loss.backward();
        opt->step();
        loss_sum += loss_value;
        correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
        seen += batch;
        ++report.steps;
      }
      EpochReport r;
      r.epoch = epoch;
      r.epochs = options.epochs;
      r.train_loss = loss_sum / static_cast<double>(std::max<std::int64_t>(steps_per_epoch, 1));
      r.train_accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
      r.learning_rate = lr;
      if (validation != nullptr && validation->size() > 0) {
        EP_ASSIGN_OR_RETURN(auto acc, EvaluateAccuracy(module, *validation));
        r.validation_accuracy = acc.accuracy;
      }
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      r.eta_seconds = elapsed / epoch * (options.epochs - epoch);
      on_epoch(r);
      report.epochs.push_back(r);
    }
  } catch (const std::exception& e) {
    module.eval();
    std::string msg = e.what();
    return MakeError(ErrorKind::kInvalidArgument, "training_failed",
                     "training on data set " + train.name + " failed: " +
                         msg.substr(0, msg.find('\n')));
  }
  module.eval();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace edgeprune::models
