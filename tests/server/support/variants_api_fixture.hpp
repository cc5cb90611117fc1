#pragma once
// The variants module behind the real Router on a migrated SQLite database, for the variants_*
// tests: Call() sends a request as an operator ("op"), a viewer ("viewer") or a device (its
// verified certificate's CN); Settings() is the module's configuration.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/registry.h>

#include "support/build_paths.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"
#include "server/app/variants_module.hpp"
#include "variants_fixture.hpp"

namespace edgeprune::api {

namespace bj = boost::json;
using http::Verb;

// Bearer "op" is an operator, "viewer" a viewer; a verified certificate's CN is the device id.
class FixtureAuthenticator : public http::Authenticator {
 public:
  Result<http::Principal> AuthenticateBearer(std::string_view token) override {
    if (token == "op") return http::Principal{http::Principal::Kind::kUser, "op", http::Role::kOperator};
    if (token == "viewer") {
      return http::Principal{http::Principal::Kind::kUser, "viewer", http::Role::kViewer};
    }
    return MakeError(ErrorKind::kUnauthenticated, "unauthenticated", "unknown token");
  }
  Result<http::Principal> AuthenticateDevice(const tls::PeerCertificate& cert) override {
    return http::Principal{http::Principal::Kind::kDevice, cert.subject_cn, http::Role::kViewer};
  }
};

inline std::string Fixture(const std::string& name) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/pruning/" + name;
}

class VariantsApiTest : public ::testing::Test {
 protected:
  // --set style overrides of the variants module's configuration.
  virtual std::vector<std::string> Settings() const {
    return {"variants.finetune_steps=20", "variants.train_limit=600", "variants.test_limit=200",
            "variants.max_model_bytes=1000000", "closed_loop.breach_reports=2"};
  }

  void SetUp() override {
    ConfigSchema schema;
    server::AddVariantsConfig(schema);
    // Model work runs in the real server binary (this test binary is not one).
    auto settings = Settings();
    settings.push_back(std::string("model_worker.executable=") + edgeprune::testing::ServerBin());
    auto config = Config::Load(schema, "", settings, "");
    ASSERT_TRUE(config.ok()) << config.error().ToString();
    auto module = server::VariantsModule::Start(*config, t_.db(), registry_, t_.dir().Subdir("data"));
    ASSERT_TRUE(module.ok()) << module.error().ToString();
    module_ = std::move(module).value();
    router_ = std::make_shared<http::Router>(std::make_shared<FixtureAuthenticator>());
    for (auto& r : module_->Routes()) ASSERT_TRUE(router_->Add(std::move(r)).ok());
  }
  void TearDown() override {
    if (module_) module_->Stop();
  }

  http::Response Call(Verb verb, const std::string& target, std::string body = "",
                      const std::string& token = "op", const std::string& device = "",
                      std::map<std::string, std::string> headers = {}) {
    http::RequestContext ctx;
    ctx.method = verb;
    ctx.target = target;
    const auto q = target.find('?');
    ctx.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string query = target.substr(q + 1);
      std::size_t pos = 0;
      while (pos <= query.size()) {
        auto amp = query.find('&', pos);
        std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = kv.find('=');
        if (eq != std::string::npos) ctx.query_params[kv.substr(0, eq)] = kv.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    ctx.headers = std::move(headers);
    if (!device.empty()) {
      tls::PeerCertificate cert;
      cert.subject_cn = device;
      cert.verified = true;
      ctx.peer_certificate = cert;
    } else if (!token.empty()) {
      ctx.headers["authorization"] = "Bearer " + token;
    }
    ctx.body = std::move(body);
    return router_->Handle(ctx).response;
  }

  // What GET /metrics answers: the registry, then the per-device series kept outside it.
  std::string Exposition() const {
    auto route = http::MetricsRoute(
        registry_, http::Auth::kPublic,
        {[m = module_->services()->metrics](std::string& out) { m->AppendExposition(out); }});
    auto r = route.handler(http::RequestContext{});
    return r.ok() ? r->body : r.error().ToString();
  }

  static bj::object Body(const http::Response& r) {
    auto o = json::ParseObject(r.body);
    EXPECT_TRUE(o.ok()) << r.body;
    return o.ok() ? *o : bj::object{};
  }

  std::string Upload(const std::string& fixture, const std::string& query) {
    return UploadFile(Fixture(fixture), query);
  }

  std::string UploadFile(const std::string& path, const std::string& query) {
    auto bytes = fs::ReadFile(path);
    EXPECT_TRUE(bytes.ok());
    auto r = Call(Verb::post, "/api/v1/models?" + query, *bytes);
    EXPECT_EQ(r.status, http::HttpStatus::created) << r.body;
    return r.status == http::HttpStatus::created ? std::string(Body(r).at("id").as_string()) : "";
  }

  // Makes variant_id a (building) variant of a new model and assigns that model to the device:
  // only such variants get per-device metric series.
  void AssignVariant(const std::string& device, const std::string& variant_id) {
    const catalog::ModelRecord m = t_.AddModel();
    auto lease = t_.db()->Acquire();
    ASSERT_TRUE(lease.ok());
    static int version = 1000;
    const std::string v = std::to_string(++version);
    const std::string dep = "dep-" + variant_id;
    for (auto [name, sql] : std::vector<std::pair<const char*, std::string>>{
             {"v", "INSERT INTO variants (id, model_id, bucket, version, status, budget, created_at) "
                   "VALUES ('" + variant_id + "', '" + m.id + "', 'L" + v + "', " + v +
                       ", 'building', '{}', 0)"},
             {"d", "INSERT INTO deployments (id, model_id, selector, created_at, created_by) "
                   "VALUES ('" + dep + "', '" + m.id + "', '{}', 0, 'test')"},
             {"a", "INSERT INTO device_assignments (device_id, deployment_id, model_id, bucket, "
                   "assigned_at) VALUES ('" + device + "', '" + dep + "', '" + m.id + "', 'L0', 0)"}}) {
      auto r = (*lease)->Execute(name, sql);
      ASSERT_TRUE(r.ok()) << r.error().ToString();
    }
  }

  testing::VariantsDb t_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<server::VariantsModule> module_;
  std::shared_ptr<http::Router> router_;
};

}  // namespace edgeprune::api
