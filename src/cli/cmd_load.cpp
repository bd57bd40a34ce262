// `tally load`: batch loads of files into a data directory, with a data-quality report.

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "ingest/file_loader.h"
#include "ledger/world_replay.h"

namespace tally {

namespace {

struct LoadFlags {
  std::string data;
  std::vector<std::string> files;
  std::string table;
  std::optional<std::string> unknown_subscribers;
  bool json = false;
  bool quiet = false;
  bool ledger = false;
};

// The files of a generated world without the families the ledger writes itself.
std::vector<std::string> WithoutLedgerFamilies(const std::string& world) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(world)) {
    const std::string name = entry.path().filename().string();
    if (name == Name(EventFamily::kLifecycle) || name == Name(EventFamily::kRecharge) ||
        name == Name(EventFamily::kCharge) || name == "manifest.json") {
      continue;
    }
    out.push_back(entry.path().string());
  }
  return out;
}

}  // namespace

CommandFn RegisterLoad(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<LoadFlags>();
  app.add_option("--data", f->data, "Data directory (created if missing)")->required();
  app.add_option("files", f->files,
                 "CSV, NDJSON or Parquet files, or directories such as a `tally generate` output")
      ->required();
  app.add_option("--table", f->table, "Load every file into this event family or table");
  app.add_option("--unknown-subscribers", f->unknown_subscribers,
                 "flag (store and report) or reject events of unknown subscribers [flag]");
  app.add_flag("--json", f->json, "Print the data-quality reports as JSON, one per line");
  app.add_flag("--quiet", f->quiet, "Print only failures");
  app.add_flag(
      "--ledger", f->ledger,
      "The files are one `tally generate` world (CSV): replay its accounts, recharges, plan "
      "changes and "
      "usage through the ledger, which rates the usage and writes recharges, lifecycle events and "
      "charges to the store (docs/ledger.md)");
  return [f, &ctx]() {
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally load: " << cfg.status().message() << "\n";
      return 2;
    }
    if (f->unknown_subscribers) {
      cfg->Override("ingest.unknown_subscribers", *f->unknown_subscribers,
                    "flag --unknown-subscribers");
    }
    if (f->ledger) {
      if (f->files.size() != 1 || !std::filesystem::is_directory(f->files[0])) {
        std::cerr << "tally load: --ledger takes one directory written by `tally generate`\n";
        return 2;
      }
      // The replay rates the usage in time order; the pipeline must not rate it again first.
      cfg->Override("ledger.rating", "off", "flag --ledger");
    }
    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) {
      std::cerr << "tally load: " << session.status().message() << "\n";
      return SessionExitCode(session.status());
    }
    FileLoadOptions lo;
    lo.table = f->table;
    lo.scratch_dir = session->data_dir;
    FileLoader loader(session->pipeline.get(), lo);
    auto summary = loader.Load(f->ledger ? WithoutLedgerFamilies(f->files[0]) : f->files);
    if (!summary.ok()) {
      std::cerr << "tally load: " << summary.status().message() << "\n";
      return 2;
    }
    std::optional<WorldReplayReport> replay;
    if (f->ledger) {
      auto r = ReplayWorld(f->files[0], session->ledger.get());
      if (!r.ok()) {
        std::cerr << "tally load: ledger replay: " << r.status().message() << "\n";
        return 1;
      }
      replay = std::move(*r);
    }
    // Deliver what the ledger wrote while rating this load (its charges) before compacting.
    session->relay.reset();
    Status relayed =
        OutboxRelay::DrainOnce(session->ledger.get(), session->pipeline.get()).status();
    if (!relayed.ok())
      std::cerr << "tally load: ledger outbox (delivered on the next start): " << relayed.message()
                << "\n";
    Status compacted = session->pipeline->Compact();
    for (const FileLoadResult& r : summary->files) {
      if (!r.status.ok()) {
        std::cerr << "tally load: " << r.status.message() << "\n";
        continue;
      }
      if (f->quiet) continue;
      if (f->json) {
        if (!r.report.load_id.empty()) std::cout << r.report.ToJson() << "\n";
      } else if (r.report.load_id.empty()) {
        std::cout << "imported " << r.path << " as " << r.table << "\n";
      } else {
        std::cout << r.report.ToText();
      }
    }
    for (const std::string& s : summary->skipped) {
      if (!f->quiet && !f->json) std::cout << "skipped " << s << " (not a table tally knows)\n";
    }
    if (!f->quiet && !f->json) {
      const IngestCounts& c = summary->total.counts;
      std::cout << "total: read " << c.read << ", accepted " << c.accepted << ", late " << c.late
                << ", duplicate " << c.duplicate << ", rejected " << c.rejected << " in "
                << summary->files.size() << " files\n";
    }
    if (replay && !f->quiet) std::cout << replay->ToText();
    if (!compacted.ok()) {
      std::cerr << "tally load: compaction failed (rows stay staged and readable): "
                << compacted.message() << "\n";
      return 1;
    }
    return summary->ok() && (!replay || replay->failures == 0) ? 0 : 1;
  };
}

}  // namespace tally
