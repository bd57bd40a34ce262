// `tally reconcile`: proves that the ledger's totals equal the event store's, day by day.

#include <iostream>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "ledger/reconcile.h"

namespace tally {

namespace {

struct ReconcileFlags {
  std::string data;
  bool json = false;
};

}  // namespace

CommandFn RegisterReconcile(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<ReconcileFlags>();
  app.add_option("--data", f->data, "Data directory")->required()->check(CLI::ExistingDirectory);
  app.add_flag("--json", f->json, "Print the report as JSON");
  return [f, &ctx]() {
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally reconcile: " << cfg.status().message() << "\n";
      return 2;
    }
    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) {
      std::cerr << "tally reconcile: " << session.status().message() << "\n";
      return SessionExitCode(session.status());
    }
    // Deliver the outbox first: totals are compared once everything the ledger wrote is in the
    // store.
    session->relay.reset();
    auto relayed = OutboxRelay::DrainOnce(session->ledger.get(), session->pipeline.get());
    if (!relayed.ok()) {
      std::cerr << "tally reconcile: delivering the ledger's outbox: " << relayed.status().message()
                << "\n";
      return 1;
    }
    auto report = Reconcile(session->ledger.get(), session->pipeline.get());
    if (!report.ok()) {
      std::cerr << "tally reconcile: " << report.status().message() << "\n";
      return 1;
    }
    std::cout << (f->json ? report->ToJson() : report->ToText());
    return report->ok() ? 0 : 1;
  };
}

}  // namespace tally
