// The accuracy floor (variants.max_accuracy_drop) through the real API, the real build job and
// LibTorch on Fashion-MNIST: a master trained by the real `edgeprune-server train`, a device that
// runs the master-sized variant, then a budget whose variant, pruned without any fine-tuning, falls
// far below the master. That variant is not stored or signed, its build fails once (no retry) with
// the measured accuracy, and the device keeps the variant it has.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/build_paths.hpp"
#include "support/process.hpp"
#include "server/support/variants_api_fixture.hpp"

namespace edgeprune::deploy {
namespace {

// Through the API's fixture: the floor is what an operator sees there.
using api::VariantsApiTest;
using http::Verb;
namespace bj = boost::json;

class AccuracyFloorTest : public VariantsApiTest {
 protected:
  std::vector<std::string> Settings() const override {
    return {"variants.finetune_steps=0", "variants.step_finetune_steps=0",
            "variants.train_limit=2000", "variants.test_limit=500",
            "variants.max_model_bytes=4000000", "variants.max_accuracy_drop=3"};
  }

  // The status of a variant once it is no longer building (3 minutes at most).
  bj::object Finished(const std::string& model, const std::string& variant) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
    while (std::chrono::steady_clock::now() < deadline) {
      auto vs = Body(Call(Verb::get, "/api/v1/models/" + model + "/variants", "", "viewer"));
      for (const auto& v : vs.at("items").as_array()) {
        const auto& o = v.as_object();
        if (o.at("id").as_string() == variant && o.at("status").as_string() != "building") {
          return o;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "variant " << variant << " still building";
    return {};
  }

  std::string DeployTo(const std::string& model) {
    auto dep = Call(Verb::post, "/api/v1/deployments",
                    R"({"model": ")" + model + R"(", "selector": {"devices": ["dev-a"]}})");
    EXPECT_EQ(dep.status, http::HttpStatus::created) << dep.body;
    auto builds = Body(dep).at("builds").as_array();
    EXPECT_EQ(builds.size(), 1u) << dep.body;
    return builds.empty() ? "" : std::string(builds[0].as_string());
  }
};

TEST_F(AccuracyFloorTest, AVariantBelowTheFloorIsNotShippedAndTheDeviceKeepsItsVariant) {
  const std::string master = t_.dir().File("master.pt");
  edgeprune::testing::Process train(
      {.program = edgeprune::testing::ServerBin(),
       .args = {"train", "--arch", "mlp", "--dataset", "fashion-mnist", "--train-limit", "4000",
                "--test-limit", "500", "--epochs", "3", "--threads", "1", "--latency-runs", "5",
                "--out", master}});
  ASSERT_EQ(train.Wait(std::chrono::minutes(3)), 0) << train.Stderr();
  const std::string model =
      UploadFile(master, "name=mlp&dataset=fashion-mnist&input_shape=1,28,28");
  ASSERT_FALSE(model.empty());
  const std::int64_t params =
      Body(Call(Verb::get, "/api/v1/models/" + model)).at("parameters").as_int64();

  // A device that affords the master gets it unpruned: nothing removed, nothing lost.
  Budget roomy;
  roomy.max_param_bytes = params * 4;
  t_.AddDevice("dev-a", "[]", roomy);
  const std::string kept = DeployTo(model);
  ASSERT_EQ(Finished(model, kept).at("status").as_string(), "ready");
  ASSERT_EQ(module_->DesiredVariant()("dev-a"), kept);

  // An eighth of the parameters without fine-tuning: far below the floor.
  Budget small;
  small.max_param_bytes = params * 4 / 8;
  t_.SetBudget("dev-a", small);
  const std::string refused = DeployTo(model);
  ASSERT_FALSE(refused.empty());
  const bj::object v = Finished(model, refused);
  EXPECT_EQ(v.at("status").as_string(), "failed");
  const std::string error(v.at("error").as_string());
  EXPECT_NE(error.find("below_accuracy_floor"), std::string::npos) << error;
  EXPECT_NE(error.find("not shipped"), std::string::npos) << error;
  ASSERT_TRUE(v.contains("accuracy")) << json::Serialize(v);
  const double measured = v.at("accuracy").as_double();
  EXPECT_NE(error.find(std::to_string(100.0 * measured).substr(0, 4)), std::string::npos) << error;

  // Failed once, not retried; nothing stored for it; the device still runs the master's variant.
  const auto job = Body(Call(Verb::get, "/api/v1/jobs/" + std::string(v.at("job_id").as_string())));
  EXPECT_EQ(job.at("state").as_string(), "failed");
  EXPECT_EQ(job.at("attempts").as_int64(), 1);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM variants WHERE id = '" + refused +
                     "' AND blob_sha256 IS NOT NULL"),
            0);
  EXPECT_EQ(module_->DesiredVariant()("dev-a"), kept);
}

}  // namespace
}  // namespace edgeprune::deploy
