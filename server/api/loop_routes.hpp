#pragma once
// HTTP routes of the model → variant → device loop, one table per noun:
//   model_routes.cpp      operator  POST /api/v1/models (upload a TorchScript master: raw body,
//                                   metadata in the query: name, dataset, input_shape,
//                                   class_names); GET /api/v1/models[/{id}],
//                                   /api/v1/models/{id}/variants
//   dataset_routes.cpp    operator  POST /api/v1/datasets?name= (an .npz, zip or tar as the raw
//                                   body: validated, stored content-addressed), DELETE
//                                   /api/v1/datasets/{id}; GET /api/v1/datasets[/{id}]
//   deploy_routes.cpp     operator  POST/GET /api/v1/deployments[/{id}]; GET /api/v1/jobs[/{id}],
//                                   DELETE /api/v1/jobs/{id}
//   rollout_routes.cpp    operator  POST/GET /api/v1/rollouts[/{id}],
//                                   POST /api/v1/rollouts/{id}/pause|resume|promote|abort|approve
//   delivery_routes.cpp   device    GET /agent/v1/variants/{id}/manifest (signed bytes; signature
//                                   in headers), GET /agent/v1/variants/{id}/payload (HTTP Range)
//   telemetry_routes.cpp  device    POST /agent/v1/telemetry (acked after commit),
//                                   POST /agent/v1/variants/{id}/events (install/refusal reports)
//                         operator  GET /api/v1/devices/{id}/telemetry
//
// Thread-safety: the handlers only use thread-safe services.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/http/router.hpp"
#include "server/catalog/dataset_catalog.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/signing_keyring.hpp"
#include "server/catalog/variant_build.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/deploy/closed_loop.hpp"
#include "server/deploy/deployments.hpp"
#include "server/deploy/rollouts.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/store/blob_store.hpp"
#include "server/telemetry/metrics.hpp"
#include "server/telemetry/store.hpp"

namespace edgeprune::api {

// Each table names the services its handlers use, and nothing else: the application builds one
// of these per table from the modules it owns.
struct ModelRouteServices {
  std::shared_ptr<catalog::ModelRegistry> models;
  std::shared_ptr<catalog::VariantRepository> variants;
  std::shared_ptr<catalog::DatasetCatalog> datasets;  // uploads may name a data set
  std::shared_ptr<store::BlobStore> blobs;
  catalog::ValidateMasterFn validate_master;
  std::shared_ptr<const fleet::AuditLog> audit;  // refused uploads; may be null in tests
  std::int64_t max_model_bytes = 256 * 1024 * 1024;
  std::string upload_dir;  // temp files of uploads being validated
};

struct DatasetRouteServices {
  std::shared_ptr<catalog::DatasetCatalog> datasets;
  std::shared_ptr<const fleet::AuditLog> audit;  // refused uploads; may be null in tests
  std::int64_t max_dataset_bytes = std::int64_t{4} << 30;
  std::string upload_dir;
};

struct DeployRouteServices {
  std::shared_ptr<deploy::DeploymentService> deployments;
  std::shared_ptr<catalog::VariantRepository> variants;  // a cancelled build fails its variant
  std::shared_ptr<jobs::JobQueue> queue;
  std::shared_ptr<const fleet::AuditLog> audit;
  // Recounts the variant and job gauges (wired by the application); may be empty.
  std::function<void()> refresh_gauges;
};

struct RolloutRouteServices {
  std::shared_ptr<deploy::RolloutService> rollouts;
  std::shared_ptr<const fleet::AuditLog> audit;
  std::function<void()> refresh_gauges;
};

struct DeliveryRouteServices {
  std::shared_ptr<catalog::VariantRepository> variants;
  std::shared_ptr<deploy::DeploymentService> deployments;  // what the device is assigned
  std::shared_ptr<store::BlobStore> blobs;
  std::shared_ptr<const catalog::SigningKeyring> keyring;
};

struct TelemetryRouteServices {
  std::shared_ptr<telemetry::TelemetryStore> telemetry;
  std::shared_ptr<deploy::DeploymentService> deployments;
  std::shared_ptr<catalog::VariantRepository> variants;
  std::shared_ptr<deploy::ClosedLoop> loop;
  std::shared_ptr<telemetry::TelemetryMetrics> metrics;  // may be null
};

// An upload's outcome, with a refused one audited (action "model.upload" or "dataset.upload",
// outcome failed: the code and sentence the client got, the bytes, the request id and the name
// asked for). An accepted upload is audited in the transaction that stores it. audit may be null.
Result<http::Response> AuditRefusedUpload(const fleet::AuditLog* audit,
                                          const http::RequestContext& ctx, const char* action,
                                          Result<http::Response> outcome);

std::vector<http::Route> ModelRoutes(const ModelRouteServices& services);
std::vector<http::Route> DatasetRoutes(const DatasetRouteServices& services);
std::vector<http::Route> DeployRoutes(const DeployRouteServices& services);
std::vector<http::Route> RolloutRoutes(const RolloutRouteServices& services);
std::vector<http::Route> DeliveryRoutes(const DeliveryRouteServices& services);
std::vector<http::Route> TelemetryRoutes(const TelemetryRouteServices& services);

}  // namespace edgeprune::api
