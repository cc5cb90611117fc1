// The retention task on both backends: each module prunes its own table by age and count, the
// blob collector keeps every blob a model, variant, data set or job names, and only the holder
// of the "retention" task lease runs a pass. Rows are written with the clock set back, so ages
// are real without waiting; blob file times are set back with utimensat.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/stat.h>

#include <ctime>

#include "server/app/retention_task.hpp"
#include "server/app/server_config.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::server {
namespace {

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kNow = 1'700'000'000'000 + 400 * kDay;

class RetentionTest : public testing::StoreBackendTest {
 protected:
  void SetUp() override {
    db_ = OpenDatabase();
    ASSERT_NE(db_, nullptr);
    auto blobs = store::BlobStore::Open(dir_.path());
    ASSERT_TRUE(blobs.ok());
    blobs_ = std::move(blobs).value();
    sources_ = Sources(db_);
  }

  RetentionSources Sources(const std::shared_ptr<store::Database>& db) {
    jobs::JobQueueOptions queue_options;
    queue_options.now_ms = [this] { return clock_->NowMs(); };
    auto audit = std::make_shared<fleet::AuditLog>(db, clock_);
    return RetentionSources{
        std::make_shared<telemetry::TelemetryStore>(db),
        std::make_shared<fleet::DeviceRegistry>(db, clock_, audit, nullptr, nullptr,
                                                fleet::RegistryOptions{}),
        std::make_shared<jobs::JobQueue>(*db, blobs_.get(), queue_options),
        std::make_shared<catalog::ModelRegistry>(db),
        std::make_shared<catalog::VariantRepository>(db),
        std::make_shared<catalog::DatasetCatalog>(db, blobs_, datasets::ValidationLimits{}),
        blobs_};
  }

  template <typename... Args>
  void Sql(const char* sql, const Args&... args) {
    auto lease = db_->Acquire();
    ASSERT_TRUE(lease.ok());
    auto done = (*lease)->Execute("test_setup", sql, args...);
    ASSERT_TRUE(done.ok()) << sql << ": " << done.error().ToString();
  }
  std::int64_t Count(const std::string& sql) {
    auto lease = db_->Acquire();
    EXPECT_TRUE(lease.ok());
    auto s = (*lease)->Query("test_count", sql);
    EXPECT_TRUE(s.ok());
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    return s->Int64(0);
  }
  void Device(const std::string& id) {
    Sql("INSERT INTO devices (id, enrolled_at) VALUES (?, ?)", id, kNow - 500 * kDay);
  }
  void Report(const std::string& device, std::int64_t seq, std::int64_t received_at) {
    Sql("INSERT INTO telemetry (device_id, seq, received_at, taken_at, variant_id) "
        "VALUES (?, ?, ?, ?, 'var-1')",
        device, seq, received_at, received_at);
  }
  void Profile(const std::string& device, std::int64_t received_at) {
    Sql("INSERT INTO device_profiles (device_id, received_at, profile, budget) "
        "VALUES (?, ?, '{}', '{}')",
        device, received_at);
  }
  // Makes a blob's file look written two days ago, past a one-hour grace.
  void Age(const std::string& sha) {
    const timespec when{std::time(nullptr) - 2 * 86'400, 0};
    const timespec times[2] = {when, when};
    ASSERT_EQ(::utimensat(AT_FDCWD, blobs_->PathOf(sha)->c_str(), times, 0), 0);
  }
  std::string Blob(const std::string& bytes, bool old = true) {
    auto ref = blobs_->Put(bytes);
    EXPECT_TRUE(ref.ok());
    if (old) Age(ref->sha256);
    return ref->sha256;
  }

  static double Pruned(prometheus::Registry& registry, const std::string& kind) {
    for (const auto& family : registry.Collect()) {
      if (family.name != "edgeprune_retention_pruned_total") continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "kind" && label.value == kind) return metric.counter.value;
        }
      }
    }
    ADD_FAILURE() << "no series for kind " << kind;
    return -1;
  }

  RetentionOptions Options() {
    RetentionOptions o;
    o.telemetry_days = 30;
    o.telemetry_per_device = 1000;
    o.profile_days = 180;
    o.profiles_per_device = 3;
    o.event_days = 90;
    o.job_days = 30;
    o.blob_grace = std::chrono::hours(1);
    return o;
  }

  edgeprune::testing::TempDir dir_{"edgeprune-retention"};
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kNow);
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<store::BlobStore> blobs_;
  RetentionSources sources_;
};

TEST_P(RetentionTest, EachModulePrunesItsOwnTableByAgeAndCount) {
  Device("dev-a");
  Device("dev-b");
  Device("dev-c");
  // Telemetry: dev-a sent 1,200 reports, its first 100 forty days ago; the cap of 1,000 takes
  // 100 more. dev-b's five reports are all forty days old.
  {
    auto lease = db_->Acquire();
    ASSERT_TRUE(lease.ok());
    auto tx = store::Transaction::Begin(**lease);
    ASSERT_TRUE(tx.ok());
    for (std::int64_t seq = 1; seq <= 1200; ++seq) {
      auto done = (*lease)->Execute(
          "test_report",
          "INSERT INTO telemetry (device_id, seq, received_at, taken_at, variant_id) "
          "VALUES ('dev-a', ?1, ?2, ?2, 'var-1')",
          seq, seq <= 100 ? kNow - 40 * kDay : kNow - kDay);
      ASSERT_TRUE(done.ok()) << done.error().ToString();
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  for (std::int64_t seq = 1; seq <= 5; ++seq) Report("dev-b", seq, kNow - 40 * kDay);
  // Profiles: dev-a three from 200 days ago and two recent; dev-b three old ones (its newest
  // stays); dev-c four recent ones, one over the cap of three.
  for (int i = 0; i < 3; ++i) Profile("dev-a", kNow - 200 * kDay);
  for (int i = 0; i < 2; ++i) Profile("dev-a", kNow - kDay);
  for (int i = 0; i < 3; ++i) Profile("dev-b", kNow - 200 * kDay + i);
  for (int i = 0; i < 4; ++i) Profile("dev-c", kNow - kDay + i);
  // Variant events: three from 100 days ago, two recent.
  for (int i = 0; i < 5; ++i) {
    Sql("INSERT INTO variant_events (device_id, variant_id, at, event) "
        "VALUES ('dev-a', 'var-1', ?, 'installed')",
        i < 3 ? kNow - 100 * kDay : kNow - kDay);
  }
  // Jobs: one finished forty days ago, one finished yesterday, one queued since forty days ago.
  jobs::JobQueue& queue = *sources_.jobs;
  clock_->Set(kNow - 40 * kDay);
  auto old_done = queue.Enqueue("k", {});
  auto old_queued = queue.Enqueue("other", {});
  ASSERT_TRUE(old_done.ok() && old_queued.ok());
  auto claimed = queue.Claim({"k"}, "w");
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(queue.Succeed(old_done->id, "w", {}).ok());
  clock_->Set(kNow - kDay);
  auto new_done = queue.Enqueue("k", {});
  ASSERT_TRUE(new_done.ok());
  claimed = queue.Claim({"k"}, "w");
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(queue.Succeed(new_done->id, "w", {}).ok());
  clock_->Set(kNow);

  auto registry = std::make_shared<prometheus::Registry>();
  RetentionTask task(sources_, Options(), nullptr, registry, clock_);
  auto pass = task.RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.error().ToString();
  ASSERT_TRUE(pass->has_value());
  const RetentionReport& r = **pass;
  EXPECT_EQ(r.telemetry, 205);
  EXPECT_EQ(r.profiles, 3 + 2 + 1);
  EXPECT_EQ(r.variant_events, 3);
  EXPECT_EQ(r.jobs, 1);

  EXPECT_EQ(Count("SELECT COUNT(*) FROM telemetry WHERE device_id = 'dev-a'"), 1000);
  EXPECT_EQ(Count("SELECT MIN(seq) FROM telemetry WHERE device_id = 'dev-a'"), 201);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM telemetry WHERE device_id = 'dev-b'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM device_profiles WHERE device_id = 'dev-a'"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM device_profiles WHERE device_id = 'dev-b'"), 1);
  EXPECT_EQ(Count("SELECT MAX(received_at) - MIN(received_at) FROM device_profiles "
                  "WHERE device_id = 'dev-b'"),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM device_profiles WHERE device_id = 'dev-c' "
                  "AND received_at > " +
                  std::to_string(kNow - kDay) + ""),
            3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM variant_events"), 2);
  EXPECT_FALSE(queue.Get(old_done->id).ok());
  EXPECT_TRUE(queue.Get(new_done->id).ok());
  auto still_queued = queue.Get(old_queued->id);
  ASSERT_TRUE(still_queued.ok());
  EXPECT_EQ(still_queued->state, jobs::JobState::kQueued);

  EXPECT_EQ(Pruned(*registry, "telemetry"), 205);
  EXPECT_EQ(Pruned(*registry, "profiles"), 6);
  EXPECT_EQ(Pruned(*registry, "variant_events"), 3);
  EXPECT_EQ(Pruned(*registry, "jobs"), 1);
  EXPECT_EQ(Pruned(*registry, "blobs"), 0);

  // A second pass finds nothing left to prune.
  auto again = task.RunOnce();
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->telemetry + (*again)->profiles + (*again)->variant_events + (*again)->jobs,
            0);
}

TEST_P(RetentionTest, ReferencedBlobsSurviveAndOldUnreferencedOnesGo) {
  const std::string model = Blob("master");
  const std::string variant = Blob("variant");
  const std::string probe = Blob("probe set");
  const std::string dataset = Blob("data set");
  const std::string orphan = Blob("nobody names this");
  const std::string young = Blob("being registered right now", /*old=*/false);
  Sql("INSERT INTO models (id, name, dataset, input_shape, class_names, num_classes, "
      "parameters, macs, blob_sha256, size_bytes, created_at, created_by) VALUES ('mdl-1', 'm', "
      "'fashion-mnist', '[1,1,28,28]', '[\"a\"]', 1, 1, 1, ?, 6, ?, 'test')",
      model, kNow);
  Sql("INSERT INTO variants (id, model_id, bucket, version, status, budget, blob_sha256, "
      "probe_sha256, created_at) VALUES ('var-1', 'mdl-1', 'b', 1, 'ready', '{}', ?, ?, ?)",
      variant, probe, kNow);
  Sql("INSERT INTO datasets (id, name, sha256, size_bytes, info, created_at, created_by) "
      "VALUES ('ds-1', 'd', ?, 8, '{}', ?, 'test')",
      dataset, kNow);
  // A running job's checkpoint, and one of a job that finished forty days ago: that job is
  // pruned in the same pass, so its checkpoint goes with it.
  jobs::JobQueue& queue = *sources_.jobs;
  clock_->Set(kNow - 40 * kDay);
  auto finished = queue.Enqueue("k", {});
  ASSERT_TRUE(finished.ok());
  ASSERT_TRUE(queue.Claim({"k"}, "w").ok());
  ASSERT_TRUE(queue.SaveCheckpoint(finished->id, "w", "finished job's checkpoint").ok());
  ASSERT_TRUE(queue.Succeed(finished->id, "w", {}).ok());
  clock_->Set(kNow);
  auto running = queue.Enqueue("k", {});
  ASSERT_TRUE(running.ok());
  auto claimed = queue.Claim({"k"}, "w");
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(queue.SaveCheckpoint(running->id, "w", "running job's checkpoint").ok());
  auto running_job = queue.Get(running->id);
  ASSERT_TRUE(running_job.ok() && running_job->checkpoint_sha256);
  const std::string running_checkpoint = *running_job->checkpoint_sha256;
  Age(running_checkpoint);
  const std::string finished_checkpoint = Blob("finished job's checkpoint");

  auto registry = std::make_shared<prometheus::Registry>();
  RetentionTask task(sources_, Options(), nullptr, registry, clock_);
  auto pass = task.RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.error().ToString();
  ASSERT_TRUE(pass->has_value());
  EXPECT_EQ((*pass)->jobs, 1);
  EXPECT_EQ((*pass)->blobs.removed, 2);
  EXPECT_EQ((*pass)->blobs.kept_referenced, 5);
  EXPECT_EQ((*pass)->blobs.kept_recent, 1);
  for (const auto& kept : {model, variant, probe, dataset, running_checkpoint, young}) {
    EXPECT_TRUE(blobs_->Exists(kept)) << kept;
  }
  EXPECT_FALSE(blobs_->Exists(orphan));
  EXPECT_FALSE(blobs_->Exists(finished_checkpoint));
  EXPECT_EQ(Pruned(*registry, "blobs"), 2);
  // The running job still resumes from its checkpoint.
  auto loaded = queue.LoadCheckpoint(*running_job);
  ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
  EXPECT_EQ(loaded->value_or(""), "running job's checkpoint");
}

TEST_P(RetentionTest, OnlyTheLeaseHolderRunsAPassAndStoppingHandsItOver) {
  auto other_db = Backend().Open(false);
  ASSERT_NE(other_db, nullptr);
  auto leases_a = std::make_shared<store::TaskLeases>(*db_, "host-a/pid1-aaaaaa", clock_);
  auto leases_b = std::make_shared<store::TaskLeases>(*other_db, "host-b/pid2-bbbbbb", clock_);
  auto a = std::make_unique<RetentionTask>(sources_, Options(), leases_a, nullptr, clock_);
  RetentionTask b(Sources(other_db), Options(), leases_b, nullptr, clock_);
  Device("dev-a");
  Report("dev-a", 1, kNow - 40 * kDay);

  auto pass_a = a->RunOnce();
  ASSERT_TRUE(pass_a.ok()) << pass_a.error().ToString();
  ASSERT_TRUE(pass_a->has_value());
  EXPECT_EQ((*pass_a)->telemetry, 1);
  auto pass_b = b.RunOnce();
  ASSERT_TRUE(pass_b.ok()) << pass_b.error().ToString();
  EXPECT_FALSE(pass_b->has_value()) << "B ran a pass while A holds the lease";

  a->Stop();  // releases the lease
  pass_b = b.RunOnce();
  ASSERT_TRUE(pass_b.ok()) << pass_b.error().ToString();
  EXPECT_TRUE(pass_b->has_value());
}

TEST(RetentionConfigTest, ATelemetryCapBelowOneThousandIsRefusedWithTheKeyNamed) {
  const ConfigSchema schema = ServerConfigSchema();
  // The server's certificate is required by the schema; these tests only read retention.*.
  auto load = [&](std::vector<std::string> settings) {
    settings.push_back("server.tls_cert=cert.pem");
    settings.push_back("server.tls_key=key.pem");
    return Config::Load(schema, "", settings, "");
  };
  auto config = load({"retention.telemetry_per_device=10"});
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  auto options = RetentionOptions::FromConfig(*config);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.error().code, "invalid_config");
  EXPECT_NE(options.error().message.find("retention.telemetry_per_device"), std::string::npos);
  // 0 (no cap) and 1000 are accepted.
  for (const char* ok :
       {"retention.telemetry_per_device=0", "retention.telemetry_per_device=1000"}) {
    auto accepted = load({ok});
    ASSERT_TRUE(accepted.ok()) << accepted.error().ToString();
    EXPECT_TRUE(RetentionOptions::FromConfig(*accepted).ok()) << ok;
  }

  // Out of the schema's range: refused when the config loads, naming the key.
  for (const char* bad : {"retention.job_days=-1", "retention.blob_grace_s=5",
                          "retention.interval_s=-3", "retention.profiles_per_device=x"}) {
    auto refused = load({bad});
    ASSERT_FALSE(refused.ok()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(refused.error().ToString().find(key), std::string::npos)
        << bad << ": " << refused.error().ToString();
  }

  auto defaults = load({});
  ASSERT_TRUE(defaults.ok()) << defaults.error().ToString();
  auto o = RetentionOptions::FromConfig(*defaults);
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->interval, std::chrono::seconds(3600));
  EXPECT_EQ(o->telemetry_days, 30);
  EXPECT_EQ(o->telemetry_per_device, 10'000);
  EXPECT_EQ(o->profile_days, 180);
  EXPECT_EQ(o->profiles_per_device, 100);
  EXPECT_EQ(o->event_days, 90);
  EXPECT_EQ(o->job_days, 30);
  EXPECT_EQ(o->blob_grace, std::chrono::seconds(86'400));
}

EDGEPRUNE_STORE_BACKENDS(RetentionTest);

}  // namespace
}  // namespace edgeprune::server
