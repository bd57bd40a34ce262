#pragma once
// Subcommands of the `tally` binary. Each registers its flags on the CLI11 app and returns the
// function that runs it.

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "core/config.h"

namespace tally {

//! Shared by all commands: the config file path (--config) and the process environment.
struct CliContext {
  std::string config_path;
  Environment env;
};

using CommandFn = std::function<int()>;

CommandFn RegisterGenerate(CLI::App& app, CliContext& ctx);
CommandFn RegisterSummary(CLI::App& app, CliContext& ctx);
CommandFn RegisterSchema(CLI::App& app, CliContext& ctx);
CommandFn RegisterLoad(CLI::App& app, CliContext& ctx);
CommandFn RegisterRetention(CLI::App& app, CliContext& ctx);
CommandFn RegisterServe(CLI::App& app, CliContext& ctx);
CommandFn RegisterReconcile(CLI::App& app, CliContext& ctx);
// `tally query` and `tally metrics`: the metrics layer (src/cli/cmd_query.cpp, docs/metrics.md).
CommandFn RegisterQuery(CLI::App& app, CliContext& ctx);
CommandFn RegisterMetrics(CLI::App& app, CliContext& ctx);
// `tally insights`: funnel, pricing, experiments, power (src/cli/cmd_insights.cpp, docs/insights.md).
CommandFn RegisterInsights(CLI::App& app, CliContext& ctx);
// `tally keys`: API keys and embed tokens (src/cli/cmd_keys.cpp, docs/security.md).
CommandFn RegisterKeys(CLI::App& app, CliContext& ctx);
// `tally train` and `tally models`: churn and LTV models (src/cli/cmd_train.cpp, docs/models.md).
CommandFn RegisterTrain(CLI::App& app, CliContext& ctx);
CommandFn RegisterModels(CLI::App& app, CliContext& ctx);
// `tally cluster`: a local ClickHouse cluster (src/cli/cmd_cluster.cpp, docs/scale.md).
CommandFn RegisterCluster(CLI::App& app, CliContext& ctx);

}  // namespace tally
