#include "runtime_fixture_models.hpp"

#include <torch/script.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <random>

namespace edgeprune::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fixture model generation failed: " << what << "\n";
  std::abort();
}

std::int64_t Elements(const SyntheticTask& t) { return t.channels * t.height * t.width; }

// Row band of class k: rows [k*h/classes, (k+1)*h/classes).
bool InBand(const SyntheticTask& t, std::int64_t row, std::int64_t k) {
  return row * t.classes / t.height == k;
}

void Save(torch::jit::Module& m, const std::string& path) {
  try {
    m.save(path);
  } catch (const std::exception& e) {
    Die(e.what());
  }
}

}  // namespace

void WriteTemplateModel(const std::string& path, const SyntheticTask& task, std::int64_t shift) {
  const std::int64_t n = Elements(task);
  std::vector<float> weights(static_cast<std::size_t>(task.classes * n), 0.0f);
  for (std::int64_t k = 0; k < task.classes; ++k) {
    const std::int64_t band = ((k + shift) % task.classes + task.classes) % task.classes;
    for (std::int64_t c = 0; c < task.channels; ++c) {
      for (std::int64_t r = 0; r < task.height; ++r) {
        if (!InBand(task, r, band)) continue;
        for (std::int64_t col = 0; col < task.width; ++col) {
          weights[static_cast<std::size_t>(k * n + (c * task.height + r) * task.width + col)] = 1.0f;
        }
      }
    }
  }
  auto w = torch::from_blob(weights.data(), {task.classes, n}, torch::kFloat).clone();
  try {
    torch::jit::Module m("TemplateClassifier");
    m.register_parameter("weight", w, false);
    m.register_parameter("bias", torch::zeros({task.classes}), false);
    m.define(R"JIT(
def forward(self, x):
    return torch.matmul(torch.flatten(x, 1), self.weight.t()) + self.bias
)JIT");
    Save(m, path);
  } catch (const std::exception& e) {
    Die(e.what());
  }
}

void WriteWrongOutputModel(const std::string& path, const SyntheticTask& task,
                           std::int64_t classes) {
  try {
    torch::jit::Module m("WrongOutput");
    m.register_parameter("weight", torch::ones({classes, Elements(task)}), false);
    m.define(R"JIT(
def forward(self, x):
    return torch.matmul(torch.flatten(x, 1), self.weight.t())
)JIT");
    Save(m, path);
  } catch (const std::exception& e) {
    Die(e.what());
  }
}

void WriteNanModel(const std::string& path, const SyntheticTask& task) {
  try {
    torch::jit::Module m("NanOutput");
    m.register_buffer("scores", torch::full({1, task.classes}, std::nanf("")));
    m.define(R"JIT(
def forward(self, x):
    return self.scores + torch.sum(x) * 0.0
)JIT");
    Save(m, path);
  } catch (const std::exception& e) {
    Die(e.what());
  }
}

std::vector<float> MakeSample(const SyntheticTask& task, std::int64_t k) {
  std::vector<float> v(static_cast<std::size_t>(Elements(task)), 0.1f);
  for (std::int64_t c = 0; c < task.channels; ++c) {
    for (std::int64_t r = 0; r < task.height; ++r) {
      if (!InBand(task, r, k)) continue;
      for (std::int64_t col = 0; col < task.width; ++col) {
        v[static_cast<std::size_t>((c * task.height + r) * task.width + col)] = 0.9f;
      }
    }
  }
  return v;
}

agent::ProbeSet MakeProbeSet(const SyntheticTask& task, std::int64_t per_class, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(-0.05f, 0.05f);
  agent::ProbeSet set;
  set.sample_shape = task.input_shape();
  for (std::int64_t i = 0; i < per_class; ++i) {
    for (std::int64_t k = 0; k < task.classes; ++k) {
      for (float x : MakeSample(task, k)) set.data.push_back(x + noise(rng));
      set.labels.push_back(k);
    }
  }
  return set;
}

agent::VariantSpec SpecFor(const std::string& variant_id, const std::string& path,
                           const SyntheticTask& task, double accuracy_floor) {
  agent::VariantSpec spec;
  spec.variant_id = variant_id;
  spec.path = path;
  spec.input_shape = task.input_shape();
  spec.num_classes = task.classes;
  spec.accuracy_floor = accuracy_floor;
  return spec;
}

}  // namespace edgeprune::testing
