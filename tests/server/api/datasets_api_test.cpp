// POST/GET/DELETE /api/v1/datasets through the real router and the variants module: uploads are
// validated, content-addressed and audited; every refusal answers its code and stores nothing;
// a data set a model uses cannot be deleted.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/probe_file.hpp"
#include "server/datasets/dataset_files.hpp"
#include "server/datasets/image_files.hpp"
#include "server/support/variants_api_fixture.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::api {
namespace {

using edgeprune::testing::GeneratedSpec;

class DatasetsApiTest : public VariantsApiTest {
 protected:
  std::vector<std::string> Settings() const override {
    return {"datasets.max_upload_bytes=2000000", "datasets.max_decompressed_bytes=4000000"};
  }
  std::size_t Blobs() {
    std::size_t n = 0;
    std::error_code ec;
    for (auto& e : std::filesystem::recursive_directory_iterator(t_.dir().File("data/blobs"), ec)) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }
  static std::string Code(const http::Response& r) {
    auto o = json::ParseObject(r.body);
    if (!o.ok() || !o->contains("error")) return "";
    return std::string(o->at("error").as_object().at("code").as_string());
  }
};

TEST_F(DatasetsApiTest, AnImageFolderTarOfPngAndJpegIsADataSet) {
  const unsigned char red[3] = {200, 20, 20}, blue[3] = {10, 30, 220};
  std::vector<std::pair<std::string, std::string>> files{{"shape.txt", "3,32,32"}};
  for (int i = 0; i < 5; ++i) {
    const std::string n = std::to_string(i);
    files.push_back({"train/bolt/" + n + ".png", edgeprune::testing::Png(40, 40, 3, red)});
    files.push_back({"train/nut/" + n + ".jpg", edgeprune::testing::Jpeg(48, 32, blue)});
  }
  files.push_back({"test/bolt/a.jpg", edgeprune::testing::Jpeg(32, 32, red)});
  files.push_back({"test/nut/b.png", edgeprune::testing::Png(30, 36, 3, blue)});
  // A damaged image: refused naming it, nothing stored.
  auto damaged = files;
  damaged.push_back({"train/nut/broken.png", "not an image at all"});
  auto refused = Call(Verb::post, "/api/v1/datasets?name=parts", edgeprune::testing::Tar(damaged));
  EXPECT_EQ(refused.status, http::HttpStatus::bad_request);
  EXPECT_EQ(Code(refused), "dataset_invalid");
  EXPECT_NE(refused.body.find("train/nut/broken.png"), std::string::npos) << refused.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 0);
  EXPECT_EQ(Blobs(), 0u);

  auto r = Call(Verb::post, "/api/v1/datasets?name=parts",
                edgeprune::testing::Gzip(edgeprune::testing::Tar(files)));
  ASSERT_EQ(r.status, http::HttpStatus::created) << r.body;
  auto d = Body(r);
  EXPECT_EQ(d.at("format").as_string(), "image-tar");
  EXPECT_EQ(d.at("dtype").as_string(), "uint8");
  EXPECT_EQ(json::Serialize(d.at("sample_shape")), "[3,32,32]");
  EXPECT_EQ(json::Serialize(d.at("class_names")), R"(["bolt","nut"])");
  EXPECT_EQ(json::Serialize(d.at("train").at("per_class")), "[5,5]");
  EXPECT_EQ(json::Serialize(d.at("test").at("per_class")), "[1,1]");
}

TEST_F(DatasetsApiTest, UploadListGetAndContentAddressing) {
  GeneratedSpec spec;
  spec.sample_shape = {3, 128};
  spec.dtype = "<f4";
  spec.class_names = {"idle", "running", "fault"};
  const std::string npz = edgeprune::testing::Npz(spec, true);
  auto r = Call(Verb::post, "/api/v1/datasets?name=vibration", npz);
  ASSERT_EQ(r.status, http::HttpStatus::created) << r.body;
  auto d = Body(r);
  const std::string id(d.at("id").as_string());
  EXPECT_TRUE(catalog::IsDatasetId(id)) << id;
  EXPECT_EQ(d.at("name").as_string(), "vibration");
  EXPECT_EQ(d.at("sha256").as_string(), crypto::Sha256Hex(npz));
  EXPECT_EQ(d.at("size_bytes").as_int64(), static_cast<std::int64_t>(npz.size()));
  EXPECT_EQ(d.at("format").as_string(), "npz");
  EXPECT_EQ(d.at("dtype").as_string(), "float32");
  EXPECT_EQ(json::Serialize(d.at("sample_shape")), "[3,128]");
  EXPECT_EQ(json::Serialize(d.at("class_names")), R"(["idle","running","fault"])");
  EXPECT_EQ(json::Serialize(d.at("train").at("per_class")), "[20,20,20]");
  EXPECT_EQ(d.at("test").at("count").as_int64(), 15);
  EXPECT_EQ(d.at("normalization").at("mean").as_array().size(), 3u);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'dataset.upload' AND "
                     "outcome = 'ok' AND target = '" + id + "'"),
            1);

  // The same bytes again: the same data set, not a second one.
  auto again = Call(Verb::post, "/api/v1/datasets?name=other-name", npz);
  ASSERT_EQ(again.status, http::HttpStatus::ok) << again.body;
  EXPECT_EQ(Body(again).at("id").as_string(), id);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 1);

  auto list = Call(Verb::get, "/api/v1/datasets", "", "viewer");
  ASSERT_EQ(list.status, http::HttpStatus::ok);
  ASSERT_EQ(Body(list).at("items").as_array().size(), 1u);
  auto got = Call(Verb::get, "/api/v1/datasets/" + id, "", "viewer");
  ASSERT_EQ(got.status, http::HttpStatus::ok);
  EXPECT_EQ(Body(got).at("sha256").as_string(), d.at("sha256").as_string());
  EXPECT_EQ(Call(Verb::get, "/api/v1/datasets/ds-0000000000000000", "", "viewer").status,
            http::HttpStatus::not_found);
  // Viewers read, only operators write.
  EXPECT_EQ(Call(Verb::post, "/api/v1/datasets?name=x", npz, "viewer").status,
            http::HttpStatus::forbidden);
  EXPECT_EQ(Call(Verb::delete_, "/api/v1/datasets/" + id, "", "viewer").status,
            http::HttpStatus::forbidden);
}

TEST_F(DatasetsApiTest, EveryMalformedUploadAnswersItsCodeAndStoresNothing) {
  GeneratedSpec few;
  few.train_per_class = 2;
  auto count_mismatch = edgeprune::testing::NpzMembers(GeneratedSpec{});
  count_mismatch[1].data = edgeprune::testing::Npy("<i8", {59}, std::string(59 * 8, '\0'));
  auto out_of_range = edgeprune::testing::NpzMembers(GeneratedSpec{});
  out_of_range[3].data = edgeprune::testing::Npy("<i8", {15}, std::string(15 * 8, '\x07'));
  GeneratedSpec floats;
  floats.dtype = "<f4";
  floats.sample_shape = {20};
  auto nan = edgeprune::testing::NpzMembers(floats);
  std::memset(nan[0].data.data() + nan[0].data.size() - 4, 0xFF, 4);  // a NaN
  auto shapes = edgeprune::testing::NpzMembers(GeneratedSpec{});
  shapes[2].data = edgeprune::testing::Npy("|u1", {15, 1, 4, 4}, std::string(15 * 16, 'x'));
  auto bomb = edgeprune::testing::NpzMembers(GeneratedSpec{});
  bomb[0] = {"x_train.npy", edgeprune::testing::Npy("|u1", {60, 1, 512, 512},
                                                    std::string(60 * 262144, '\0')), true};
  GeneratedSpec grey;  // [N, 8, 8] with layout 'HW'
  grey.sample_shape = {8, 8};
  grey.layout = "HW";
  auto layout_rank = edgeprune::testing::NpzMembers(grey);
  layout_rank.back().data = edgeprune::testing::NpyString("CHW");
  auto layout_unknown = edgeprune::testing::NpzMembers(grey);
  layout_unknown.back().data = edgeprune::testing::NpyString("grey");
  auto layout_number = edgeprune::testing::NpzMembers(grey);
  layout_number.back().data = edgeprune::testing::Npy("<i4", {}, std::string(4, '\0'));
  const std::string good = edgeprune::testing::Npz(GeneratedSpec{});
  struct Case {
    const char* what;
    std::string body;
    const char* code;
    http::HttpStatus status;
  };
  const Case cases[] = {
      {"not an archive", "hello, these are not samples", "dataset_invalid", http::HttpStatus::bad_request},
      {"truncated", good.substr(0, good.size() - 100), "dataset_invalid", http::HttpStatus::bad_request},
      {"counts", edgeprune::testing::Zip(count_mismatch), "dataset_count_mismatch", http::HttpStatus::bad_request},
      {"labels", edgeprune::testing::Zip(out_of_range), "dataset_label_out_of_range", http::HttpStatus::bad_request},
      {"nan", edgeprune::testing::Zip(nan), "dataset_not_finite", http::HttpStatus::bad_request},
      {"shapes", edgeprune::testing::Zip(shapes), "dataset_shape_mismatch", http::HttpStatus::bad_request},
      {"few", edgeprune::testing::Npz(few), "dataset_too_few_samples", http::HttpStatus::bad_request},
      {"bomb", edgeprune::testing::Zip(bomb), "dataset_too_large", http::HttpStatus::bad_request},
      {"layout vs rank", edgeprune::testing::Zip(layout_rank), "dataset_shape_mismatch", http::HttpStatus::bad_request},
      {"layout unknown", edgeprune::testing::Zip(layout_unknown), "dataset_invalid", http::HttpStatus::bad_request},
      {"layout not a string", edgeprune::testing::Zip(layout_number), "dataset_invalid", http::HttpStatus::bad_request},
      {"over the cap", std::string(2000001, 'x'), "dataset_too_large", http::HttpStatus::payload_too_large},
      {"empty", "", "empty_body", http::HttpStatus::bad_request},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = Call(Verb::post, "/api/v1/datasets?name=bad", c.body);
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_EQ(Code(r), c.code) << r.body;
  }
  EXPECT_EQ(Code(Call(Verb::post, "/api/v1/datasets", good)), "missing_parameter");
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 0);
  EXPECT_EQ(Blobs(), 0u);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'dataset.upload' AND "
                     "outcome = 'failed'"),
            static_cast<std::int64_t>(std::size(cases)) + 1);
  std::error_code ec;
  std::size_t leftovers = 0;
  for (auto& e : std::filesystem::directory_iterator(t_.dir().File("data/uploads"), ec)) {
    (void)e;
    ++leftovers;
  }
  EXPECT_EQ(leftovers, 0u);
}

// Grey images saved as [N, 28, 28] with layout='HW' are a one-channel image data set: its
// sample_shape and statistics say so, and a LeNet-5 master for [1, 28, 28] uploads against it.
TEST_F(DatasetsApiTest, GreyImagesDeclaredHWAreOneChannelImages) {
  GeneratedSpec spec;
  spec.sample_shape = {28, 28};
  spec.classes = 10;
  spec.train_per_class = 5;
  spec.test_per_class = 1;
  spec.layout = "HW";
  auto r = Call(Verb::post, "/api/v1/datasets?name=digits", edgeprune::testing::Npz(spec, true));
  ASSERT_EQ(r.status, http::HttpStatus::created) << r.body;
  auto d = Body(r);
  EXPECT_EQ(json::Serialize(d.at("sample_shape")), "[1,28,28]");
  EXPECT_EQ(d.at("normalization").at("mean").as_array().size(), 1u);
  EXPECT_EQ(d.at("normalization").at("std").as_array().size(), 1u);
  const std::string model = Upload("../models/lenet5_scripted.pt",
                                   "name=lenet&dataset=" + std::string(d.at("id").as_string()));
  ASSERT_FALSE(model.empty());
  auto m = Body(Call(Verb::get, "/api/v1/models/" + model, "", "viewer"));
  EXPECT_EQ(json::Serialize(m.at("input_shape")), "[1,1,28,28]");
}

TEST_F(DatasetsApiTest, DeleteIsRefusedWhileAModelUsesTheDataSet) {
  auto r = Call(Verb::post, "/api/v1/datasets?name=shapes", edgeprune::testing::Npz(GeneratedSpec{}));
  ASSERT_EQ(r.status, http::HttpStatus::created) << r.body;
  const std::string id(Body(r).at("id").as_string());
  ASSERT_EQ(Blobs(), 1u);
  const catalog::ModelRecord m = t_.AddModel();
  {
    auto lease = t_.db()->Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease)->Execute("use", "UPDATE models SET dataset = ? WHERE id = ?", id, m.id).ok());
  }
  auto refused = Call(Verb::delete_, "/api/v1/datasets/" + id);
  EXPECT_EQ(refused.status, http::HttpStatus::conflict) << refused.body;
  EXPECT_EQ(Code(refused), "dataset_in_use");
  EXPECT_NE(refused.body.find(m.id), std::string::npos);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 1);
  {
    auto lease = t_.db()->Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease)->Execute("free", "UPDATE models SET dataset = 'fashion-mnist'").ok());
  }
  auto deleted = Call(Verb::delete_, "/api/v1/datasets/" + id);
  EXPECT_EQ(deleted.status, http::HttpStatus::ok) << deleted.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM datasets"), 0);
  EXPECT_EQ(Blobs(), 0u);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'dataset.delete' AND "
                     "target = '" + id + "'"),
            1);
  EXPECT_EQ(Call(Verb::delete_, "/api/v1/datasets/" + id).status, http::HttpStatus::not_found);
}

}  // namespace
}  // namespace edgeprune::api

namespace edgeprune::api {
namespace {

// A master names a data set by id: its input shape and class names come from the data set, and
// its output must have one score per class.
TEST_F(DatasetsApiTest, AModelTakesItsShapeAndClassesFromItsDataSet) {
  GeneratedSpec spec;
  spec.sample_shape = {1, 28, 28};
  spec.classes = 10;
  spec.train_per_class = 5;
  spec.test_per_class = 1;
  spec.class_names = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
  auto r = Call(Verb::post, "/api/v1/datasets?name=digits", edgeprune::testing::Npz(spec, true));
  ASSERT_EQ(r.status, http::HttpStatus::created) << r.body;
  const std::string id(Body(r).at("id").as_string());

  const std::string model = Upload("../models/lenet5_scripted.pt", "name=lenet&dataset=" + id);
  ASSERT_FALSE(model.empty());
  auto m = Body(Call(Verb::get, "/api/v1/models/" + model, "", "viewer"));
  EXPECT_EQ(m.at("dataset").as_string(), id);
  EXPECT_EQ(json::Serialize(m.at("input_shape")), "[1,1,28,28]");
  EXPECT_EQ(json::Serialize(m.at("class_names")), json::Serialize(Body(r).at("class_names")));
  // Now the data set is in use.
  EXPECT_EQ(Call(Verb::delete_, "/api/v1/datasets/" + id).status, http::HttpStatus::conflict);

  auto bytes = fs::ReadFile(Fixture("../models/lenet5_scripted.pt"));
  ASSERT_TRUE(bytes.ok());
  // A shape or class list that contradicts the data set, an unknown data set.
  EXPECT_EQ(Code(Call(Verb::post, "/api/v1/models?name=x&dataset=" + id + "&input_shape=3,28,28", *bytes)),
            "invalid_input_shape");
  EXPECT_EQ(Code(Call(Verb::post, "/api/v1/models?name=x&dataset=" + id + "&class_names=a,b", *bytes)),
            "invalid_parameter");
  EXPECT_EQ(Code(Call(Verb::post, "/api/v1/models?name=x&dataset=ds-0123456789abcdef", *bytes)),
            "invalid_dataset");
  // Ten outputs against a three-class data set: the model check refuses it.
  GeneratedSpec three = spec;
  three.classes = 3;
  three.class_names = {"a", "b", "c"};
  auto small = Call(Verb::post, "/api/v1/datasets?name=three", edgeprune::testing::Npz(three));
  ASSERT_EQ(small.status, http::HttpStatus::created) << small.body;
  auto refused = Call(Verb::post, "/api/v1/models?name=x&dataset=" +
                                      std::string(Body(small).at("id").as_string()),
                      *bytes);
  EXPECT_EQ(refused.status, http::HttpStatus::bad_request) << refused.body;
  EXPECT_EQ(Code(refused), "invalid_model") << refused.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM models"), 1);
}

}  // namespace
}  // namespace edgeprune::api

namespace edgeprune::api {
namespace {

class DatasetBuildTest : public DatasetsApiTest {
 protected:
  std::vector<std::string> Settings() const override {
    // A short build; the floor is off: the master was trained on other data, and this test is
    // about where the build's data comes from, not about how much accuracy it keeps.
    return {"variants.finetune_steps=20", "variants.step_finetune_steps=5",
            "variants.train_limit=600", "variants.test_limit=200",
            "variants.max_accuracy_drop=100"};
  }
};

// Deploying a master that names an operator's data set: the sandboxed worker reads the stored
// file (read-only), fine-tunes and evaluates on it, and the variant is built, signed and ready.
TEST_F(DatasetBuildTest, AVariantIsBuiltOnTheModelsOwnDataSet) {
  GeneratedSpec spec;
  spec.sample_shape = {1, 28, 28};
  spec.classes = 10;
  spec.train_per_class = 30;
  spec.test_per_class = 10;
  auto d = Call(Verb::post, "/api/v1/datasets?name=digits", edgeprune::testing::Npz(spec, true));
  ASSERT_EQ(d.status, http::HttpStatus::created) << d.body;
  const std::string id(Body(d).at("id").as_string());
  const std::string model = Upload("mlp_scripted.pt", "name=mlp&dataset=" + id);
  ASSERT_FALSE(model.empty());
  const auto master = Body(Call(Verb::get, "/api/v1/models/" + model));
  Budget half;
  half.max_macs = master.at("macs").as_int64() / 2;
  t_.AddDevice("dev-a", "[\"lab\"]", half);
  auto dep = Call(Verb::post, "/api/v1/deployments",
                  R"({"model": ")" + model + R"(", "selector": {"tags": ["lab"]}})");
  ASSERT_EQ(dep.status, http::HttpStatus::created) << dep.body;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  bj::object variant;
  while (std::chrono::steady_clock::now() < deadline) {
    auto vs = Body(Call(Verb::get, "/api/v1/models/" + model + "/variants", "", "viewer"));
    variant = vs.at("items").as_array()[0].as_object();
    if (variant.at("status").as_string() != "building") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(variant.at("status").as_string(), "ready") << json::Serialize(variant);
  EXPECT_LE(variant.at("macs").as_int64(), *half.max_macs);
  // Evaluated on the data set's 100 test samples: a multiple of 1%.
  const double accuracy = variant.at("accuracy").to_number<double>();
  EXPECT_GE(accuracy, 0.0);
  // The build marks its variant ready before its job is finished: wait for the job as well.
  bj::array jobs;
  EXPECT_TRUE(edgeprune::testing::WaitUntil(
      [&] {
        jobs = Body(Call(Verb::get, "/api/v1/jobs", "", "viewer")).at("items").as_array();
        return jobs.size() == 1 && jobs[0].as_object().at("state").as_string() == "succeeded";
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100)))
      << json::Serialize(jobs);
  // The data set is in use now.
  EXPECT_EQ(Call(Verb::delete_, "/api/v1/datasets/" + id).status, http::HttpStatus::conflict);

  // The variant ships its probe set: the data set's 100 test samples (fewer than
  // variants.probe_samples), named by digest, size and count in the signed manifest.
  const std::string variant_id(variant.at("id").as_string());
  auto m = Call(Verb::get, "/agent/v1/variants/" + variant_id + "/manifest", "", "", "dev-a");
  ASSERT_EQ(m.status, http::HttpStatus::ok) << m.body;
  auto manifest = wire::ParseManifest(m.body);
  ASSERT_TRUE(manifest.ok()) << manifest.error().ToString();
  ASSERT_TRUE(manifest->probe.has_value());
  EXPECT_EQ(manifest->probe->samples, 100);
  auto probe = Call(Verb::get, "/agent/v1/variants/" + variant_id + "/probe", "", "", "dev-a");
  EXPECT_EQ(probe.status, http::HttpStatus::ok);
  EXPECT_TRUE(probe.file);
  auto bytes = module_->services()->blobs->Get(manifest->probe->sha256);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  EXPECT_EQ(static_cast<std::int64_t>(bytes->size()), manifest->probe->size_bytes);
  auto parsed = wire::ParseProbeFile(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->sample_shape, (std::vector<std::int64_t>{1, 28, 28}));
  ASSERT_EQ(parsed->labels.size(), 100u);
  for (std::size_t i = 0; i < parsed->labels.size(); ++i) {
    EXPECT_EQ(parsed->labels[i], static_cast<std::int64_t>(i % 10)) << i;
  }
}

}  // namespace
}  // namespace edgeprune::api
