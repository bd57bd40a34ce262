// tally: embedded analytics for usage-based businesses. One binary, several subcommands.

#include <iostream>
#include <map>

#include "cli/cmd_ledger.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"tally: embedded analytics for telecom and usage-based businesses"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tally 0.1.0");
  tally::CliContext ctx;
  ctx.env = tally::ProcessEnvironment();
  app.add_option("--config", ctx.config_path,
                 "TOML config file; TALLY_<SECTION>_<KEY> environment variables override it")
      ->envname("TALLY_CONFIG");

  std::map<CLI::App*, tally::CommandFn> commands;
  auto add = [&](const char* name, const char* help, auto reg) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands[sub] = reg(*sub, ctx);
  };
  add("generate", "Write a deterministic synthetic operator with ground truth",
      tally::RegisterGenerate);
  add("summary", "Print a readable summary of a generated world", tally::RegisterSummary);
  add("schema", "Print the schema of every table (the data dictionary)", tally::RegisterSchema);
  add("load", "Load CSV, NDJSON or Parquet files into a data directory, with a data-quality report",
      tally::RegisterLoad);
  add("retention", "Drop whole days of history older than a horizon", tally::RegisterRetention);
  add("serve",
      "Run the server: HTTP ingest (and, later, the API and dashboards) and Kafka consumption",
      tally::RegisterServe);
  add("ledger", "Accounts, recharges, plans and partners in the ledger (docs/ledger-api.md)",
      tally::RegisterLedger);
  add("reconcile", "Check that the ledger's totals equal the event store's, day by day",
      tally::RegisterReconcile);
  add("query",
      "Run a semantic query (measures, dimensions, filters) on a data directory (docs/metrics.md)",
      tally::RegisterQuery);
  add("metrics", "Print the metric catalogue: every measure and dimension, as JSON",
      tally::RegisterMetrics);
  add("insights",
      "Funnel, pricing elasticity, A/B experiments and power from the data (docs/insights.md)",
      tally::RegisterInsights);
  add("keys", "API keys and embed tokens (docs/security.md)", tally::RegisterKeys);
  add("train", "Train a new version of the churn or LTV model (docs/models.md)",
      tally::RegisterTrain);
  add("models", "List model versions with their metrics, or activate one (docs/models.md)",
      tally::RegisterModels);
  add("cluster", "Start or stop a local ClickHouse cluster for the event store (docs/scale.md)",
      tally::RegisterCluster);

  // A first word that is no command: the parser would only say that one is required.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto& [sub, fn] : commands) known |= sub->get_name() == argv[1];
    if (!known) {
      std::cerr << "tally: unknown command '" << argv[1] << "'; tally --help lists them\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every other parse error (an unknown flag or command, a missing or
    // malformed value) is a usage error, 2, like a bad value found after parsing.
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (auto& [sub, fn] : commands) {
    if (sub->parsed()) return fn();
  }
  return 1;
}
