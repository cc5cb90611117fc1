// The operator allow-list (common/torch/operator_policy.hpp) against real models: everything the
// product is meant to run passes (the zoo, every fixture, torchvision's classification models,
// pruned variants), and each hostile fixture (tests/fixtures/hostile/make_fixtures.py) is refused
// naming its operator and where it is — before any of its code runs.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "support/build_paths.hpp"
#include "common/torch/operator_policy.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/zoo.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::model_policy {
namespace {

std::string FixtureDir(const std::string& name) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/" + name;
}

std::optional<Refusal> CheckFile(const std::string& path) {
  if (auto refusal = CheckArchive(path)) return refusal;
  return FindForbiddenOperator(torch::jit::load(path));
}

TEST(OperatorPolicy, TheListHasNoDuplicatesAndNamesNoFileOrProcessOperator) {
  const auto ops = AllowedOperators();
  EXPECT_EQ(std::set<std::string>(ops.begin(), ops.end()).size(), ops.size());
  for (const char* forbidden :
       {"aten::from_file", "aten::save", "aten::load", "aten::set_", "aten::from_blob",
        "prim::Print", "aten::warn", "prim::CallMethod", "prim::CallFunction", "prim::fork",
        "aten::wait", "prim::PythonOp", "prim::SetAttr", "aten::as_strided", "aten::resize_"}) {
    EXPECT_FALSE(IsAllowedOperator(forbidden)) << forbidden;
  }
}

TEST(OperatorPolicy, EveryCommittedModelFixturePasses) {
  int checked = 0;
  for (const char* dir : {"models", "pruning", "torchvision"}) {
    for (const auto& entry : std::filesystem::directory_iterator(FixtureDir(dir))) {
      if (entry.path().extension() != ".pt") continue;
      SCOPED_TRACE(entry.path().filename().string());
      auto refusal = CheckFile(entry.path().string());
      EXPECT_FALSE(refusal.has_value()) << refusal->message;
      ++checked;
    }
  }
  EXPECT_GE(checked, 17);
}

// torchvision 0.14's classification models, scripted and traced: what they call, as recorded by
// tests/fixtures/torchvision/make_fixtures.py from the saved and reloaded files.
TEST(OperatorPolicy, TorchvisionClassificationModelsPass) {
  std::ifstream in(FixtureDir("torchvision/ops.txt"));
  ASSERT_TRUE(in.good());
  std::string line;
  std::set<std::string> models;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string model, form, op;
    fields >> model >> form;
    models.insert(model + " " + form);
    while (fields >> op) EXPECT_TRUE(IsAllowedOperator(op)) << model << " " << form << ": " << op;
  }
  EXPECT_EQ(models.size(), 16u);  // 8 models x scripted/traced
}

TEST(OperatorPolicy, EveryZooArchitecturePassesAsSavedAndReloaded) {
  edgeprune::testing::TempDir dir("edgeprune-policy");
  for (const auto& arch : models::Architectures()) {
    SCOPED_TRACE(arch);
    const std::vector<std::int64_t> shape =
        arch == "cnn1d" ? std::vector<std::int64_t>{1, 28} : std::vector<std::int64_t>{1, 28, 28};
    auto m = models::BuildMaster(arch, {shape, 10, 1, 0.5});
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    EXPECT_FALSE(FindForbiddenOperator(*m).has_value());
    const std::string path = dir.File(arch + ".pt");
    ASSERT_TRUE(models::SaveModule(*m, path).ok());
    auto refusal = CheckFile(path);
    EXPECT_FALSE(refusal.has_value()) << refusal->message;
  }
}

struct HostileCase {
  const char* file;
  const char* code;
  const char* names;  // the operator or construct the message must name
  const char* where;  // and where it is
};

TEST(OperatorPolicy, HostileModelsAreRefusedNamingTheOperatorAndWhereItIs) {
  const HostileCase cases[] = {
      {"read_secret.pt", "forbidden_operator", "aten::from_file", "method 'forward' of the model"},
      {"write_file.pt", "forbidden_operator", "aten::from_file", "method 'forward'"},
      {"save_tensor.pt", "forbidden_operator", "aten::save", "method 'forward'"},
      {"set_storage.pt", "forbidden_operator", "aten::set_", "method 'forward'"},
      {"dynamic_raise.pt", "forbidden_operator", "prim::RaiseException", "computed at run time"},
      {"hidden_submodule.pt", "forbidden_operator", "aten::from_file", "Reader.helper"},
      {"hidden_export.pt", "forbidden_operator", "aten::save", "method 'dump'"},
      {"hidden_if.pt", "forbidden_operator", "aten::from_file", "method 'forward'"},
      {"setstate.pt", "forbidden_operator", "__setstate__", "loading would run"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto refusal = CheckFile(FixtureDir("hostile/") + c.file);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->code, c.code);
    EXPECT_NE(refusal->message.find(c.names), std::string::npos) << refusal->message;
    EXPECT_NE(refusal->message.find(c.where), std::string::npos) << refusal->message;
    EXPECT_EQ(refusal->message.find('\n'), std::string::npos) << refusal->message;
  }
}

TEST(OperatorPolicy, ModelsThatOnlyRunningRevealPassTheScan) {
  // Allowed operators only: the model worker's limits stop them (tests/server/model_worker_test).
  for (const char* file : {"huge_alloc.pt", "endless_loop.pt"}) {
    SCOPED_TRACE(file);
    auto refusal = CheckFile(FixtureDir("hostile/") + file);
    EXPECT_FALSE(refusal.has_value()) << refusal->message;
  }
}

TEST(OperatorPolicy, SomethingThatIsNotATorchScriptArchiveIsInvalid) {
  edgeprune::testing::TempDir dir("edgeprune-policy");
  auto refusal = CheckArchive(dir.WriteFile("junk.pt", "PK\x03\x04 not really a zip"));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->code, "invalid_model");
  EXPECT_EQ(refusal->message.find(dir.path()), std::string::npos) << refusal->message;
}

}  // namespace
}  // namespace edgeprune::model_policy
