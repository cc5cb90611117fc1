#include "server/models/commands.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>

#include "edgeprune/common/cli.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/shape.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/dataset.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/model_card.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/train.hpp"
#include "server/models/zoo.hpp"

namespace edgeprune::models {
namespace {

int Fail(const char* command, const Error& e) {
  std::fprintf(stderr, "edgeprune-server %s: %s (%s)\n", command, e.message.c_str(), e.code.c_str());
  return 1;
}

std::string NowIso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct DataFlags {
  std::string dataset = "fashion-mnist";
  std::string data_dir = kDefaultFashionMnistDir;
  std::int64_t train_limit = 0;
  std::int64_t test_limit = 0;
  std::uint64_t split_seed = SplitOptions{}.seed;

  void Add(CLI::App& app) {
    app.add_option("--dataset", dataset,
                   "fashion-mnist, synthetic:CxHxW:K or a data set file (.npz; IDX pairs in a zip, "
                   "tar or directory)")->capture_default_str();
    app.add_option("--data-dir", data_dir, "directory of the IDX files")->capture_default_str();
    app.add_option("--train-limit", train_limit, "use only the first N training images (0 = all)");
    app.add_option("--test-limit", test_limit, "use only the first N test images (0 = all)");
    app.add_option("--split-seed", split_seed, "seed of the train/validation split");
  }
  Result<DatasetSplits> Load(const Normalization* norm) const {
    SplitOptions s;
    s.seed = split_seed;
    s.train_limit = train_limit;
    s.test_limit = test_limit;
    return LoadDataset(dataset, data_dir, s, norm);
  }
};

// The card next to a model, when there is one; its normalization and input shape are reused.
Result<std::optional<ModelCard>> CardIfPresent(const std::string& card_path) {
  std::error_code ec;
  if (card_path.empty() || !std::filesystem::exists(card_path, ec)) {
    return std::optional<ModelCard>();
  }
  EP_ASSIGN_OR_RETURN(ModelCard card, ReadModelCard(card_path));
  return std::optional<ModelCard>(std::move(card));
}

}  // namespace

int RunTrainCommand(int argc, char** argv) {
  CLI::App app{"Train a master model and write it with its JSON model card", "train"};
  std::string arch, from, out, card_path;
  DataFlags data;
  TrainOptions opt;
  ModelSpec spec;
  LatencyOptions lat;
  lat.runs = 50;
  app.add_option("--arch", arch,
                 "architecture: mlp, mlp-bn (feature vectors), cnn1d (signals [C, L]), lenet5, "
                 "vgg, resnet, mobilenet");
  app.add_option("--from", from, "fine-tune this TorchScript model instead of building --arch");
  app.add_option("--out", out, "where to write the trained model (.pt)")->required();
  app.add_option("--card", card_path, "model card path (default: --out with .json)");
  data.Add(app);
  app.add_option("--epochs", opt.epochs, "training epochs")->capture_default_str();
  app.add_option("--batch-size", opt.batch_size, "batch size")->capture_default_str();
  app.add_option("--optimizer", opt.optimizer, "adam or sgd")->capture_default_str();
  app.add_option("--lr", opt.learning_rate, "peak learning rate (cosine-decayed)")->capture_default_str();
  app.add_option("--momentum", opt.momentum, "sgd momentum")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "L2 weight decay")->capture_default_str();
  app.add_option("--label-smoothing", opt.label_smoothing, "label smoothing");
  app.add_option("--warmup-steps", opt.warmup_steps, "linear warm-up steps");
  app.add_flag("--augment", opt.augment, "random flips and 2-px shifts");
  app.add_option("--max-steps", opt.max_steps_per_epoch, "cap on steps per epoch (0 = all)");
  app.add_option("--seed", opt.seed, "seed of initialisation, shuffling and augmentation")->capture_default_str();
  app.add_option("--threads", opt.threads, "intra-op threads for training (0 = LibTorch default)");
  app.add_option("--width", spec.width, "channel/width multiplier of the architecture")->capture_default_str();
  app.add_option("--latency-runs", lat.runs, "timed batch-1 runs for the card")->capture_default_str();
  app.add_option("--latency-threads", lat.threads, "intra-op threads for latency")->capture_default_str();
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  if (arch.empty() == from.empty()) {
    std::fprintf(stderr, "edgeprune-server train: give exactly one of --arch or --from\n");
    return 2;
  }
  auto splits = data.Load(nullptr);
  if (!splits.ok()) return Fail("train", splits.error());
  torch::jit::Module module;
  if (!from.empty()) {
    auto loaded = LoadModule(from);
    if (!loaded.ok()) return Fail("train", loaded.error());
    module = *loaded;
  } else {
    spec.input_shape = splits->train.image_shape();
    spec.num_classes = splits->train.num_classes();
    spec.seed = opt.seed;
    auto built = BuildMaster(arch, spec);
    if (!built.ok()) {
      Error e = built.error();
      // Only an image net refuses [C, L] samples; they are most often grey images saved as
      // [N, H, W], which an .npz can declare as such.
      if (e.code == "invalid_shape" && spec.input_shape.size() == 2) {
        e.message += "; the data set's samples are [C, L] signals: grey images saved as "
                     "[N, H, W] in an .npz are images when it also holds layout='HW'";
      }
      return Fail("train", e);
    }
    module = *built;
  }
  auto trained = Train(module, splits->train, &splits->validation, opt);
  if (!trained.ok()) {
    return Fail("train", from.empty() ? trained.error() : trained.error().WithContext(from));
  }
  auto test = EvaluateAccuracy(module, splits->test);
  if (!test.ok()) return Fail("train", test.error());
  auto val = EvaluateAccuracy(module, splits->validation);
  if (!val.ok()) return Fail("train", val.error());
  auto cost = EstimateCost(module, splits->train.image_shape());
  if (!cost.ok()) return Fail("train", cost.error());
  auto latency = MeasureLatency(module, splits->train.image_shape(), lat);
  if (!latency.ok()) return Fail("train", latency.error());
  if (auto st = SaveModule(module, out); !st.ok()) return Fail("train", st.error());

  ModelCard card;
  card.name = std::filesystem::path(out).stem().string();
  card.architecture = from.empty() ? arch : "external";
  card.dataset = data.dataset;
  card.input_shape = splits->train.image_shape();
  card.classes = splits->train.class_names;
  card.normalization_mean = splits->train.normalization.mean;
  card.normalization_std = splits->train.normalization.std;
  card.test_accuracy = test->accuracy;
  card.validation_accuracy = val->accuracy;
  card.params = cost->params;
  card.param_bytes = cost->param_bytes;
  card.macs = cost->macs;
  card.peak_activation_bytes = cost->peak_activation_bytes;
  card.latency_p50_ms = latency->p50_ms;
  card.latency_p95_ms = latency->p95_ms;
  card.latency_threads = latency->threads;
  card.training = {opt.optimizer, opt.learning_rate, opt.momentum, opt.weight_decay, opt.epochs,
                   opt.batch_size, opt.augment, opt.seed, SetIntraOpThreads(0),
                   trained->seconds};
  card.created_at = NowIso8601();
  if (card_path.empty()) card_path = CardPathFor(out);
  if (auto st = WriteModelCard(card, card_path); !st.ok()) return Fail("train", st.error());
  std::printf("%s: test accuracy %.2f%%, %lld params, %lld MACs, latency p50 %.3f ms, trained in "
              "%.0f s; wrote %s and %s\n",
              card.name.c_str(), 100.0 * test->accuracy, static_cast<long long>(cost->params),
              static_cast<long long>(cost->macs), latency->p50_ms, trained->seconds, out.c_str(),
              card_path.c_str());
  return 0;
}

int RunEvaluateCommand(int argc, char** argv) {
  CLI::App app{"Measure a model's accuracy, batch-1 latency and batch throughput", "evaluate"};
  std::string model_path, card_path, split = "test";
  DataFlags data;
  LatencyOptions lat;
  std::int64_t throughput_batch = 32;
  app.add_option("--model", model_path, "TorchScript model (.pt)")->required();
  app.add_option("--card", card_path, "model card (default: --model with .json, if present)");
  data.Add(app);
  app.add_option("--split", split, "test or validation")->capture_default_str();
  app.add_option("--threads", lat.threads, "intra-op threads")->capture_default_str();
  app.add_option("--runs", lat.runs, "timed runs")->capture_default_str();
  app.add_option("--warmup", lat.warmup, "untimed warm-up runs")->capture_default_str();
  app.add_option("--throughput-batch", throughput_batch, "batch size for throughput")->capture_default_str();
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  if (split != "test" && split != "validation") {
    std::fprintf(stderr, "edgeprune-server evaluate: --split must be test or validation\n");
    return 2;
  }
  auto module = LoadModule(model_path);
  if (!module.ok()) return Fail("evaluate", module.error());
  auto card = CardIfPresent(card_path.empty() ? CardPathFor(model_path) : card_path);
  if (!card.ok()) return Fail("evaluate", card.error());
  std::optional<Normalization> norm;
  if (*card) norm = Normalization{(*card)->normalization_mean, (*card)->normalization_std};
  auto splits = data.Load(norm ? &*norm : nullptr);
  if (!splits.ok()) return Fail("evaluate", splits.error());
  const Dataset& d = split == "test" ? splits->test : splits->validation;
  auto acc = EvaluateAccuracy(*module, d);
  if (!acc.ok()) return Fail("evaluate", acc.error().WithContext(model_path));
  auto latency = MeasureLatency(*module, d.image_shape(), lat);
  if (!latency.ok()) return Fail("evaluate", latency.error().WithContext(model_path));
  LatencyOptions tput = lat;
  tput.batch_size = throughput_batch;
  tput.runs = std::max(5, lat.runs / 4);
  tput.warmup = std::max(1, lat.warmup / 4);
  auto throughput = MeasureLatency(*module, d.image_shape(), tput);
  if (!throughput.ok()) return Fail("evaluate", throughput.error().WithContext(model_path));
  boost::json::object o;
  o["model"] = model_path;
  o["dataset"] = d.name;
  o["images"] = acc->total;
  o["accuracy"] = acc->accuracy;
  o["threads"] = lat.threads;
  o["latency_batch1"] = boost::json::object{{"p50_ms", latency->p50_ms},
                                            {"p95_ms", latency->p95_ms},
                                            {"mean_ms", latency->mean_ms},
                                            {"runs", latency->runs}};
  o["throughput"] = boost::json::object{{"batch_size", throughput_batch},
                                        {"images_per_second", throughput->items_per_second}};
  std::printf("%s\n", json::SerializePretty(o).c_str());
  return 0;
}

int RunCostCommand(int argc, char** argv) {
  CLI::App app{"Print a model's parameters, MACs and activation memory per layer", "cost"};
  std::string model_path, shape_text;
  bool as_json = false;
  app.add_option("--model", model_path, "TorchScript model (.pt)")->required();
  app.add_option("--input-shape", shape_text, "C,H,W (default: from the model card)");
  app.add_flag("--json", as_json, "print JSON instead of a table");
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  std::vector<std::int64_t> shape;
  if (!shape_text.empty()) {
    auto parsed = ParseShape(shape_text);
    if (!parsed.ok()) return Fail("cost", parsed.error());
    shape = *parsed;
  } else {
    auto card = CardIfPresent(CardPathFor(model_path));
    if (!card.ok()) return Fail("cost", card.error());
    if (!*card) {
      std::fprintf(stderr, "edgeprune-server cost: no model card next to %s; give --input-shape\n",
                   model_path.c_str());
      return 2;
    }
    shape = (*card)->input_shape;
  }
  auto module = LoadModule(model_path);
  if (!module.ok()) return Fail("cost", module.error());
  auto report = EstimateCost(*module, shape);
  if (!report.ok()) return Fail("cost", report.error().WithContext(model_path));
  if (as_json) {
    std::printf("%s\n", json::SerializePretty(report->ToJson()).c_str());
  } else {
    std::printf("%s", report->ToTable().c_str());
  }
  return 0;
}

}  // namespace edgeprune::models
