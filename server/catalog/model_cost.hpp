#pragma once
// What a model (master or variant) costs at batch 1: the catalog records it for every master and
// variant; the deployment ladder compares it with device budgets.
//
// Thread-safety: a plain value type.

#include <cstdint>

namespace edgeprune::catalog {

// What a model (master or variant) costs at batch 1.
struct ModelCost {
  std::int64_t parameters = 0;        // elements; float32 → 4 bytes each
  std::int64_t macs = 0;
  std::int64_t activation_bytes = 0;  // 0 when unknown: not checked
};

}  // namespace edgeprune::catalog
