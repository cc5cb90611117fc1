#pragma once
// JSON codec for edgeprune::Budget (common/budget.hpp), as the operator API shows it and as
// manifests carry it. Absent bounds are omitted.
//
// Thread-safety: pure functions.

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

boost::json::object ToJson(const Budget& budget);
Result<Budget> BudgetFromJson(const boost::json::object& o);

}  // namespace edgeprune::wire
