#pragma once
// `tally ledger`: the ledger from the command line (docs/ledger-api.md). Subcommands: activate,
// plan, status, recharge, refund, reverse, balance, invoices, plans, import-plans and
// import-partners, each against the ledger in `--data DIR`, printing text or (with --json) the
// same JSON the HTTP API answers with.

#include "cli/commands.h"

namespace tally {

CommandFn RegisterLedger(CLI::App& app, CliContext& ctx);

}  // namespace tally
