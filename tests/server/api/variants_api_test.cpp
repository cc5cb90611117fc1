// The variants routes through the real Router: upload validation with real LibTorch, deployment,
// a real build job (prune + fine-tune on a small synthetic set) run by the real worker pool,
// signed manifest and ranged payload delivery, device events and telemetry ingest.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "server/support/variants_api_fixture.hpp"

namespace edgeprune::api {
namespace {

TEST_F(VariantsApiTest, UploadValidatesTheModelAndStoresNothingWhenBad) {
  const std::string id =
      Upload("resnet_scripted.pt", "name=res&dataset=synthetic:1x28x28:10&input_shape=1,28,28");
  ASSERT_FALSE(id.empty());
  auto got = Body(Call(Verb::get, "/api/v1/models/" + id, "", "viewer"));
  EXPECT_EQ(got.at("num_classes").as_int64(), 10);
  EXPECT_GT(got.at("macs").as_int64(), 0);
  EXPECT_EQ(got.at("input_shape").as_array().size(), 4u);

  const auto blobs_before = t_.Count("SELECT COUNT(*) FROM models");
  auto not_ts = Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=1,28,28",
                     "this is not a TorchScript archive");
  EXPECT_EQ(not_ts.status, http::HttpStatus::bad_request) << not_ts.body;
  EXPECT_EQ(Body(not_ts).at("error").as_object().at("code").as_string(), "invalid_model");

  auto bytes = fs::ReadFile(Fixture("resnet_scripted.pt"));
  auto wrong_shape = Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=3,28,28", *bytes);
  EXPECT_EQ(wrong_shape.status, http::HttpStatus::bad_request) << wrong_shape.body;
  auto bad_shape = Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=1,a,28", *bytes);
  EXPECT_EQ(bad_shape.status, http::HttpStatus::bad_request);
  auto wrong_classes =
      Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=1,28,28&class_names=a,b", *bytes);
  EXPECT_EQ(wrong_classes.status, http::HttpStatus::bad_request) << wrong_classes.body;
  auto too_big = Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=1,28,28",
                      std::string(1'000'001, 'x'));
  EXPECT_EQ(too_big.status, http::HttpStatus::payload_too_large);
  auto missing = Call(Verb::post, "/api/v1/models?dataset=fashion-mnist&input_shape=1,28,28", *bytes);
  EXPECT_EQ(missing.status, http::HttpStatus::bad_request);
  auto viewer = Call(Verb::post, "/api/v1/models?name=x&dataset=fashion-mnist&input_shape=1,28,28", *bytes,
                     "viewer");
  EXPECT_EQ(viewer.status, http::HttpStatus::forbidden);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM models"), blobs_before);
  auto list = Body(Call(Verb::get, "/api/v1/models", "", "viewer"));
  EXPECT_EQ(list.at("items").as_array().size(), 1u);
  // Only the valid upload reached the blob store (and no temp file is left behind).
  std::size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(t_.dir().path() + "/data/blobs")) {
    if (e.is_regular_file()) ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_TRUE(std::filesystem::is_empty(t_.dir().path() + "/data/uploads"));
}

// Issue 13 items 6 and 9: each bad parameter is refused with a code naming it, nothing stored.
TEST_F(VariantsApiTest, UploadRefusesOverflowingShapesAndUnknownDatasets) {
  auto bytes = fs::ReadFile(Fixture("resnet_scripted.pt"));
  ASSERT_TRUE(bytes.ok());
  const auto models_before = t_.Count("SELECT COUNT(*) FROM models");
  auto code = [](const http::Response& r) {
    return std::string(Body(r).at("error").as_object().at("code").as_string());
  };
  // 16384 * 8192 overflowed the running product check and counted as 0 elements.
  for (const char* shape : {"16384,8192,1", "1,65536,65536,65536", "65536x65536x65536"}) {
    auto r = Call(Verb::post,
                  std::string("/api/v1/models?name=x&dataset=fashion-mnist&input_shape=") + shape,
                  *bytes);
    EXPECT_EQ(r.status, http::HttpStatus::bad_request) << shape << ": " << r.body;
    EXPECT_EQ(code(r), "invalid_input_shape") << shape;
  }
  for (const char* shape : {"1,+28,28", "1, 28,28", "1,28,28,", "1,2e1,28"}) {
    auto r = Call(Verb::post,
                  std::string("/api/v1/models?name=x&dataset=fashion-mnist&input_shape=") + shape,
                  *bytes);
    EXPECT_EQ(code(r), "invalid_input_shape") << shape << ": " << r.body;
  }
  for (const char* dataset : {"../../etc", "fashion-mnist/../x", "synthetic:1x28x28",
                              "synthetic:0x28x28:10", "synthetic:1x28x28:10/..", "FASHION-MNIST"}) {
    auto r = Call(Verb::post,
                  std::string("/api/v1/models?name=x&input_shape=1,28,28&dataset=") + dataset,
                  *bytes);
    EXPECT_EQ(r.status, http::HttpStatus::bad_request) << dataset;
    EXPECT_EQ(code(r), "invalid_dataset") << dataset << ": " << r.body;
  }
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM models"), models_before);
  EXPECT_EQ(wire::ElementCount({1, 16384, 8192, 1}), wire::kElementCountSaturated);
  EXPECT_EQ(wire::ElementCount({1, 28, 28}), 784);
}

TEST_F(VariantsApiTest, TelemetryLimitIsAStrictInteger) {
  for (const char* limit : {"1e3", "10abc", "+5", "0", "1001"}) {
    auto r = Call(Verb::get, std::string("/api/v1/devices/dev-x/telemetry?limit=") + limit, "",
                  "viewer");
    EXPECT_EQ(r.status, http::HttpStatus::bad_request) << limit;
    EXPECT_EQ(Body(r).at("error").as_object().at("code").as_string(), "invalid_parameter") << limit;
  }
}

TEST_F(VariantsApiTest, DeployBuildsSignsAndDeliversAVariant) {
  const std::string model =
      Upload("mlp_scripted.pt", "name=mlp&dataset=synthetic:1x28x28:10&input_shape=1,28,28");
  ASSERT_FALSE(model.empty());
  const auto master = Body(Call(Verb::get, "/api/v1/models/" + model));
  Budget half;
  half.max_macs = master.at("macs").as_int64() / 2;
  t_.AddDevice("dev-a", "[\"lab\"]", half);
  t_.AddDevice("dev-b", "[]", half);

  auto bad = Call(Verb::post, "/api/v1/deployments", R"({"model": ")" + model + R"(", "selector": {}})");
  EXPECT_EQ(bad.status, http::HttpStatus::bad_request);
  auto dep = Call(Verb::post, "/api/v1/deployments",
                  R"({"model": ")" + model + R"(", "selector": {"tags": ["lab"]}})");
  ASSERT_EQ(dep.status, http::HttpStatus::created) << dep.body;
  auto builds = Body(dep).at("builds").as_array();
  ASSERT_EQ(builds.size(), 1u);
  const std::string variant(builds[0].as_string());

  // The job runs on the worker pool; poll its state with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  std::string status;
  while (std::chrono::steady_clock::now() < deadline) {
    auto vs = Body(Call(Verb::get, "/api/v1/models/" + model + "/variants", "", "viewer"));
    status = std::string(vs.at("items").as_array()[0].as_object().at("status").as_string());
    if (status != "building") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(status, "ready");
  // The variant is ready when its row is written; the job's own row is finished just after.
  auto jobs = Body(Call(Verb::get, "/api/v1/jobs", "", "viewer")).at("items").as_array();
  while (std::chrono::steady_clock::now() < deadline && jobs.size() == 1u &&
         jobs[0].as_object().at("state").as_string() == "running") {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    jobs = Body(Call(Verb::get, "/api/v1/jobs", "", "viewer")).at("items").as_array();
  }
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].as_object().at("state").as_string(), "succeeded");

  // The manifest verifies with the server key over the exact bytes, and names the payload.
  auto m = Call(Verb::get, "/agent/v1/variants/" + variant + "/manifest", "", "", "dev-a");
  ASSERT_EQ(m.status, http::HttpStatus::ok) << m.body;
  std::string sig_b64;
  for (const auto& [k, v] : m.headers) {
    if (k == "X-Signature") sig_b64 = v;
  }
  auto sig = crypto::Base64Decode(sig_b64);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(module_->services()->keyring->Verify(m.body, *sig).ok());
  // The signature travels only in the manifest's X-Signature header: no agent fetched it alone.
  auto raw_sig = Call(Verb::get, "/agent/v1/variants/" + variant + "/signature", "", "", "dev-a");
  EXPECT_EQ(raw_sig.status, http::HttpStatus::not_found);
  auto manifest = wire::ParseManifest(m.body);
  ASSERT_TRUE(manifest.ok()) << manifest.error().ToString();
  EXPECT_EQ(manifest->variant_id, variant);
  EXPECT_EQ(manifest->model_id, model);
  EXPECT_EQ(manifest->key_id, module_->services()->keyring->key_id());
  EXPECT_LE(manifest->metrics.macs, *half.max_macs);
  EXPECT_FALSE(manifest->rollback);
  auto blob = module_->services()->blobs->Get(manifest->payload.sha256);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(static_cast<std::int64_t>(blob->size()), manifest->payload.size_bytes);

  // The payload honours Range so a cut download resumes.
  auto whole = Call(Verb::get, "/agent/v1/variants/" + variant + "/payload", "", "", "dev-a");
  EXPECT_EQ(whole.status, http::HttpStatus::ok);
  auto part = Call(Verb::get, "/agent/v1/variants/" + variant + "/payload", "", "", "dev-a",
                   {{"range", "bytes=100-"}});
  EXPECT_EQ(part.status, http::HttpStatus::partial_content);
  ASSERT_TRUE(part.file);
  EXPECT_EQ(part.file->window_offset(), 100u);

  // A built-in data set's variant ships no probe set (its agents use their local one).
  EXPECT_FALSE(manifest->probe.has_value());
  auto no_probe = Call(Verb::get, "/agent/v1/variants/" + variant + "/probe", "", "", "dev-a");
  EXPECT_EQ(no_probe.status, http::HttpStatus::not_found);
  EXPECT_NE(no_probe.body.find("probe_not_found"), std::string::npos) << no_probe.body;

  // A device with no assignment of this model may not fetch it.
  auto other = Call(Verb::get, "/agent/v1/variants/" + variant + "/payload", "", "", "dev-b");
  EXPECT_EQ(other.status, http::HttpStatus::forbidden);

  // Refusals are recorded with their reason.
  auto ev = Call(Verb::post, "/agent/v1/variants/" + variant + "/events",
                 R"({"event": "refused", "reason": "payload_hash_mismatch"})", "", "dev-a");
  EXPECT_EQ(ev.status, http::HttpStatus::ok) << ev.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM variant_events WHERE reason = 'payload_hash_mismatch'"),
            1);
  auto bad_ev = Call(Verb::post, "/agent/v1/variants/" + variant + "/events",
                     R"({"event": "exploded"})", "", "dev-a");
  EXPECT_EQ(bad_ev.status, http::HttpStatus::bad_request);
}

TEST_F(VariantsApiTest, TelemetryIsAckedAfterCommitAndDeduplicated) {
  t_.AddDevice("dev-a", "[]", Budget{});
  AssignVariant("dev-a", "var-x");
  wire::TelemetryBatch batch;
  for (int i = 1; i <= 3; ++i) {
    wire::TelemetryReport r;
    r.seq = i;
    r.timestamp_ms = 1000 + i;
    r.variant_id = "var-x";
    r.probe_accuracy = 0.9;
    batch.reports.push_back(r);
  }
  const std::string body = json::Serialize(wire::ToJson(batch));
  for (int round = 0; round < 2; ++round) {
    auto r = Call(Verb::post, "/agent/v1/telemetry", body, "", "dev-a");
    ASSERT_EQ(r.status, http::HttpStatus::ok) << r.body;
    EXPECT_EQ(Body(r).at("acked_seq").as_int64(), 3);
  }
  auto shown = Body(Call(Verb::get, "/api/v1/devices/dev-a/telemetry", "", "viewer"));
  EXPECT_EQ(shown.at("total_reports").as_int64(), 3);
  EXPECT_EQ(shown.at("items").as_array().size(), 3u);
  EXPECT_TRUE(shown.at("next_cursor").is_null());
  // Pages of two: the newest two, then the oldest one behind the cursor, then nothing more.
  auto first = Body(Call(Verb::get, "/api/v1/devices/dev-a/telemetry?limit=2", "", "viewer"));
  ASSERT_EQ(first.at("items").as_array().size(), 2u);
  EXPECT_EQ(first.at("items").as_array().at(0).as_object().at("seq").as_int64(), 3);
  const std::string cursor(first.at("next_cursor").as_string());
  auto second = Body(Call(Verb::get, "/api/v1/devices/dev-a/telemetry?limit=2&cursor=" + cursor,
                          "", "viewer"));
  ASSERT_EQ(second.at("items").as_array().size(), 1u);
  EXPECT_EQ(second.at("items").as_array().at(0).as_object().at("seq").as_int64(), 1);
  EXPECT_TRUE(second.at("next_cursor").is_null());
  for (const char* bad : {"abc", "0", "-1", "2x"}) {
    auto refused = Call(Verb::get, std::string("/api/v1/devices/dev-a/telemetry?cursor=") + bad,
                        "", "viewer");
    EXPECT_EQ(refused.status, http::HttpStatus::bad_request) << bad;
  }
  std::string exposition = Exposition();
  EXPECT_NE(exposition.find("edgeprune_device_accuracy{device=\"dev-a\",source=\"probe\",variant=\"var-x\"} 0.9"),
            std::string::npos)
      << exposition;

  auto garbage = Call(Verb::post, "/agent/v1/telemetry", "{\"reports\": 5}", "", "dev-a");
  EXPECT_EQ(garbage.status, http::HttpStatus::bad_request);
  auto operator_cannot = Call(Verb::post, "/agent/v1/telemetry", body);
  EXPECT_NE(operator_cannot.status, http::HttpStatus::ok);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM telemetry"), 3);
}

// Issue 13 item 4: job cancels are audited, the refused ones too.
TEST_F(VariantsApiTest, JobCancelsAreAudited) {
  // A job of a kind no worker claims stays queued until cancelled.
  auto job = module_->services()->queue->Enqueue("audit_test_idle", bj::object{});
  ASSERT_TRUE(job.ok()) << job.error().ToString();
  const auto audit_for = [&](const std::string& outcome) {
    return t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'job.cancel' AND target = '" +
                    job->id + "' AND actor = 'token:op' AND outcome = '" + outcome + "'");
  };
  auto cancelled = Call(Verb::delete_, "/api/v1/jobs/" + job->id);
  EXPECT_EQ(cancelled.status, http::HttpStatus::ok) << cancelled.body;
  EXPECT_EQ(audit_for("ok"), 1);
  auto again = Call(Verb::delete_, "/api/v1/jobs/" + job->id);
  EXPECT_EQ(again.status, http::HttpStatus::conflict) << again.body;
  EXPECT_EQ(audit_for("failed"), 1);
  EXPECT_EQ(audit_for("ok"), 1) << "the refused cancel changed nothing";
}

// Issue 13 item 2: fresh variant ids from a device make no series; the cap bounds the rest.
TEST_F(VariantsApiTest, TelemetrySeriesOnlyForAssignedVariantsAndUpToTheCap) {
  t_.AddDevice("dev-a", "[]", Budget{});
  t_.AddDevice("dev-b", "[]", Budget{});
  AssignVariant("dev-a", "var-real");
  AssignVariant("dev-b", "var-b");
  wire::TelemetryBatch batch;
  for (int i = 1; i <= 500; ++i) {
    wire::TelemetryReport r;
    r.seq = i;
    r.timestamp_ms = 1000 + i;
    r.variant_id = i == 500 ? "var-real" : "var-fresh-" + std::to_string(i);
    r.probe_accuracy = 0.5;
    batch.reports.push_back(r);
  }
  auto r = Call(Verb::post, "/agent/v1/telemetry", json::Serialize(wire::ToJson(batch)), "", "dev-a");
  ASSERT_EQ(r.status, http::HttpStatus::ok) << r.body;
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM telemetry WHERE device_id = 'dev-a'"), 500)
      << "every report is stored; only series are bounded";
  std::string exposition = Exposition();
  EXPECT_EQ(exposition.find("var-fresh-"), std::string::npos);
  EXPECT_NE(exposition.find("variant=\"var-real\""), std::string::npos);
  EXPECT_NE(exposition.find("edgeprune_metrics_reports_dropped_total{reason=\"unknown_variant\"} 499"),
            std::string::npos)
      << exposition;
  EXPECT_EQ(module_->services()->metrics->pairs(), 1u);

  // With the cap reached, a second device's (valid) variant is counted, not given series.
  module_->services()->metrics->SetSeriesCap(1);
  wire::TelemetryBatch other;
  wire::TelemetryReport one;
  one.seq = 1;
  one.timestamp_ms = 5;
  one.variant_id = "var-b";
  one.probe_accuracy = 0.7;
  other.reports.push_back(one);
  r = Call(Verb::post, "/agent/v1/telemetry", json::Serialize(wire::ToJson(other)), "", "dev-b");
  ASSERT_EQ(r.status, http::HttpStatus::ok) << r.body;
  exposition = Exposition();
  EXPECT_EQ(exposition.find("variant=\"var-b\""), std::string::npos);
  EXPECT_NE(exposition.find("edgeprune_metrics_reports_dropped_total{reason=\"series_cap\"} 1"),
            std::string::npos)
      << exposition;
}

TEST_F(VariantsApiTest, UnknownJobsAndVariantsAre404) {
  EXPECT_EQ(Call(Verb::get, "/api/v1/jobs/job-nope").status, http::HttpStatus::not_found);
  EXPECT_EQ(Call(Verb::delete_, "/api/v1/jobs/job-nope").status, http::HttpStatus::not_found);
  EXPECT_EQ(Call(Verb::get, "/api/v1/models/mdl-nope").status, http::HttpStatus::not_found);
  EXPECT_EQ(Call(Verb::get, "/agent/v1/variants/var-nope/manifest", "", "", "dev-a").status,
            http::HttpStatus::not_found);
}

}  // namespace
}  // namespace edgeprune::api
