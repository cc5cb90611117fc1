#include "server/models/layers.hpp"

#include <cmath>
#include <sstream>

namespace edgeprune::models {
namespace {

std::string Pair(std::int64_t v) {
  return "[" + std::to_string(v) + ", " + std::to_string(v) + "]";
}

// torch.nn's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
torch::Tensor UniformFanIn(std::vector<std::int64_t> shape, std::int64_t fan_in) {
  double bound = 1.0 / std::sqrt(static_cast<double>(std::max<std::int64_t>(fan_in, 1)));
  return torch::empty(shape).uniform_(-bound, bound);
}

void Define(torch::jit::Module& m, const std::string& body) {
  m.define("def forward(self, x):\n" + body);
}

}  // namespace

CompilationUnitPtr NewCompilationUnit() { return std::make_shared<torch::jit::CompilationUnit>(); }

torch::jit::Module NewModule(const CompilationUnitPtr& cu, const std::string& type_name) {
  torch::jit::Module m(c10::QualifiedName("__torch__.edgeprune." + type_name), cu,
                       /*shouldMangle=*/true);
  m.register_attribute("training", c10::BoolType::get(), true);
  return m;
}

torch::jit::Module MakeConv2d(const CompilationUnitPtr& cu, const Conv2dOptions& o) {
  std::int64_t fan_in = (o.in_channels / o.groups) * o.kernel * o.kernel;
  auto w = UniformFanIn({o.out_channels, o.in_channels / o.groups, o.kernel, o.kernel}, fan_in);
  torch::Tensor b;
  if (o.bias) b = UniformFanIn({o.out_channels}, fan_in);
  return MakeConv2dFrom(cu, o, w, b);
}

torch::jit::Module MakeConv2dFrom(const CompilationUnitPtr& cu, const Conv2dOptions& o,
                                  const torch::Tensor& weight, const torch::Tensor& bias) {
  auto m = NewModule(cu, "Conv2d");
  m.register_parameter("weight", weight.detach().clone().requires_grad_(true), false);
  std::string bias_expr = "None";
  if (bias.defined()) {
    m.register_parameter("bias", bias.detach().clone().requires_grad_(true), false);
    bias_expr = "self.bias";
  }
  Define(m, "    return torch.conv2d(x, self.weight, " + bias_expr + ", " + Pair(o.stride) + ", " +
                Pair(o.padding) + ", " + Pair(o.dilation) + ", " + std::to_string(o.groups) +
                ")\n");
  return m;
}

torch::jit::Module MakeConv1d(const CompilationUnitPtr& cu, std::int64_t in, std::int64_t out,
                              std::int64_t kernel, std::int64_t padding, bool bias) {
  std::int64_t fan_in = in * kernel;
  auto m = NewModule(cu, "Conv1d");
  m.register_parameter("weight", UniformFanIn({out, in, kernel}, fan_in).requires_grad_(true),
                       false);
  std::string bias_expr = "None";
  if (bias) {
    m.register_parameter("bias", UniformFanIn({out}, fan_in).requires_grad_(true), false);
    bias_expr = "self.bias";
  }
  Define(m, "    return torch.conv1d(x, self.weight, " + bias_expr + ", [1], [" +
                std::to_string(padding) + "], [1], 1)\n");
  return m;
}

torch::jit::Module MakeLinear(const CompilationUnitPtr& cu, std::int64_t in, std::int64_t out) {
  return MakeLinearFrom(cu, UniformFanIn({out, in}, in), UniformFanIn({out}, in));
}

torch::jit::Module MakeLinearFrom(const CompilationUnitPtr& cu, const torch::Tensor& weight,
                                  const torch::Tensor& bias) {
  auto m = NewModule(cu, "Linear");
  m.register_parameter("weight", weight.detach().clone().requires_grad_(true), false);
  std::string bias_expr = "None";
  if (bias.defined()) {
    m.register_parameter("bias", bias.detach().clone().requires_grad_(true), false);
    bias_expr = "self.bias";
  }
  Define(m, "    return torch.linear(x, self.weight, " + bias_expr + ")\n");
  return m;
}

torch::jit::Module MakeBatchNorm2d(const CompilationUnitPtr& cu, std::int64_t channels) {
  return MakeBatchNorm2dFrom(cu, torch::ones({channels}), torch::zeros({channels}),
                             torch::zeros({channels}), torch::ones({channels}));
}

namespace {

torch::jit::Module MakeBatchNorm(const CompilationUnitPtr& cu, const std::string& type,
                                 const torch::Tensor& weight, const torch::Tensor& bias,
                                 const torch::Tensor& running_mean,
                                 const torch::Tensor& running_var) {
  auto m = NewModule(cu, type);
  m.register_parameter("weight", weight.detach().clone().requires_grad_(true), false);
  m.register_parameter("bias", bias.detach().clone().requires_grad_(true), false);
  m.register_buffer("running_mean", running_mean.detach().clone());
  m.register_buffer("running_var", running_var.detach().clone());
  Define(m,
         "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, "
         "self.running_var, self.training, 0.1, 1.0000000000000001e-05, False)\n");
  return m;
}

}  // namespace

torch::jit::Module MakeBatchNorm2dFrom(const CompilationUnitPtr& cu, const torch::Tensor& weight,
                                       const torch::Tensor& bias, const torch::Tensor& running_mean,
                                       const torch::Tensor& running_var) {
  return MakeBatchNorm(cu, "BatchNorm2d", weight, bias, running_mean, running_var);
}

torch::jit::Module MakeBatchNorm1d(const CompilationUnitPtr& cu, std::int64_t channels) {
  return MakeBatchNorm(cu, "BatchNorm1d", torch::ones({channels}), torch::zeros({channels}),
                       torch::zeros({channels}), torch::ones({channels}));
}

torch::jit::Module MakeReLU(const CompilationUnitPtr& cu) {
  auto m = NewModule(cu, "ReLU");
  Define(m, "    return torch.relu(x)\n");
  return m;
}

torch::jit::Module MakeMaxPool2d(const CompilationUnitPtr& cu, std::int64_t kernel,
                                 std::int64_t stride) {
  auto m = NewModule(cu, "MaxPool2d");
  Define(m, "    return torch.max_pool2d(x, " + Pair(kernel) + ", " + Pair(stride) +
                ", [0, 0], [1, 1], False)\n");
  return m;
}

torch::jit::Module MakeMaxPool1d(const CompilationUnitPtr& cu, std::int64_t kernel) {
  auto m = NewModule(cu, "MaxPool1d");
  const std::string k = "[" + std::to_string(kernel) + "]";
  Define(m, "    return torch.max_pool1d(x, " + k + ", " + k + ", [0], [1], False)\n");
  return m;
}

torch::jit::Module MakeAdaptiveAvgPool1d(const CompilationUnitPtr& cu, std::int64_t out_l) {
  auto m = NewModule(cu, "AdaptiveAvgPool1d");
  Define(m, "    return torch.adaptive_avg_pool1d(x, [" + std::to_string(out_l) + "])\n");
  return m;
}

torch::jit::Module MakeAdaptiveAvgPool2d(const CompilationUnitPtr& cu, std::int64_t out_h,
                                         std::int64_t out_w) {
  auto m = NewModule(cu, "AdaptiveAvgPool2d");
  Define(m, "    return torch.adaptive_avg_pool2d(x, [" + std::to_string(out_h) + ", " +
                std::to_string(out_w) + "])\n");
  return m;
}

torch::jit::Module MakeFlatten(const CompilationUnitPtr& cu) {
  auto m = NewModule(cu, "Flatten");
  Define(m, "    return torch.flatten(x, 1, -1)\n");
  return m;
}

torch::jit::Module MakeDropout(const CompilationUnitPtr& cu, double p) {
  auto m = NewModule(cu, "Dropout");
  std::ostringstream os;
  os.precision(17);
  os << p;
  std::string lit = os.str();
  if (lit.find('.') == std::string::npos && lit.find('e') == std::string::npos) lit += ".0";
  Define(m, "    return torch.dropout(x, " + lit + ", self.training)\n");
  return m;
}

torch::jit::Module MakeSequential(const CompilationUnitPtr& cu,
                                  const std::vector<torch::jit::Module>& children) {
  auto m = NewModule(cu, "Sequential");
  std::string body;
  for (std::size_t i = 0; i < children.size(); ++i) {
    m.register_module(std::to_string(i), children[i]);
    body += "    x = getattr(self, \"" + std::to_string(i) + "\").forward(x)\n";
  }
  Define(m, body + "    return x\n");
  return m;
}

}  // namespace edgeprune::models
