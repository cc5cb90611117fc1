#pragma once
// VariantUpdater: the mechanism under the agent's download → verify → install states
// (agent/state/update_states.cpp), and the restore of the installed variant at start-up. Server
// endpoints (mTLS):
//   GET <variants_prefix><id>/manifest   body = the manifest's exact signed bytes,
//                                         header X-Signature = base64 of the raw Ed25519 signature
//   GET <variants_prefix><id>/payload    the TorchScript file, HTTP Range supported
//   GET <variants_prefix><id>/probe      the variant's probe set, when its manifest names one
//
//   Download(id)  manifest + signature fetched; signature and version checked before a single
//                 payload byte is fetched; payload fetched resumably and its digest checked, then
//                 the probe set the manifest names (small: one request). A
//                 (signed) roll-back to the variant kept as previous takes its bytes from the
//                 store when they match the new manifest's digest: a local swap, no download
//   CheckPayload()  the downloaded bytes (payload and probe set) match the signed digests and
//                   sizes, the probe set has the variant's per-sample shape and classes
//                   (probe_verifier.hpp), and the manifest's spec is one the runtime can serve
//   CheckModel()    the runtime loads and checks the payload (probe accuracy ≥ the manifest's
//                   floor, on the variant's own probe set, else on the agent's local one)
//                   without activating it
//   Install()     the payload moves into the variants dir, the record names it current, and the
//                 checked model is hot-swapped in
// A refused step leaves the serving variant untouched and says why (the error's code) and whether
// a retry may help (its Retry: permanent refusals, limited payload mismatches, transient network
// failures). A manifest answered 403/404 is "variant_not_offered" (permanent, kNotFound): not a
// refusal of the variant, the assignment changed.
//
// Thread-safety: not thread-safe; driven by the state machine's thread.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/download/downloader.hpp"
#include "agent/download/keyring.hpp"
#include "agent/download/manifest_verifier.hpp"
#include "agent/download/variant_store.hpp"
#include "agent/runtime/runtime.hpp"
#include "edgeprune/common/https_client.hpp"

namespace edgeprune::agent {

struct UpdaterOptions {
  std::string variants_prefix = "/agent/v1/variants/";
  DownloadOptions download;
};

struct PendingUpdate {
  std::string manifest_bytes;
  std::string signature;
  wire::VariantManifest manifest;
  std::string payload_path;  // verified download, not yet installed
  std::string probe_path;    // its probe set when the manifest names one, else empty
  std::shared_ptr<const ProbeSet> probe;     // set by CheckPayload() from probe_path
  std::shared_ptr<const LoadedModel> model;  // set by CheckModel()
  CheckReport check;
};

// The mTLS client to the server, fetched per use: the connection changes when the certificate is
// renewed. An error means "not connected now" (the step fails and is retried).
using ClientProvider = std::function<Result<http::HttpsClient*>()>;

// A variant spec for the runtime from a verified manifest and a payload path.
VariantSpec SpecFromManifest(const wire::VariantManifest& manifest, const std::string& path);

class VariantUpdater {
 public:
  // client may be empty for an updater that only restores (no network).
  VariantUpdater(ClientProvider client, std::shared_ptr<const TrustedKeyring> keyring,
                 VariantStore& store, ModelRuntime& runtime, std::shared_ptr<const ProbeSet> probe,
                 UpdaterOptions options = {});

  // device_id: this agent's enrolled identity (a signed rollback must name it).
  Status Download(const std::string& variant_id, const std::string& device_id);
  Status CheckPayload();
  Status CheckModel();
  Result<InstalledVariant> Install();

  // At start-up: re-verifies the current variant's stored manifest, signature and payload, checks
  // and activates it; falls back to the previous variant when the current one fails. nullopt when
  // nothing is installed.
  Result<std::optional<InstalledVariant>> RestoreInstalled();

  const std::optional<PendingUpdate>& pending() const { return pending_; }
  void Abandon() { pending_.reset(); }

 private:
  Result<CheckReport> ActivateStored(const InstalledVariant& v);
  // Copies the previous install's payload (and probe set) to the partial paths when it is the
  // manifest's variant and bytes; false (and nothing done) otherwise, and they are downloaded.
  bool TakeFromPrevious(const wire::VariantManifest& manifest, const std::string& partial_path,
                        const std::string& partial_probe_path);
  // The probe set a variant is checked on: its own when its manifest names one, else the local one.
  Result<std::shared_ptr<const ProbeSet>> ProbeFor(const wire::VariantManifest& manifest,
                                                   const std::string& probe_path) const;

  ClientProvider client_;
  ManifestVerifier verifier_;
  VariantStore& store_;
  ModelRuntime& runtime_;
  std::shared_ptr<const ProbeSet> probe_;
  UpdaterOptions options_;
  std::optional<PendingUpdate> pending_;
};

}  // namespace edgeprune::agent
