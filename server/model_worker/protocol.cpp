#include "server/model_worker/protocol.hpp"

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"

namespace edgeprune::model_worker {
namespace bj = boost::json;

namespace {

bj::array IntArray(const std::vector<std::int64_t>& v) {
  bj::array a;
  for (auto x : v) a.emplace_back(x);
  return a;
}

bj::array DoubleArray(const std::vector<double>& v) {
  bj::array a;
  for (auto x : v) a.emplace_back(x);
  return a;
}

Result<std::vector<std::int64_t>> Ints(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<std::int64_t> out;
  for (const auto& v : a) {
    if (!v.is_int64()) return json::FieldError(key, "must hold integers");
    out.push_back(v.as_int64());
  }
  return out;
}

Result<std::vector<double>> Doubles(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<double> out;
  for (const auto& v : a) {
    if (!v.is_number()) return json::FieldError(key, "must hold numbers");
    out.push_back(v.to_number<double>());
  }
  return out;
}

bj::object ToJson(const catalog::VariantBuildOptions& o) {
  return bj::object{{"dataset_dir", o.dataset_dir},
                    {"train_limit", o.train_limit},
                    {"test_limit", o.test_limit},
                    {"finetune_steps", o.finetune_steps},
                    {"finetune_seconds", o.finetune_seconds},
                    {"batch_size", o.batch_size},
                    {"importance", o.importance},
                    {"step_fraction", o.step_fraction},
                    {"max_prune_steps", o.max_prune_steps},
                    {"step_finetune_steps", o.step_finetune_steps},
                    {"step_finetune_seconds", o.step_finetune_seconds},
                    {"threads", o.threads},
                    {"train_batch_norm", o.train_batch_norm}};
}

Result<catalog::VariantBuildOptions> OptionsFromJson(const bj::object& o) {
  catalog::VariantBuildOptions out;
  EP_ASSIGN_OR_RETURN(out.dataset_dir, json::GetString(o, "dataset_dir"));
  EP_ASSIGN_OR_RETURN(out.train_limit, json::GetInt(o, "train_limit"));
  EP_ASSIGN_OR_RETURN(out.test_limit, json::GetInt(o, "test_limit"));
  EP_ASSIGN_OR_RETURN(out.finetune_steps, json::GetInt(o, "finetune_steps"));
  EP_ASSIGN_OR_RETURN(out.finetune_seconds, json::GetDouble(o, "finetune_seconds"));
  EP_ASSIGN_OR_RETURN(out.batch_size, json::GetInt(o, "batch_size"));
  EP_ASSIGN_OR_RETURN(out.importance, json::GetString(o, "importance"));
  EP_ASSIGN_OR_RETURN(out.step_fraction, json::GetDouble(o, "step_fraction"));
  EP_ASSIGN_OR_RETURN(out.max_prune_steps, json::GetInt(o, "max_prune_steps"));
  EP_ASSIGN_OR_RETURN(out.step_finetune_steps, json::GetInt(o, "step_finetune_steps"));
  EP_ASSIGN_OR_RETURN(out.step_finetune_seconds, json::GetDouble(o, "step_finetune_seconds"));
  EP_ASSIGN_OR_RETURN(out.threads, json::GetInt(o, "threads"));
  EP_ASSIGN_OR_RETURN(out.train_batch_norm, json::GetBool(o, "train_batch_norm"));
  return out;
}

std::string Line(bj::object o) { return json::Serialize(o); }

}  // namespace

bj::object ToJson(const WorkerRequest& r) {
  bj::object o{{"threads", r.threads}};
  if (r.validate) {
    o["validate"] = bj::object{{"model_file", r.validate->model_file},
                               {"input_shape", IntArray(r.validate->input_shape)},
                               {"expected_classes", r.validate->expected_classes}};
  }
  if (r.build) {
    const auto& b = *r.build;
    bj::object build{{"master_file", b.master_file},
                     {"output_file", b.output_file},
                     {"input_shape", IntArray(b.input_shape)},
                     {"num_classes", b.num_classes},
                     {"dataset", b.dataset},
                     {"budget", wire::ToJson(b.budget)},
                     {"options", ToJson(b.options)}};
    if (b.resume_file) build["resume_file"] = *b.resume_file;
    o["build"] = std::move(build);
  }
  return o;
}

Result<WorkerRequest> RequestFromJson(const bj::object& o) {
  WorkerRequest r;
  EP_ASSIGN_OR_RETURN(std::int64_t threads, json::GetInt(o, "threads"));
  r.threads = static_cast<int>(threads);
  if (const auto* v = json::FindField(o, "validate"); v && v->is_object()) {
    const auto& j = v->as_object();
    ValidateRequest val;
    EP_ASSIGN_OR_RETURN(val.model_file, json::GetString(j, "model_file"));
    EP_ASSIGN_OR_RETURN(val.input_shape, Ints(j, "input_shape"));
    EP_ASSIGN_OR_RETURN(val.expected_classes, json::GetInt(j, "expected_classes"));
    r.validate = std::move(val);
  }
  if (const auto* v = json::FindField(o, "build"); v && v->is_object()) {
    const auto& j = v->as_object();
    BuildJobRequest b;
    EP_ASSIGN_OR_RETURN(b.master_file, json::GetString(j, "master_file"));
    EP_ASSIGN_OR_RETURN(b.output_file, json::GetString(j, "output_file"));
    EP_ASSIGN_OR_RETURN(b.resume_file, json::GetOptString(j, "resume_file"));
    EP_ASSIGN_OR_RETURN(b.input_shape, Ints(j, "input_shape"));
    EP_ASSIGN_OR_RETURN(b.num_classes, json::GetInt(j, "num_classes"));
    EP_ASSIGN_OR_RETURN(b.dataset, json::GetString(j, "dataset"));
    EP_ASSIGN_OR_RETURN(bj::object budget, json::GetObject(j, "budget"));
    EP_ASSIGN_OR_RETURN(b.budget, wire::BudgetFromJson(budget));
    EP_ASSIGN_OR_RETURN(bj::object options, json::GetObject(j, "options"));
    EP_ASSIGN_OR_RETURN(b.options, OptionsFromJson(options));
    r.build = std::move(b);
  }
  if (r.validate.has_value() == r.build.has_value()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_request",
                     "a worker request holds exactly one of validate and build");
  }
  return r;
}

bj::object ToJson(const catalog::MasterFacts& f) {
  return bj::object{{"num_classes", f.num_classes},
                    {"parameters", f.parameters},
                    {"macs", f.macs},
                    {"activation_bytes", f.activation_bytes}};
}

Result<catalog::MasterFacts> FactsFromJson(const bj::object& o) {
  catalog::MasterFacts f;
  EP_ASSIGN_OR_RETURN(f.num_classes, json::GetInt(o, "num_classes"));
  EP_ASSIGN_OR_RETURN(f.parameters, json::GetInt(o, "parameters"));
  EP_ASSIGN_OR_RETURN(f.macs, json::GetInt(o, "macs"));
  EP_ASSIGN_OR_RETURN(f.activation_bytes, json::GetInt(o, "activation_bytes"));
  return f;
}

bj::object ToJson(const catalog::BuildOutcome& o) {
  return bj::object{{"parameters", o.parameters},
                    {"macs", o.macs},
                    {"activation_bytes", o.activation_bytes},
                    {"accuracy", o.accuracy},
                    {"master_accuracy", o.master_accuracy},
                    {"normalize_mean", DoubleArray(o.normalize_mean)},
                    {"normalize_std", DoubleArray(o.normalize_std)},
                    {"pruning_steps", o.pruning_steps},
                    {"finetune_steps", o.finetune_steps},
                    {"finetune_steps_planned", o.finetune_steps_planned},
                    {"min_keep_ratio", o.min_keep_ratio}};
}

Result<catalog::BuildOutcome> OutcomeFromJson(const bj::object& o) {
  catalog::BuildOutcome out;
  EP_ASSIGN_OR_RETURN(out.parameters, json::GetInt(o, "parameters"));
  EP_ASSIGN_OR_RETURN(out.macs, json::GetInt(o, "macs"));
  EP_ASSIGN_OR_RETURN(out.activation_bytes, json::GetInt(o, "activation_bytes"));
  EP_ASSIGN_OR_RETURN(out.accuracy, json::GetDouble(o, "accuracy"));
  EP_ASSIGN_OR_RETURN(out.master_accuracy, json::GetDouble(o, "master_accuracy"));
  EP_ASSIGN_OR_RETURN(out.normalize_mean, Doubles(o, "normalize_mean"));
  EP_ASSIGN_OR_RETURN(out.normalize_std, Doubles(o, "normalize_std"));
  EP_ASSIGN_OR_RETURN(out.pruning_steps, json::GetInt(o, "pruning_steps"));
  EP_ASSIGN_OR_RETURN(out.finetune_steps, json::GetInt(o, "finetune_steps"));
  EP_ASSIGN_OR_RETURN(out.finetune_steps_planned, json::GetInt(o, "finetune_steps_planned"));
  EP_ASSIGN_OR_RETURN(out.min_keep_ratio, json::GetDouble(o, "min_keep_ratio"));
  return out;
}

std::string SandboxEvent(const std::string& description) {
  return Line({{"event", "sandbox"}, {"describe", description}});
}

std::string ProgressEvent(std::string_view phase, double percent) {
  return Line({{"event", "progress"}, {"phase", phase}, {"percent", percent}});
}

std::string CheckpointEvent(const std::string& file) {
  return Line({{"event", "checkpoint"}, {"file", file}});
}

std::string ResultEvent(bj::object result) {
  return Line({{"event", "result"}, {"result", std::move(result)}});
}

std::string ErrorEvent(const std::string& code, const std::string& message,
                       const std::string& detail) {
  return Line({{"event", "error"}, {"code", code}, {"message", message}, {"detail", detail}});
}

}  // namespace edgeprune::model_worker
