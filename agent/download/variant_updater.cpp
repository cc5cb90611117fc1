#include "agent/download/variant_updater.hpp"

#include <unistd.h>

#include "agent/download/probe_verifier.hpp"
#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

Error NoPending(const char* step) {
  return MakeError(ErrorKind::kFailedPrecondition, "no_pending_update",
                   std::string(step) + " needs a downloaded variant first");
}

}  // namespace

VariantSpec SpecFromManifest(const wire::VariantManifest& m, const std::string& path) {
  VariantSpec spec;
  spec.variant_id = m.variant_id;
  spec.path = path;
  spec.input_shape = m.input_shape;
  spec.num_classes = m.num_classes;
  spec.normalize_mean = m.normalize.mean;
  spec.normalize_std = m.normalize.std;
  spec.accuracy_floor = m.metrics.accuracy_floor;
  return spec;
}

VariantUpdater::VariantUpdater(ClientProvider client,
                               std::shared_ptr<const TrustedKeyring> keyring, VariantStore& store,
                               ModelRuntime& runtime, std::shared_ptr<const ProbeSet> probe,
                               UpdaterOptions options)
    : client_(std::move(client)),
      verifier_(std::move(keyring)),
      store_(store),
      runtime_(runtime),
      probe_(std::move(probe)),
      options_(std::move(options)) {}

Status VariantUpdater::Download(const std::string& variant_id, const std::string& device_id) {
  if (!client_) {
    return MakeError(ErrorKind::kFailedPrecondition, "no_client", "the updater has no server client");
  }
  pending_.reset();
  EP_ASSIGN_OR_RETURN(http::HttpsClient * client, client_());
  const std::string base = options_.variants_prefix + variant_id;
  EP_ASSIGN_OR_RETURN(auto resp, client->Get(base + "/manifest"));
  if (resp.status == 403 || resp.status == 404) {
    // Not ready or no longer assigned to this device: the server wants something else now. Asking
    // again for the same variant will not help (permanent), and it is not the variant's fault
    // (kNotFound, not a refusal): the update flow drops it without a report.
    return PermanentError(ErrorKind::kNotFound, "variant_not_offered",
                          "GET " + base + "/manifest answered HTTP " + std::to_string(resp.status) +
                              ": the server no longer offers this variant to this device");
  }
  if (resp.status != 200) {
    // 5xx, 429 and the like: the server may answer later.
    return MakeError(ErrorKind::kUnavailable, "manifest_fetch_failed",
                     "GET " + base + "/manifest answered HTTP " + std::to_string(resp.status));
  }
  PendingUpdate p;
  p.manifest_bytes = std::move(resp.body);
  const std::string sig_b64 = resp.Header("x-signature");
  if (!sig_b64.empty()) {
    auto sig = crypto::Base64Decode(sig_b64);
    if (!sig.ok()) {
      return PermanentError(ErrorKind::kPermissionDenied, "bad_signature",
                            "header X-Signature is not valid base64");
    }
    p.signature = std::move(sig).value();
  }
  EP_ASSIGN_OR_RETURN(p.manifest, verifier_.Verify(p.manifest_bytes, p.signature));
  if (p.manifest.variant_id != variant_id) {
    return PermanentError(ErrorKind::kPermissionDenied, "manifest_mismatch",
                          "asked for variant " + variant_id + ", the signed manifest is for " +
                              p.manifest.variant_id);
  }
  EP_RETURN_IF_ERROR(ManifestVerifier::CheckVersion(p.manifest, store_.InstalledVersion(),
                                                     device_id, NowMs() / 1000));
  p.payload_path = store_.PartialPath(p.manifest);
  if (p.manifest.probe) p.probe_path = store_.PartialProbePath(p.manifest);
  if (TakeFromPrevious(p.manifest, p.payload_path, p.probe_path)) {
    pending_ = std::move(p);
    return Ok();
  }
  ResumableDownloader downloader(*client, options_.download);
  EP_ASSIGN_OR_RETURN(auto stats, downloader.Fetch(base + "/payload", p.payload_path,
                                                   p.manifest.payload));
  log::Get("download")->info("variant {} v{} downloaded: {} bytes in {} requests (resumed at {})",
                             variant_id, p.manifest.version, stats.bytes_fetched, stats.requests,
                             stats.resumed_from);
  if (p.manifest.probe) {
    // Small (the manifest caps it at wire::kMaxProbeBytes, as does the client's body limit): one
    // request, checked against the signed digest in CheckPayload().
    EP_ASSIGN_OR_RETURN(auto probe, client->Get(base + "/probe"));
    if (probe.status != 200) {
      return MakeError(ErrorKind::kUnavailable, "probe_fetch_failed",
                       "GET " + base + "/probe answered HTTP " + std::to_string(probe.status));
    }
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(p.probe_path, probe.body, 0600));
  }
  pending_ = std::move(p);
  return Ok();
}

bool VariantUpdater::TakeFromPrevious(const wire::VariantManifest& manifest,
                                      const std::string& partial_path,
                                      const std::string& partial_probe_path) {
  auto record = store_.Load();
  if (!record.ok() || !record->previous) return false;
  const InstalledVariant& prev = *record->previous;
  if (prev.variant_id != manifest.variant_id || prev.version != manifest.version) return false;
  // The newly signed manifest must name exactly the bytes kept: size and SHA-256.
  if (!ManifestVerifier::CheckPayload(manifest, prev.payload_path).ok()) return false;
  auto bytes = fs::ReadFile(prev.payload_path,
                            static_cast<std::size_t>(manifest.payload.size_bytes));
  std::string probe;
  if (manifest.probe) {
    auto kept = fs::ReadFile(VariantStore::ProbePath(prev),
                             static_cast<std::size_t>(manifest.probe->size_bytes));
    if (!kept.ok() || !VerifyProbe(manifest, *kept).ok()) return false;
    probe = std::move(kept).value();
  }
  if (!bytes.ok() || !fs::WriteFileAtomic(partial_path, *bytes, 0600).ok()) return false;
  if (manifest.probe && !fs::WriteFileAtomic(partial_probe_path, probe, 0600).ok()) return false;
  log::Get("download")->info("variant {} v{} is the previous install: swapped back locally, "
                             "no download",
                             manifest.variant_id, manifest.version);
  return true;
}

Result<std::shared_ptr<const ProbeSet>> VariantUpdater::ProbeFor(
    const wire::VariantManifest& manifest, const std::string& probe_path) const {
  if (!manifest.probe) return probe_;
  return VerifyProbeFile(manifest, probe_path);
}

Status VariantUpdater::CheckPayload() {
  if (!pending_) return NoPending("verify");
  auto& p = *pending_;
  Status checked = ManifestVerifier::CheckPayload(p.manifest, p.payload_path);
  if (checked.ok()) checked = ModelRuntime::CheckSpec(SpecFromManifest(p.manifest, p.payload_path));
  if (checked.ok()) {
    auto probe = ProbeFor(p.manifest, p.probe_path);
    if (probe.ok()) {
      p.probe = std::move(probe).value();
    } else {
      checked = probe.error();
    }
  }
  if (!checked.ok()) {
    // Nothing of a refused variant stays: a retry downloads both files again.
    ::unlink(p.payload_path.c_str());
    if (!p.probe_path.empty()) ::unlink(p.probe_path.c_str());
    pending_.reset();
  }
  return checked;
}

Status VariantUpdater::CheckModel() {
  if (!pending_) return NoPending("verify");
  auto& p = *pending_;
  auto model = runtime_.Prepare(SpecFromManifest(p.manifest, p.payload_path), p.probe, &p.check);
  if (!model.ok()) {
    log::Get("download")->warn("variant {} refused: {}", p.manifest.variant_id,
                               model.error().ToString());
    ::unlink(p.payload_path.c_str());
    if (!p.probe_path.empty()) ::unlink(p.probe_path.c_str());
    pending_.reset();
    return model.error();
  }
  p.model = std::move(model).value();
  return Ok();
}

Result<InstalledVariant> VariantUpdater::Install() {
  if (!pending_ || !pending_->model) return NoPending("install");
  auto& p = *pending_;
  EP_ASSIGN_OR_RETURN(auto installed, store_.Install(p.manifest, p.manifest_bytes, p.signature,
                                                     p.payload_path, p.probe_path));
  runtime_.Activate(std::move(p.model));
  pending_.reset();
  return installed;
}

Result<CheckReport> VariantUpdater::ActivateStored(const InstalledVariant& v) {
  EP_ASSIGN_OR_RETURN(auto bytes, fs::ReadFile(v.manifest_path, wire::kMaxManifestBytes));
  EP_ASSIGN_OR_RETURN(auto signature, fs::ReadFile(v.signature_path, 1024));
  EP_ASSIGN_OR_RETURN(auto manifest, verifier_.Verify(bytes, signature));
  EP_RETURN_IF_ERROR(ManifestVerifier::CheckPayload(manifest, v.payload_path));
  // A stored probe set is checked against the signed manifest again, like the payload.
  EP_ASSIGN_OR_RETURN(auto probe, ProbeFor(manifest, VariantStore::ProbePath(v)));
  return runtime_.Install(SpecFromManifest(manifest, v.payload_path), std::move(probe));
}

Result<std::optional<InstalledVariant>> VariantUpdater::RestoreInstalled() {
  EP_ASSIGN_OR_RETURN(auto record, store_.Load());
  if (!record.current) return std::optional<InstalledVariant>();
  auto current = ActivateStored(*record.current);
  if (current.ok()) return std::optional<InstalledVariant>(*record.current);
  log::Get("download")->error("installed variant {} cannot serve: {}",
                              record.current->variant_id, current.error().ToString());
  if (!record.previous) return current.error();
  auto previous = ActivateStored(*record.previous);
  if (!previous.ok()) return current.error();
  EP_ASSIGN_OR_RETURN(auto swapped, store_.SwapToPrevious());
  log::Get("download")->warn("rolled back to previous variant {}", swapped.variant_id);
  return std::optional<InstalledVariant>(swapped);
}

}  // namespace edgeprune::agent
