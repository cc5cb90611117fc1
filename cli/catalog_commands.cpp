// models, datasets, deploy: the catalog half of the operator API (server/api/model_routes.cpp,
// dataset_routes.cpp, deploy_routes.cpp). Uploads stream from disk with a meter on stderr.
#include <sys/stat.h>

#include <memory>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

Result<Reply> UploadFile(Session& s, const std::string& file, const std::string& path) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return UsageError("'" + file + "' is not a readable file");
  }
  const auto slash = file.find_last_of('/');
  UploadMeter meter(slash == std::string::npos ? file : file.substr(slash + 1));
  auto r = s.api->Upload(path, file, [&meter](std::uint64_t sent, std::uint64_t total) {
    meter.Update(sent, total);
  });
  meter.Finish();
  return r;
}

std::string ModelDetail(const bj::value& m) {
  return Describe(m, {"id", "name", "dataset", "input_shape", "num_classes", "class_names",
                      "parameters", "macs", "size_bytes", "sha256", "created_by"}) +
         "created:     " + TimeMs(Number(m, "created_at")) + " UTC\n";
}

std::string DatasetDetail(const bj::value& d) {
  return Describe(d, {"id", "name", "format", "dtype", "sample_shape", "num_classes", "class_names",
                      "size_bytes", "sha256", "created_by"}) +
         "train:        " + Field(Member(d, "train"), "count") + " samples\n" +
         "test:         " + Field(Member(d, "test"), "count") + " samples\n";
}

void AddModels(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("models", "master models and their variants")->require_subcommand(1);
  struct Upload { std::string file, name, dataset, input_shape, class_names; };
  auto u = std::make_shared<Upload>();
  auto* v = AddVerb(noun, "upload", "upload a TorchScript master (.pt)", chosen, Needs::kToken,
                    [u](Session& s) -> Status {
                      std::string q = "/api/v1/models?name=" + UrlEncode(u->name) + "&dataset=" + UrlEncode(u->dataset);
                      if (!u->input_shape.empty()) q += "&input_shape=" + UrlEncode(u->input_shape);
                      if (!u->class_names.empty()) q += "&class_names=" + UrlEncode(u->class_names);
                      EP_ASSIGN_OR_RETURN(auto r, UploadFile(s, u->file, q));
                      Print(s, r, ModelDetail);
                      return Ok();
                    });
  v->add_option("file", u->file, "the TorchScript file")->required();
  v->add_option("--name", u->name, "display name")->required();
  v->add_option("--dataset", u->dataset, "a data set id (ds-...), fashion-mnist or synthetic:CxHxW:K")->required();
  v->add_option("--input-shape", u->input_shape, "C,H,W (not needed with a data set id)");
  v->add_option("--class-names", u->class_names, "comma-separated class names");

  AddVerb(noun, "ls", "list models", chosen, Needs::kToken, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/models"));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "name", "dataset", "input", "params", "MACs", "size", "created (UTC)"});
      for (const auto& m : Items(list)) {
        t.Row({Field(m, "id"), Field(m, "name"), Field(m, "dataset"), Field(m, "input_shape"),
               Count(Number(m, "parameters")), Count(Number(m, "macs")), Bytes(Number(m, "size_bytes")),
               TimeMs(Number(m, "created_at"))});
      }
      return t.Render();
    });
    return Ok();
  });

  auto id = std::make_shared<std::string>();
  v = AddVerb(noun, "show", "one model", chosen, Needs::kToken, [id](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/models/" + UrlEncode(*id)));
    Print(s, r, ModelDetail);
    return Ok();
  });
  v->add_option("model", *id, "model id (mdl-...)")->required();

  auto vid = std::make_shared<std::string>();
  v = AddVerb(noun, "variants", "a model's variant ladder", chosen, Needs::kToken, [vid](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/models/" + UrlEncode(*vid) + "/variants"));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "bucket", "status", "params", "MACs", "accuracy", "size", "job", "error"});
      for (const auto& x : Items(list)) {
        t.Row({Field(x, "id"), Field(x, "bucket"), Field(x, "status"), Count(Number(x, "parameters")),
               Count(Number(x, "macs")), Fixed(Number(x, "accuracy"), 4), Bytes(Number(x, "size_bytes")),
               Field(x, "job_id"), Field(x, "error").substr(0, 60)});
      }
      return t.Render();
    });
    return Ok();
  });
  v->add_option("model", *vid, "model id")->required();
}

void AddDatasets(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("datasets", "operators' data sets")->require_subcommand(1);
  struct Upload { std::string file, name; };
  auto u = std::make_shared<Upload>();
  auto* v = AddVerb(noun, "upload", "upload a data set (.npz, or IDX pairs in a zip or tar)", chosen,
                    Needs::kToken, [u](Session& s) -> Status {
                      EP_ASSIGN_OR_RETURN(auto r, UploadFile(s, u->file, "/api/v1/datasets?name=" + UrlEncode(u->name)));
                      Print(s, r, DatasetDetail);
                      return Ok();
                    });
  v->add_option("file", u->file, "the data set file")->required();
  v->add_option("--name", u->name, "display name")->required();

  AddVerb(noun, "ls", "list data sets", chosen, Needs::kToken, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/datasets"));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "name", "format", "dtype", "sample shape", "classes", "size", "created (UTC)"});
      for (const auto& d : Items(list)) {
        t.Row({Field(d, "id"), Field(d, "name"), Field(d, "format"), Field(d, "dtype"),
               Field(d, "sample_shape"), Field(d, "num_classes"), Bytes(Number(d, "size_bytes")),
               TimeMs(Number(d, "created_at"))});
      }
      return t.Render();
    });
    return Ok();
  });

  auto id = std::make_shared<std::string>();
  v = AddVerb(noun, "show", "one data set", chosen, Needs::kToken, [id](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/datasets/" + UrlEncode(*id)));
    Print(s, r, DatasetDetail);
    return Ok();
  });
  v->add_option("dataset", *id, "data set id (ds-...)")->required();
}

void AddDeploy(CLI::App& app, Chosen& chosen) {
  struct Deploy { std::string model; std::vector<std::string> devices, tags; };
  auto d = std::make_shared<Deploy>();
  auto* v = AddVerb(&app, "deploy", "deploy a model to devices at once, without phases or gates", chosen,
                    Needs::kToken, [d](Session& s) -> Status {
                      if (d->devices.empty() == d->tags.empty()) {
                        return UsageError("give --device (repeatable) or --tag (repeatable), not both");
                      }
                      bj::array list;
                      for (const auto& x : d->devices.empty() ? d->tags : d->devices) list.emplace_back(x);
                      bj::object selector{{d->devices.empty() ? "tags" : "devices", std::move(list)}};
                      EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/deployments",
                                                              bj::serialize(bj::object{{"model", d->model}, {"selector", selector}})));
                      Print(s, r, [](const bj::value& x) {
                        const auto& builds = Member(x, "builds");
                        std::string out = "deployment " + Field(x, "id") + " of " + Field(x, "model_id") + ": " +
                                          std::to_string(builds.is_array() ? builds.as_array().size() : 0) +
                                          " builds started (edgeprune jobs watch)\n";
                        Table t({"device", "bucket", "state", "variant", "reason"});
                        if (const auto& a = Member(x, "assignments"); a.is_array()) {
                          for (const auto& y : a.as_array()) {
                            t.Row({Field(y, "device_id"), Field(y, "bucket"), Field(y, "state"), Field(y, "variant_id"),
                                   Field(y, "reason")});
                          }
                        }
                        return out + t.Render();
                      });
                      return Ok();
                    });
  v->add_option("model", d->model, "model id (mdl-...)")->required();
  v->add_option("--device", d->devices, "a device id (repeatable)");
  v->add_option("--tag", d->tags, "devices carrying every one of these tags (repeatable)");
}

}  // namespace

void AddCatalogCommands(CLI::App& app, Chosen& chosen) {
  AddModels(app, chosen);
  AddDatasets(app, chosen);
  AddDeploy(app, chosen);
}

}  // namespace edgeprune::ctl
