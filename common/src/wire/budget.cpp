#include "edgeprune/common/wire/budget.hpp"

#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::wire {

boost::json::object ToJson(const Budget& b) {
  boost::json::object o;
  if (b.max_param_bytes) o["max_param_bytes"] = *b.max_param_bytes;
  if (b.max_macs) o["max_macs"] = *b.max_macs;
  if (b.max_activation_bytes) o["max_activation_bytes"] = *b.max_activation_bytes;
  if (b.max_latency_ms) o["max_latency_ms"] = *b.max_latency_ms;
  if (b.latency_model) {
    o["latency_model"] = {{"macs_per_ms", b.latency_model->macs_per_ms},
                          {"overhead_ms", b.latency_model->overhead_ms}};
  }
  return o;
}

Result<Budget> BudgetFromJson(const boost::json::object& o) {
  constexpr std::int64_t kMax = std::int64_t{1} << 60;
  Budget b;
  EP_ASSIGN_OR_RETURN(b.max_param_bytes, ReadOptInt(o, "max_param_bytes", 0, kMax));
  EP_ASSIGN_OR_RETURN(b.max_macs, ReadOptInt(o, "max_macs", 0, kMax));
  EP_ASSIGN_OR_RETURN(b.max_activation_bytes, ReadOptInt(o, "max_activation_bytes", 0, kMax));
  EP_ASSIGN_OR_RETURN(b.max_latency_ms, ReadOptDouble(o, "max_latency_ms", 0.0, 3.6e6));
  if (auto it = o.find("latency_model"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_object()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field 'latency_model' must be an object");
    }
    const auto& lm = it->value().get_object();
    LatencyModel m;
    EP_ASSIGN_OR_RETURN(m.macs_per_ms, ReadDouble(lm, "macs_per_ms", 0.0, 1e15));
    EP_ASSIGN_OR_RETURN(m.overhead_ms, ReadDouble(lm, "overhead_ms", 0.0, 1e6));
    b.latency_model = m;
  }
  return b;
}

}  // namespace edgeprune::wire
