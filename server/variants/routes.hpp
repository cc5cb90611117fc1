#pragma once
// HTTP routes of the model → variant → device loop:
//   operator  POST /api/v1/models                 upload a TorchScript master (raw body; metadata
//                                                 in the query: name, dataset, input_shape,
//                                                 class_names)
//             GET  /api/v1/models, /api/v1/models/{id}, /api/v1/models/{id}/variants
//             POST /api/v1/deployments {model, selector}, GET /api/v1/deployments[/{id}]
//             GET  /api/v1/jobs, /api/v1/jobs/{id}, DELETE /api/v1/jobs/{id}
//             GET  /api/v1/devices/{id}/telemetry, /api/v1/devices/{id}/assignment
//   device    GET  /agent/v1/variants/{id}/manifest   signed bytes; signature in headers
//             GET  /agent/v1/variants/{id}/signature  raw 64-byte signature
//             GET  /agent/v1/variants/{id}/payload    the TorchScript file, with HTTP Range
//             POST /agent/v1/variants/{id}/events     install/refusal reports
//             POST /agent/v1/telemetry               telemetry batches, acked after commit
//
// Thread-safety: the handlers only use thread-safe services.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/fleet/audit_log.hpp"
#include "common/http/router.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/signing/signing_keyring.hpp"
#include "server/store/blob_store.hpp"
#include "server/variants/closed_loop.hpp"
#include "server/variants/deployments.hpp"
#include "server/variants/model_registry.hpp"
#include "server/variants/telemetry_metrics.hpp"
#include "server/variants/telemetry_store.hpp"
#include "server/variants/variant_builder.hpp"
#include "server/variants/variant_repository.hpp"

namespace edgeprune::variants {

struct VariantServices {
  std::shared_ptr<store::Database> db;
  std::shared_ptr<store::BlobStore> blobs;
  std::shared_ptr<ModelRegistry> models;
  std::shared_ptr<VariantRepository> variants;
  std::shared_ptr<DeploymentService> deployments;
  std::shared_ptr<TelemetryStore> telemetry;
  std::shared_ptr<ClosedLoop> loop;
  std::shared_ptr<const signing::SigningKeyring> keyring;
  std::shared_ptr<jobs::JobQueue> queue;
  std::shared_ptr<TelemetryMetrics> metrics;  // may be null
  ValidateMasterFn validate_master;
  std::shared_ptr<const fleet::AuditLog> audit;  // refused uploads; may be null in tests
  std::int64_t max_model_bytes = 256 * 1024 * 1024;
  std::string upload_dir;  // temp files of uploads being validated
};

std::vector<http::Route> VariantRoutes(std::shared_ptr<VariantServices> services);

}  // namespace edgeprune::variants
