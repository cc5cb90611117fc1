#include "agent/local_api/routes.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/fields.hpp"
#include "common/http/metrics.hpp"
#include "common/http/response.hpp"

namespace edgeprune::agent {
namespace {

namespace bj = boost::json;
constexpr std::size_t kMaxRank = 6;
constexpr std::int64_t kMaxElements = 16 * 1024 * 1024;

Error Bad(const std::string& code, const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, code, message);
}

struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

Result<std::int64_t> CheckedCount(const std::vector<std::int64_t>& shape) {
  if (shape.empty() || shape.size() > kMaxRank) {
    return Bad("invalid_shape", "shape must have 1 to " + std::to_string(kMaxRank) + " dimensions");
  }
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 1 || d > kMaxElements || n * d > kMaxElements) {
      return Bad("invalid_shape", "shape dimensions must be positive and hold at most " +
                                      std::to_string(kMaxElements) + " elements");
    }
    n *= d;
  }
  return n;
}

// "1,1,28,28"
Result<std::vector<std::int64_t>> ParseShapeHeader(std::string_view text) {
  std::vector<std::int64_t> shape;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto part = text.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size()) {
      return Bad("invalid_shape", "header X-Shape must be comma-separated integers like 1,1,28,28");
    }
    shape.push_back(v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return Bad("invalid_shape", "header X-Shape ends with a comma");
  }
  if (shape.empty()) return Bad("invalid_shape", "header X-Shape is empty");
  return shape;
}

Result<Tensor> ParseRaw(const http::RequestContext& ctx) {
  auto header = ctx.Header("x-shape");
  if (!header) return Bad("missing_shape", "a raw float32 body needs its shape in header X-Shape");
  Tensor t;
  EP_ASSIGN_OR_RETURN(t.shape, ParseShapeHeader(*header));
  EP_ASSIGN_OR_RETURN(auto n, CheckedCount(t.shape));
  if (ctx.body.size() != static_cast<std::size_t>(n) * sizeof(float)) {
    return Bad("invalid_element_count",
               "body holds " + std::to_string(ctx.body.size()) + " bytes; shape needs " +
                   std::to_string(n) + " float32 values (" + std::to_string(n * 4) + " bytes)");
  }
  t.data.resize(static_cast<std::size_t>(n));
  // float32 little-endian on the wire; every supported target (x86_64, aarch64) is little-endian.
  static_assert(sizeof(float) == 4);
  std::memcpy(t.data.data(), ctx.body.data(), ctx.body.size());
  return t;
}

Result<Tensor> ParseJson(const http::RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(ctx.body));
  EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(o, {"shape", "data"}, "infer request"));
  Tensor t;
  auto shape = o.find("shape");
  if (shape == o.end() || !shape->value().is_array()) {
    return Bad("invalid_shape", "field 'shape' must be an array of integers");
  }
  for (const auto& d : shape->value().get_array()) {
    if (!d.is_int64()) return Bad("invalid_shape", "field 'shape' must be an array of integers");
    t.shape.push_back(d.get_int64());
  }
  EP_ASSIGN_OR_RETURN(auto n, CheckedCount(t.shape));
  auto data = o.find("data");
  if (data == o.end() || !data->value().is_array()) {
    return Bad("invalid_data", "field 'data' must be an array of numbers");
  }
  const auto& a = data->value().get_array();
  if (static_cast<std::int64_t>(a.size()) != n) {
    return Bad("invalid_element_count", "field 'data' holds " + std::to_string(a.size()) +
                                            " values; shape needs " + std::to_string(n));
  }
  t.data.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    double v = 0.0;
    if (a[i].is_double()) {
      v = a[i].get_double();
    } else if (a[i].is_int64()) {
      v = static_cast<double>(a[i].get_int64());
    } else if (a[i].is_uint64()) {
      v = static_cast<double>(a[i].get_uint64());
    } else {
      return Bad("invalid_data", "data[" + std::to_string(i) + "] is not a number");
    }
    if (!std::isfinite(v) || std::fabs(v) > 3.0e38) {
      return Bad("invalid_input", "data[" + std::to_string(i) + "] is not a finite float32");
    }
    t.data.push_back(static_cast<float>(v));
  }
  return t;
}

Result<http::Response> Infer(const LocalApiContext& c, const http::RequestContext& ctx) {
  auto fail = [&](const Error& e) -> Result<http::Response> {
    if (c.metrics) c.metrics->InferenceError(e.code);
    return e;
  };
  if (ctx.body.size() > c.max_infer_body_bytes) {
    return fail(Bad("body_too_large", "request body of " + std::to_string(ctx.body.size()) +
                                          " bytes exceeds " +
                                          std::to_string(c.max_infer_body_bytes)));
  }
  const auto type = std::string(ctx.Header("content-type").value_or("application/json"));
  const bool raw = type.rfind("application/octet-stream", 0) == 0;
  if (!raw && type.rfind("application/json", 0) != 0) {
    return fail(Bad("unsupported_content_type",
                    "Content-Type must be application/json or application/octet-stream"));
  }
  auto tensor = raw ? ParseRaw(ctx) : ParseJson(ctx);
  if (!tensor.ok()) return fail(tensor.error());
  std::optional<AgentMetrics::InFlight> running;
  if (c.metrics) running.emplace(c.metrics.get());
  auto r = c.runtime->Infer(tensor->data, tensor->shape);
  running.reset();
  if (!r.ok()) return fail(r.error());
  const double latency_ms = static_cast<double>(r->latency_us) / 1000.0;
  if (c.collector) c.collector->RecordInference(ctx.request_id, r->class_index, latency_ms);
  if (c.metrics) {
    c.metrics->Inference(r->variant_id, latency_ms / 1000.0);
    c.metrics->ActiveVariant(r->variant_id);
  }
  bj::array scores;
  scores.reserve(r->scores.size());
  for (float s : r->scores) scores.emplace_back(static_cast<double>(s));
  return http::JsonResponse(bj::object{{"class", r->class_index},
                                       {"scores", std::move(scores)},
                                       {"latency_ms", latency_ms},
                                       {"variant_id", r->variant_id},
                                       {"request_id", ctx.request_id}});
}

Result<http::Response> Feedback(const LocalApiContext& c, const http::RequestContext& ctx) {
  if (ctx.body.size() > 64 * 1024) return Bad("body_too_large", "feedback body is too large");
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(ctx.body));
  EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(o, {"request_id", "label"}, "feedback"));
  EP_ASSIGN_OR_RETURN(auto request_id, wire::ReadString(o, "request_id", 128));
  auto spec = c.runtime->active_spec();
  const std::int64_t classes = spec ? spec->num_classes : 1000000;
  EP_ASSIGN_OR_RETURN(auto label, wire::ReadInt(o, "label", 0, classes - 1));
  if (!c.collector) {
    return MakeError(ErrorKind::kUnavailable, "feedback_disabled", "feedback is not collected");
  }
  EP_ASSIGN_OR_RETURN(bool correct, c.collector->RecordFeedback(request_id, label));
  if (c.metrics) c.metrics->Feedback(correct);
  return http::JsonResponse(bj::object{{"request_id", request_id}, {"correct", correct}});
}

}  // namespace

Status AddLocalApiRoutes(http::Router& router, std::shared_ptr<const LocalApiContext> context) {
  if (!context || !context->runtime) {
    return MakeError(ErrorKind::kInternal, "invalid_local_api", "the local API needs a runtime");
  }
  EP_RETURN_IF_ERROR(router.Add({http::Verb::post, "/v1/infer",
                                 [context](const http::RequestContext& ctx) {
                                   return Infer(*context, ctx);
                                 },
                                 http::Auth::kPublic, "/v1/infer"}));
  EP_RETURN_IF_ERROR(router.Add({http::Verb::post, "/v1/feedback",
                                 [context](const http::RequestContext& ctx) {
                                   return Feedback(*context, ctx);
                                 },
                                 http::Auth::kPublic, "/v1/feedback"}));
  if (context->metrics) EP_RETURN_IF_ERROR(router.Add(http::MetricsRoute(context->metrics->registry())));
  return Ok();
}

}  // namespace edgeprune::agent
