// `tally train` and `tally models`: the churn and LTV model registry (docs/models.md).
//
//   tally train  --data DIR --model churn|ltv [--cutoff YYYY-MM-DD] [--json]
//   tally models list     --data DIR [--json]
//   tally models activate --data DIR --model churn|ltv --version N
//
// Training opens the store (so `tally serve` must not be running on DIR), writes a new version
// and prints its holdout metrics. Listing and activating only touch DIR/models.

#include <simdjson.h>

#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "insights/models/registry.h"
#include "insights/models/training.h"
#include "metrics/metrics_engine.h"

namespace tally {

namespace {

struct TrainFlags {
  std::string data;
  std::string model;
  std::string cutoff;
  int churn_days = 30;
  int ltv_days = 60;
  int rounds = 0;
  int train_cutoffs = 4;
  int step_days = 15;
  std::vector<std::string> params;
  bool json = false;
};

struct ModelsFlags {
  std::string action;
  std::string data;
  std::string model;
  int version = 0;
  bool json = false;
};

int Fail(std::string_view cmd, const Status& st, int code) {
  std::cerr << "tally " << cmd << ": " << st.message() << "\n";
  return code;
}

void PrintPairs(const std::vector<std::pair<std::string, double>>& pairs) {
  for (const auto& [k, v] : pairs) std::cout << " " << k << "=" << std::setprecision(4) << v;
}

// One line per version: "churn v3 (active) cutoff=... auc=0.8 ... baseline auc=0.7".
Status PrintVersions(const ModelRegistry& registry, bool json) {
  if (json) std::cout << "[";
  bool first = true;
  for (ModelKind kind : {ModelKind::kChurn, ModelKind::kLtv}) {
    TALLY_ASSIGN_OR_RETURN(std::vector<int> versions, registry.Versions(kind));
    TALLY_ASSIGN_OR_RETURN(std::optional<int> active, registry.Active(kind));
    for (int v : versions) {
      TALLY_ASSIGN_OR_RETURN(std::string meta, registry.Metadata(kind, v));
      if (json) {
        std::cout << (first ? "" : ",")
                  << "{\"active\":" << (active && *active == v ? "true" : "false")
                  << ",\"meta\":" << meta << "}";
        first = false;
        continue;
      }
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      if (parser.parse(meta).get(doc) != simdjson::SUCCESS) {
        return Status::Corruption(registry.PathOf(kind, v, "meta.json") + ": not JSON");
      }
      std::cout << ModelName(kind) << " v" << v << (active && *active == v ? " (active)" : "");
      std::string_view s;
      if (doc["created"].get(s) == simdjson::SUCCESS) std::cout << " created=" << s;
      if (doc["cutoff"].get(s) == simdjson::SUCCESS) std::cout << " cutoff=" << s;
      for (const char* section : {"metrics", "baseline"}) {
        simdjson::dom::object o;
        auto el = doc[section];
        if (std::string_view(section) == "baseline") el = el["metrics"];
        if (el.get(o) != simdjson::SUCCESS) continue;
        std::cout << (std::string_view(section) == "baseline" ? " | baseline" : "");
        for (auto [k, val] : o) {
          double d = 0;
          if (val.get(d) == simdjson::SUCCESS) {
            std::cout << " " << k << "=" << std::setprecision(4) << d;
          }
        }
      }
      std::cout << "\n";
    }
  }
  if (json) std::cout << "]\n";
  return Status::Ok();
}

}  // namespace

CommandFn RegisterTrain(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<TrainFlags>();
  app.add_option("--data", f->data, "Data directory")->required();
  app.add_option("--model", f->model, "churn or ltv")->required();
  app.add_option("--cutoff", f->cutoff,
                 "Holdout cutoff YYYY-MM-DD (default: the horizon before the newest data)");
  app.add_option("--churn-days", f->churn_days, "Churn label horizon in days [30]");
  app.add_option("--ltv-days", f->ltv_days, "LTV label horizon in days [60]");
  app.add_option("--rounds", f->rounds, "Boosting rounds (default: the model's)");
  app.add_option("--param", f->params,
                 "XGBoost parameter name=value, repeatable; replaces the model's defaults");
  app.add_option("--train-cutoffs", f->train_cutoffs, "Training cutoffs stacked [4]");
  app.add_option("--step-days", f->step_days, "Days between stacked training cutoffs [15]");
  app.add_flag("--json", f->json, "Print the new version's metadata as JSON");
  return [f, &ctx]() {
    auto kind = ParseModelKind(f->model);
    if (!kind.ok()) return Fail("train", kind.status(), 2);
    TrainOptions options;
    options.kind = *kind;
    options.horizons.churn_days = f->churn_days;
    options.horizons.ltv_days = f->ltv_days;
    options.rounds = f->rounds;
    options.max_train_cutoffs = f->train_cutoffs;
    options.stack_step_days = f->step_days;
    for (const std::string& kv : f->params) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail("train", Status::InvalidArgument("--param: '" + kv + "' is not name=value"), 2);
      }
      options.params.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    if (!f->cutoff.empty()) {
      auto d = ParseDate(f->cutoff);
      if (!d.ok())
        return Fail("train", Status::InvalidArgument("--cutoff: " + d.status().message()), 2);
      options.cutoff = *d;
    }
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) return Fail("train", cfg.status(), 2);
    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) return Fail("train", session.status(), SessionExitCode(session.status()));
    MetricsEngine engine(MetricCatalogue::Builtin(), session->pipeline.get());
    ModelRegistry registry(f->data);
    auto report = TrainModel(engine, registry, options);
    if (!report.ok()) {
      return Fail("train", report.status(),
                  report.status().code() == Status::Code::kInvalidArgument ? 2 : 1);
    }
    if (f->json) {
      std::cout << report->meta_json << "\n";
      return 0;
    }
    std::cout << ModelName(*kind) << " v" << report->version << ": holdout "
              << FormatDate(report->holdout_cutoff) << " (" << report->holdout_rows
              << " subscribers), trained on " << report->train_rows << " rows;";
    PrintPairs(report->metrics);
    std::cout << " | baseline";
    PrintPairs(report->baseline);
    std::cout << "\nscored " << report->scored_rows << " subscribers as of "
              << FormatTimestamp(report->scored_at) << "\ntop features:";
    for (size_t i = 0; i < std::min<size_t>(5, report->importance.size()); ++i) {
      std::cout << " " << report->importance[i].first;
    }
    std::cout << "\n";
    return 0;
  };
}

CommandFn RegisterModels(CLI::App& app, CliContext&) {
  auto f = std::make_shared<ModelsFlags>();
  app.add_option("action", f->action, "list or activate")->required();
  app.add_option("--data", f->data, "Data directory")->required();
  app.add_option("--model", f->model, "churn or ltv (activate)");
  app.add_option("--version", f->version, "Version to activate");
  app.add_flag("--json", f->json, "list: print every version's metadata as JSON");
  return [f]() {
    ModelRegistry registry(f->data);
    if (f->action == "list") {
      Status st = PrintVersions(registry, f->json);
      return st.ok() ? 0 : Fail("models", st, 1);
    }
    if (f->action == "activate") {
      auto kind = ParseModelKind(f->model);
      if (!kind.ok()) return Fail("models", kind.status(), 2);
      Status st = registry.Activate(*kind, f->version);
      if (!st.ok()) return Fail("models", st, 2);
      std::cout << ModelName(*kind) << " v" << f->version << " is active\n";
      return 0;
    }
    return Fail("models",
                Status::InvalidArgument("action: '" + f->action + "' is not list or activate"), 2);
  };
}

}  // namespace tally
