#pragma once
// A migrated database (a SQLite file in a temp dir by default, or a fresh PostgreSQL database,
// store_backends.hpp) with helpers to add models and devices, for the variants_/deploy_/
// telemetry_ tests.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/variant_repository.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::testing {

class VariantsDb {
 public:
  explicit VariantsDb(store::Dialect dialect = store::Dialect::kSqlite) : backend_(dialect) {
    db_ = backend_.Open();
  }

  const std::shared_ptr<store::Database>& db() const { return db_; }
  ::edgeprune::testing::TempDir& dir() { return backend_.dir(); }

  catalog::ModelRecord AddModel(catalog::ModelCost cost = {100'000, 10'000'000, 0}) {
    catalog::ModelRegistry registry(db_);
    catalog::ModelRecord m;
    m.name = "master";
    m.dataset = "synthetic";
    m.input_shape = {1, 1, 28, 28};
    m.class_names = {"a", "b"};
    m.num_classes = 2;
    m.cost = cost;
    m.blob_sha256 = std::string(64, 'a');
    m.size_bytes = cost.parameters * 4;
    m.created_by = "test";
    auto r = registry.Register(m);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return *r;
  }

  void AddDevice(const std::string& id, const std::string& tags_json,
                 const std::optional<Budget>& budget) {
    auto lease = db_->Acquire();
    ASSERT_TRUE(lease.ok());
    std::optional<std::string> budget_json;
    if (budget) budget_json = json::Serialize(wire::ToJson(*budget));
    auto r = (*lease)->Execute("test_device",
                               "INSERT INTO devices (id, tags, enrolled_at, budget) "
                               "VALUES (?, ?, 0, ?)",
                               id, tags_json, budget_json);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  void SetBudget(const std::string& id, const Budget& budget) {
    auto lease = db_->Acquire();
    ASSERT_TRUE(lease.ok());
    auto r = (*lease)->Execute("test_budget", "UPDATE devices SET budget = ? WHERE id = ?",
                               json::Serialize(wire::ToJson(budget)), id);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
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

 private:
  ::edgeprune::testing::TestDatabase backend_;
  std::shared_ptr<store::Database> db_;
};

// Finishes a building variant as if its build measured `cost` and `accuracy`.
inline void MarkReady(catalog::VariantRepository& repo, const std::string& id, catalog::ModelCost cost,
                      double accuracy) {
  catalog::ReadyVariant r;
  r.blob_sha256 = std::string(64, 'b');
  r.size_bytes = cost.parameters * 4;
  r.cost = cost;
  r.accuracy = accuracy;
  r.manifest = "{}";
  r.signature = std::string(64, 's');
  r.key_id = "k";
  auto s = repo.MarkReady(id, r);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
}

}  // namespace edgeprune::testing
