#include "server/models/zoo.hpp"

#include <algorithm>
#include <cmath>

#include "server/models/layers.hpp"

namespace edgeprune::models {
namespace {

using torch::jit::Module;

struct Ctx {
  CompilationUnitPtr cu;
  ModelSpec spec;
  std::int64_t C() const { return spec.input_shape[0]; }
  std::int64_t H() const { return spec.input_shape[1]; }
  std::int64_t W() const { return spec.input_shape[2]; }
  std::int64_t K() const { return spec.num_classes; }
  std::int64_t Ch(std::int64_t n) const {
    return std::max<std::int64_t>(1, std::llround(static_cast<double>(n) * spec.width));
  }
};

Error TooSmall(const std::string& arch, const ModelSpec& spec, const std::string& need) {
  return MakeError(ErrorKind::kInvalidArgument, "input_too_small",
                   "architecture '" + arch + "' needs " + need + "; input is " +
                       std::to_string(spec.input_shape[1]) + "x" +
                       std::to_string(spec.input_shape[2]));
}

Module Conv(const Ctx& c, std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride,
            std::int64_t pad, std::int64_t groups, bool bias) {
  Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = k;
  o.stride = stride;
  o.padding = pad;
  o.groups = groups;
  o.bias = bias;
  return MakeConv2d(c.cu, o);
}

// Top-level module: named children, forward runs `body` (TorchScript source lines).
Module Top(const Ctx& c, const std::string& type,
           const std::vector<std::pair<std::string, Module>>& children, const std::string& body) {
  Module m = NewModule(c.cu, type);
  for (const auto& [name, child] : children) m.register_module(name, child);
  m.define("def forward(self, x):\n" + body);
  return m;
}

Module BuildMlp(const Ctx& c) {
  std::int64_t in = 1;
  for (auto d : c.spec.input_shape) in *= d;
  std::int64_t h1 = c.Ch(300), h2 = c.Ch(100);
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeLinear(c.cu, in, h1), MakeReLU(c.cu),
             MakeLinear(c.cu, h1, h2), MakeReLU(c.cu), MakeLinear(c.cu, h2, c.K())});
  return Top(c, "LeNet300100", {{"classifier", classifier}},
             "    return self.classifier.forward(x)\n");
}

// Feature vectors: Linear → BatchNorm1d → ReLU twice; batch norm keeps the hidden units of
// unscaled sensor features comparable, and folds into the linear layer in the emitted variant.
Module BuildMlpBn(const Ctx& c) {
  std::int64_t in = 1;
  for (auto d : c.spec.input_shape) in *= d;
  std::int64_t h1 = c.Ch(256), h2 = c.Ch(128);
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeLinear(c.cu, in, h1), MakeBatchNorm1d(c.cu, h1),
             MakeReLU(c.cu), MakeLinear(c.cu, h1, h2), MakeBatchNorm1d(c.cu, h2), MakeReLU(c.cu),
             MakeLinear(c.cu, h2, c.K())});
  return Top(c, "MlpBn", {{"classifier", classifier}}, "    return self.classifier.forward(x)\n");
}

// Signals [C, L]: three Conv1d-BatchNorm1d-ReLU stages (the first two halve L with max pooling),
// adaptive average pooling to 4 positions, flattened into a 64-unit hidden layer.
Result<Module> BuildCnn1d(const Ctx& c) {
  const std::int64_t length = c.spec.input_shape[1];
  if (length < 8) {
    return MakeError(ErrorKind::kInvalidArgument, "input_too_small",
                     "architecture 'cnn1d' needs signals of at least 8 samples; input has " +
                         std::to_string(length));
  }
  const std::int64_t c1 = c.Ch(16), c2 = c.Ch(32), c3 = c.Ch(64), hidden = c.Ch(64);
  Module features = MakeSequential(
      c.cu, {MakeConv1d(c.cu, c.C(), c1, 5, 2, false), MakeBatchNorm1d(c.cu, c1), MakeReLU(c.cu),
             MakeMaxPool1d(c.cu, 2), MakeConv1d(c.cu, c1, c2, 5, 2, false),
             MakeBatchNorm1d(c.cu, c2), MakeReLU(c.cu), MakeMaxPool1d(c.cu, 2),
             MakeConv1d(c.cu, c2, c3, 3, 1, false), MakeBatchNorm1d(c.cu, c3), MakeReLU(c.cu),
             MakeAdaptiveAvgPool1d(c.cu, 4)});
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeLinear(c.cu, c3 * 4, hidden), MakeReLU(c.cu),
             MakeDropout(c.cu, 0.2), MakeLinear(c.cu, hidden, c.K())});
  return Top(c, "Cnn1d", {{"features", features}, {"classifier", classifier}},
             "    x = self.features.forward(x)\n    return self.classifier.forward(x)\n");
}

Result<Module> BuildLeNet5(const Ctx& c) {
  std::int64_t h = (c.H() / 2 - 4) / 2, w = (c.W() / 2 - 4) / 2;
  if (h < 1 || w < 1) return TooSmall("lenet5", c.spec, "at least 12x12");
  std::int64_t c1 = c.Ch(6), c2 = c.Ch(16);
  Module features = MakeSequential(
      c.cu, {Conv(c, c.C(), c1, 5, 1, 2, 1, true), MakeReLU(c.cu), MakeMaxPool2d(c.cu, 2, 2),
             Conv(c, c1, c2, 5, 1, 0, 1, true), MakeReLU(c.cu), MakeMaxPool2d(c.cu, 2, 2)});
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeLinear(c.cu, c2 * h * w, c.Ch(120)), MakeReLU(c.cu),
             MakeLinear(c.cu, c.Ch(120), c.Ch(84)), MakeReLU(c.cu),
             MakeLinear(c.cu, c.Ch(84), c.K())});
  return Top(c, "LeNet5", {{"features", features}, {"classifier", classifier}},
             "    x = self.features.forward(x)\n    return self.classifier.forward(x)\n");
}

Result<Module> BuildVgg(const Ctx& c) {
  std::int64_t h = c.H() / 8, w = c.W() / 8;
  if (h < 1 || w < 1) return TooSmall("vgg", c.spec, "at least 8x8");
  const std::vector<std::vector<std::int64_t>> stages = {{c.Ch(32)}, {c.Ch(32)}, {c.Ch(64)}};
  std::vector<Module> layers;
  std::int64_t in = c.C();
  for (const auto& stage : stages) {
    for (std::int64_t out : stage) {
      layers.push_back(Conv(c, in, out, 3, 1, 1, 1, false));
      layers.push_back(MakeBatchNorm2d(c.cu, out));
      layers.push_back(MakeReLU(c.cu));
      in = out;
    }
    layers.push_back(MakeMaxPool2d(c.cu, 2, 2));
  }
  Module features = MakeSequential(c.cu, layers);
  std::int64_t hidden = c.Ch(128);
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeDropout(c.cu, 0.25), MakeLinear(c.cu, in * h * w, hidden),
             MakeReLU(c.cu), MakeDropout(c.cu, 0.25), MakeLinear(c.cu, hidden, c.K())});
  return Top(c, "VGG", {{"features", features}, {"classifier", classifier}},
             "    x = self.features.forward(x)\n    return self.classifier.forward(x)\n");
}

// torchvision's BasicBlock: conv-bn-relu-conv-bn, plus the (projected) input, relu.
Module BasicBlock(const Ctx& c, std::int64_t in, std::int64_t out, std::int64_t stride) {
  std::vector<std::pair<std::string, Module>> children = {
      {"conv1", Conv(c, in, out, 3, stride, 1, 1, false)},
      {"bn1", MakeBatchNorm2d(c.cu, out)},
      {"conv2", Conv(c, out, out, 3, 1, 1, 1, false)},
      {"bn2", MakeBatchNorm2d(c.cu, out)}};
  std::string identity = "x";
  if (stride != 1 || in != out) {
    children.emplace_back("downsample",
                          MakeSequential(c.cu, {Conv(c, in, out, 1, stride, 0, 1, false),
                                                MakeBatchNorm2d(c.cu, out)}));
    identity = "self.downsample.forward(x)";
  }
  return Top(c, "BasicBlock", children,
             "    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
             "    out = self.bn2.forward(self.conv2.forward(out))\n"
             "    out = out + " + identity + "\n"
             "    return torch.relu(out)\n");
}

Result<Module> BuildResNet(const Ctx& c) {
  if (c.H() < 8 || c.W() < 8) return TooSmall("resnet", c.spec, "at least 8x8");
  std::int64_t s = c.Ch(16), m = c.Ch(32), l = c.Ch(64);
  return Top(c, "ResNet",
             {{"conv1", Conv(c, c.C(), s, 3, 1, 1, 1, false)},
              {"bn1", MakeBatchNorm2d(c.cu, s)},
              {"maxpool", MakeMaxPool2d(c.cu, 2, 2)},
              {"layer1", MakeSequential(c.cu, {BasicBlock(c, s, s, 1)})},
              {"layer2", MakeSequential(c.cu, {BasicBlock(c, s, m, 2)})},
              {"layer3", MakeSequential(c.cu, {BasicBlock(c, m, l, 2)})},
              {"avgpool", MakeAdaptiveAvgPool2d(c.cu, 1, 1)},
              {"fc", MakeLinear(c.cu, l, c.K())}},
             "    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
             "    x = self.maxpool.forward(x)\n"
             "    x = self.layer1.forward(x)\n"
             "    x = self.layer2.forward(x)\n"
             "    x = self.layer3.forward(x)\n"
             "    x = self.avgpool.forward(x)\n"
             "    x = torch.flatten(x, 1)\n"
             "    return self.fc.forward(x)\n");
}

// MobileNet v1 unit: depthwise 3x3 conv-bn-relu, pointwise 1x1 conv-bn-relu.
Module DepthwiseSeparable(const Ctx& c, std::int64_t in, std::int64_t out, std::int64_t stride) {
  return MakeSequential(c.cu, {Conv(c, in, in, 3, stride, 1, in, false),
                               MakeBatchNorm2d(c.cu, in), MakeReLU(c.cu),
                               Conv(c, in, out, 1, 1, 0, 1, false), MakeBatchNorm2d(c.cu, out),
                               MakeReLU(c.cu)});
}

Result<Module> BuildMobileNet(const Ctx& c) {
  if (c.H() < 4 || c.W() < 4) return TooSmall("mobilenet", c.spec, "at least 4x4");
  std::int64_t c0 = c.Ch(16), c1 = c.Ch(32), c2 = c.Ch(64), c3 = c.Ch(128);
  Module stem = MakeSequential(c.cu, {Conv(c, c.C(), c0, 3, 1, 1, 1, false),
                                      MakeBatchNorm2d(c.cu, c0), MakeReLU(c.cu)});
  Module features = MakeSequential(
      c.cu, {stem, DepthwiseSeparable(c, c0, c1, 1), DepthwiseSeparable(c, c1, c2, 2),
             DepthwiseSeparable(c, c2, c3, 2), DepthwiseSeparable(c, c3, c3, 1)});
  Module classifier = MakeSequential(
      c.cu, {MakeFlatten(c.cu), MakeDropout(c.cu, 0.2), MakeLinear(c.cu, c3, c.K())});
  return Top(c, "MobileNet",
             {{"features", features},
              {"avgpool", MakeAdaptiveAvgPool2d(c.cu, 1, 1)},
              {"classifier", classifier}},
             "    x = self.features.forward(x)\n"
             "    x = self.avgpool.forward(x)\n"
             "    return self.classifier.forward(x)\n");
}

}  // namespace

const std::vector<std::string>& Architectures() {
  static const std::vector<std::string> names = {"mlp",    "mlp-bn", "cnn1d",    "lenet5",
                                                 "vgg",    "resnet", "mobilenet"};
  return names;
}

Result<torch::jit::Module> BuildMaster(const std::string& arch, const ModelSpec& spec) {
  // The MLPs flatten any sample ([F] feature vectors, [C, L] signals, [C, H, W] images); cnn1d
  // needs signals, the other convolutional nets images.
  const std::size_t rank = spec.input_shape.size();
  const bool flat = arch == "mlp" || arch == "mlp-bn";
  const bool rank_ok = flat ? (rank >= 1 && rank <= 3) : rank == (arch == "cnn1d" ? 2u : 3u);
  if (!rank_ok || std::any_of(spec.input_shape.begin(), spec.input_shape.end(),
                              [](std::int64_t d) { return d <= 0; })) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_shape",
                     flat ? "input shape must be {F}, {C, L} or {C, H, W} with positive sizes"
                     : arch == "cnn1d"
                         ? "architecture 'cnn1d' needs signals: input shape {C, L} with positive sizes"
                         : "architecture '" + arch +
                               "' needs images: input shape {C, H, W} with positive sizes");
  }
  if (spec.num_classes < 2) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "a classifier needs at least 2 classes, got " +
                         std::to_string(spec.num_classes));
  }
  if (!(spec.width >= 0.125 && spec.width <= 16.0)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "width multiplier must be in [0.125, 16]");
  }
  Ctx c{NewCompilationUnit(), spec};
  try {
    torch::manual_seed(spec.seed);
    if (arch == "mlp") return BuildMlp(c);
    if (arch == "mlp-bn") return BuildMlpBn(c);
    if (arch == "cnn1d") return BuildCnn1d(c);
    if (arch == "lenet5") return BuildLeNet5(c);
    if (arch == "vgg") return BuildVgg(c);
    if (arch == "resnet") return BuildResNet(c);
    if (arch == "mobilenet") return BuildMobileNet(c);
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "model_build_failed",
                     "building '" + arch + "' failed: " + e.what());
  }
  std::string known;
  for (const auto& a : Architectures()) known += (known.empty() ? "" : ", ") + a;
  return MakeError(ErrorKind::kInvalidArgument, "unknown_architecture",
                   "unknown architecture '" + arch + "'; known: " + known);
}

}  // namespace edgeprune::models
