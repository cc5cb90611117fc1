#pragma once
// Deployments: an operator targets a model at devices (by tags or ids); every targeted device is
// assigned the most accurate ready variant that fits its budget (VariantLadder::BestFit); when
// none fits, or only variants of smaller levels than the device's own whose level has not been
// built yet, the variant of the device's ladder bucket is created and its build requested.
// When a variant becomes ready, every device of that model is re-evaluated. A device whose move
// goes to a lower version gets a signed roll-back permission. The closed loop (closed_loop.hpp)
// corrects a device's throughput and calls Reassign().
//
// Thread-safety: thread-safe; each operation is one write transaction. The build callback runs
// after the commit, on the calling thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"
#include "server/catalog/variant_repository.hpp"

namespace edgeprune::deploy {

struct Selector {
  std::vector<std::string> tags;     // devices carrying every one of these tags
  std::vector<std::string> devices;  // or exactly these device ids
};

// {"tags": [...]} or {"devices": [...]}: exactly one, non-empty. Errors name the field.
Result<Selector> SelectorFromJson(const boost::json::object& o);
boost::json::object ToJson(const Selector& s);

struct Assignment {
  std::string device_id;
  std::string bucket;                     // "" when the device cannot be served
  std::optional<std::string> variant_id;  // null while its variant builds
  std::string state;                      // "assigned", "building", "unfit"
  std::string reason;                     // for "unfit": why
  bool rollback = false;
};
boost::json::object ToJson(const Assignment& a);

struct DeploymentResult {
  std::string id;
  std::string model_id;
  std::vector<Assignment> assignments;
  std::vector<std::string> builds;  // variant ids whose build this deployment started
};
boost::json::object ToJson(const DeploymentResult& d);

// What the heartbeat tells a device to run.
struct DesiredVariant {
  std::optional<std::string> variant_id;
  bool rollback = false;
};

class DeploymentService {
 public:
  // Called once per variant that needs building, after the transaction that created it.
  using BuildRequester = std::function<void(const catalog::VariantRecord&)>;

  DeploymentService(std::shared_ptr<store::Database> db, BuildRequester request_build)
      : db_(std::move(db)), request_build_(std::move(request_build)) {}

  // "model_not_found", "no_devices_selected" (kInvalidArgument), "device_not_found".
  Result<DeploymentResult> Deploy(const std::string& model_id, const Selector& selector,
                                  const std::string& actor);
  // Re-evaluates every device assigned to the model (after a variant became ready or failed).
  Result<std::vector<Assignment>> Reevaluate(const std::string& model_id);
  // Re-evaluates one device, e.g. after its throughput was recalibrated; audits with `why`.
  Result<Assignment> Reassign(const std::string& device_id, const std::string& actor,
                              const std::string& why);

  Result<DesiredVariant> Desired(const std::string& device_id) const;
  // The model a device is assigned, nullopt when it has no assignment.
  Result<std::optional<std::string>> AssignedModel(const std::string& device_id) const;
  Result<boost::json::array> List() const;
  Result<boost::json::object> Get(const std::string& deployment_id) const;

 private:
  std::shared_ptr<store::Database> db_;
  BuildRequester request_build_;
};

// A device's budget with the closed loop's throughput correction applied.
Budget ScaledBudget(Budget budget, double throughput_scale);

}  // namespace edgeprune::deploy
