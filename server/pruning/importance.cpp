#include "server/pruning/importance.hpp"

#include <cmath>

namespace edgeprune::pruning {
namespace {

// Per-row statistic of a tensor seen as [axis_len, rest].
at::Tensor Rows(const at::Tensor& t, int axis) {
  return t.detach().transpose(0, axis).contiguous().reshape({t.size(axis), -1});
}

bool IsBatchNormScale(const Analysis& a, const std::string& path) {
  const std::string suffix = "weight";
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(),
                                                  suffix) != 0) {
    return false;
  }
  std::string sibling = path.substr(0, path.size() - suffix.size()) + "running_var";
  auto it = a.tensors.find(path);
  return a.tensors.count(sibling) && it != a.tensors.end() && it->second.size() == 1;
}

}  // namespace

Result<Criterion> ParseCriterion(const std::string& name) {
  if (name == "l1") return Criterion::kL1;
  if (name == "l2") return Criterion::kL2;
  if (name == "bn") return Criterion::kBnScale;
  if (name == "taylor") return Criterion::kTaylor;
  return MakeError(ErrorKind::kInvalidArgument, "invalid_criterion",
                   "importance must be l1, l2, bn or taylor, not '" + name + "'");
}

const char* CriterionName(Criterion c) {
  switch (c) {
    case Criterion::kL1: return "l1";
    case Criterion::kL2: return "l2";
    case Criterion::kBnScale: return "bn";
    case Criterion::kTaylor: return "taylor";
  }
  return "?";
}

Result<GroupScores> ScoreChannels(const EvalModule& m, const Analysis& a, Criterion criterion,
                                  const std::map<std::string, at::Tensor>& saliency) {
  if (criterion == Criterion::kTaylor && saliency.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "no_calibration",
                     "Taylor importance needs calibration batches");
  }
  GroupScores scores;
  try {
    torch::NoGradGuard no_grad;
    for (const auto& g : a.groups) {
      std::vector<double> s(g.width, 0.0);
      bool any_bn = false;
      auto accumulate = [&](Criterion c, bool bn_only) -> Status {
        for (size_t i : g.member_axes) {
          const ParamAxis& pa = a.param_axes[i];
          bool bn = IsBatchNormScale(a, pa.param);
          if (bn_only && !bn) continue;
          any_bn = any_bn || bn;
          at::Tensor t;
          if (c == Criterion::kTaylor) {
            auto it = saliency.find(pa.param);
            if (it == saliency.end()) continue;
            t = it->second;
          } else {
            EP_ASSIGN_OR_RETURN(t, GetTensorAttr(m.module, pa.param));
          }
          at::Tensor rows = Rows(t, pa.axis).to(torch::kDouble);
          at::Tensor stat;
          if (c == Criterion::kL1 || c == Criterion::kBnScale) stat = rows.abs().mean(1);
          else if (c == Criterion::kL2) stat = rows.pow(2).mean(1);
          else stat = rows.sum(1);
          auto acc = stat.accessor<double, 1>();
          int64_t base = 0;
          for (const auto& seg : pa.layout) {
            if (a.Find(seg.space) == g.root) {
              for (int64_t ch = 0; ch < seg.channels; ++ch) {
                double v = 0;
                for (int64_t j = 0; j < seg.expand; ++j) v += acc[base + ch * seg.expand + j];
                if (c == Criterion::kTaylor) v = std::abs(v);
                else v /= double(seg.expand);
                s[ch] += v;
              }
            }
            base += seg.channels * seg.expand;
          }
        }
        return Ok();
      };
      if (criterion == Criterion::kBnScale) {
        EP_RETURN_IF_ERROR(accumulate(Criterion::kBnScale, true));
        if (!any_bn) EP_RETURN_IF_ERROR(accumulate(Criterion::kL1, false));
      } else {
        EP_RETURN_IF_ERROR(accumulate(criterion, false));
      }
      if (criterion == Criterion::kL2) {
        for (double& v : s) v = std::sqrt(v);
      }
      double mean = 0;
      for (double v : s) mean += v;
      mean /= double(std::max<int64_t>(1, g.width));
      if (mean > 0) {
        for (double& v : s) v /= mean;
      }
      scores[g.root] = std::move(s);
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInternal, "importance_failed",
                     "cannot score channels: " + what.substr(0, what.find('\n')));
  }
  return scores;
}

Result<std::map<std::string, at::Tensor>> TaylorSaliency(const std::string& bytes,
                                                         const models::Dataset& calibration,
                                                         int64_t batch_size, int max_batches) {
  EP_ASSIGN_OR_RETURN(EvalModule copy, LoadEvalModule(bytes, "calibration copy"));
  std::map<std::string, at::Tensor> out;
  try {
    std::vector<std::pair<std::string, at::Tensor>> params;
    for (const auto& p : copy.module.named_parameters(true)) {
      p.value.set_requires_grad(true);
      params.push_back({p.name, p.value});
    }
    int64_t n = calibration.size();
    if (n == 0) {
      return MakeError(ErrorKind::kInvalidArgument, "no_calibration", "calibration set is empty");
    }
    for (int b = 0; b < max_batches && b * batch_size < n; ++b) {
      int64_t lo = b * batch_size, hi = std::min(n, lo + batch_size);
      for (auto& [name, p] : params) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      at::Tensor logits = copy.module.forward({calibration.images.slice(0, lo, hi)}).toTensor();
      at::Tensor loss = at::cross_entropy_loss(logits, calibration.labels.slice(0, lo, hi));
      loss.backward();
      torch::NoGradGuard no_grad;
      for (auto& [name, p] : params) {
        if (!p.grad().defined()) continue;
        at::Tensor s = p.detach() * p.grad();
        auto it = out.find(name);
        if (it == out.end()) out[name] = s.clone();
        else it->second.add_(s);
      }
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInvalidArgument, "calibration_failed",
                     "calibration batches do not fit the model: " +
                         what.substr(0, what.find('\n')));
  }
  return out;
}

}  // namespace edgeprune::pruning
