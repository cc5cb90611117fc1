#include <unistd.h>

#include <ctime>

#include "agent/enroll/device_key.hpp"
#include "agent/state/states.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

std::string Hostname(const AgentSettings& s) {
  if (!s.hostname.empty()) return s.hostname;
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

class EnrollState : public StateHandler {
 public:
  explicit EnrollState(AgentContext& ctx) : ctx_(ctx) {}

  StepResult Run() override {
    if (ctx_.identity && !ctx_.identity_rejected) return {Event::kDone, {}, ctx_.identity->device_id};
    if (!ctx_.identity && ctx_.dir.HasIdentity()) {
      auto loaded = ctx_.dir.LoadIdentity();
      if (!loaded.ok()) return {Event::kFailed, {}, loaded.error().ToString()};
      ctx_.identity = std::move(loaded).value();
      return {Event::kDone, {}, "resumed as " + ctx_.identity->device_id};
    }
    if (ctx_.settings.enrollment_token.empty()) {
      return {Event::kFailed, {},
              ctx_.identity_rejected
                  ? "the server refused this device's certificate (revoked?); set "
                    "agent.enrollment_token to enroll again"
                  : "not enrolled and agent.enrollment_token is not set"};
    }
    auto id = EnrollOnce(ctx_.settings, ctx_.dir);
    if (!id.ok()) return {Event::kFailed, {}, id.error().ToString()};
    ctx_.identity = std::move(id).value();
    ctx_.identity_rejected = false;
    ctx_.measured.reset();
    ctx_.ResetApi();
    return {Event::kDone, {}, "enrolled as " + ctx_.identity->device_id};
  }

 private:
  AgentContext& ctx_;
};

}  // namespace

Result<Identity> EnrollOnce(const AgentSettings& s, const StateDir& dir) {
  if (s.server_url.empty() || s.server_ca.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "enroll_config",
                     "enrollment needs agent.server_url and agent.server_ca");
  }
  EP_ASSIGN_OR_RETURN(auto ca_pem, fs::ReadFile(s.server_ca, 1024 * 1024));
  // The key is made here and stays here: only the CSR goes to the server.
  EP_ASSIGN_OR_RETURN(std::string key_pem, GenerateDeviceKey());
  EP_ASSIGN_OR_RETURN(std::string csr_pem, MakeCsr(key_pem, "edgeprune-enrollment"));
  EP_ASSIGN_OR_RETURN(auto api, ServerApi::Connect({s.server_url, s.server_ca, "", "", s.request_timeout}));
  EP_ASSIGN_OR_RETURN(auto grant, api->Enroll({s.enrollment_token, csr_pem, Hostname(s)}));
  EP_ASSIGN_OR_RETURN(auto info, InspectCertificate(grant.certificate_pem));
  if (info.subject_cn != grant.device_id) {
    return MakeError(ErrorKind::kInternal, "enroll_mismatch",
                     "the issued certificate names '" + info.subject_cn + "', not '" +
                         grant.device_id + "'");
  }
  Identity id;
  id.device_id = grant.device_id;
  id.server_url = s.server_url;
  id.key_pem = std::move(key_pem);
  id.certificate_pem = grant.certificate_pem;
  id.server_ca_pem = std::move(ca_pem);
  id.enrolled_at = std::time(nullptr);
  id.not_before = info.not_before;
  id.not_after = info.not_after;
  // A previous (rejected) identity is kept aside, never silently destroyed.
  if (dir.HasIdentity()) {
    if (auto old = dir.LoadIdentity(); old.ok()) {
      (void)fs::WriteFileAtomic(dir.identity_dir() + "/rejected-" + old->device_id + ".crt",
                                old->certificate_pem, 0600);
    }
  }
  EP_RETURN_IF_ERROR(dir.SaveIdentity(id));
  log::Get("agent")->info("enrolled as {}; certificate valid until {}", id.device_id, id.not_after);
  return id;
}

std::unique_ptr<StateHandler> MakeEnrollState(AgentContext& ctx) {
  return std::make_unique<EnrollState>(ctx);
}

}  // namespace edgeprune::agent
