// `tally ledger`: accounts, recharges, plans and partners in the ledger of a data directory.
//
// Every flag is taken as text and parsed here rather than by CLI11, so that a bad value is a
// usage error (exit 2) whose message names the flag, the same as a missing one. A failed ledger
// operation exits 1. With --json, results are printed in the HTTP API's shapes (api/ledger_api.h).

#include "cli/cmd_ledger.h"

#include <charconv>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "api/ledger_api.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "ingest/batch_decoder.h"
#include "ingest/csv_file.h"
#include "ledger/ledger.h"
#include "model/record_codec.h"

namespace tally {

namespace {

// The flags of every subcommand. Only one subcommand runs, so flags of the same name share a
// member.
struct LedgerFlags {
  std::optional<Config> config;  // loaded before the subcommand runs
  std::string data;
  bool json = false;
  std::string subscriber, partner, plan, region, ts, opening_balance;
  std::string msisdn, imsi, name, country, city, device_type;
  std::string action;
  std::string amount, key, currency, channel, payment_status, event_id;
  std::string recharge;
  std::string file;
};

// ---- Errors -------------------------------------------------------------------------------

int Report(std::string_view command, const Status& st, int code) {
  std::cerr << "tally ledger " << command << ": " << st.message() << "\n";
  return code;
}
// A bad or missing flag: exit 2.
int UsageError(std::string_view command, const Status& st) {
  return Report(command, st, 2);
}
// The ledger or a file refused: exit 1.
int Failed(std::string_view command, const Status& st) {
  return Report(command, st, 1);
}

// ---- Flag values --------------------------------------------------------------------------

Status Required(std::string_view flag, const std::string& value) {
  if (value.empty()) return Status::InvalidArgument(std::string(flag) + " is required");
  return Status::Ok();
}

Result<int64_t> IntFlag(std::string_view flag, const std::string& text) {
  TALLY_RETURN_IF_ERROR(Required(flag, text));
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(flag) + " '" + text + "': expected an integer");
  }
  return v;
}

template <typename Id>
Result<Id> IdFlag(std::string_view flag, const std::string& text) {
  TALLY_ASSIGN_OR_RETURN(int64_t v, IntFlag(flag, text));
  return Id(v);
}

template <typename E>
Status EnumFlag(std::string_view flag, const std::string& text, E* out) {
  if (text.empty()) return Status::Ok();  // keep the default
  auto e = ParseEnum<E>(text);
  if (!e.ok()) return e.status().WithContext(flag);
  *out = *e;
  return Status::Ok();
}

Status TimeFlag(const std::string& text, std::optional<Timestamp>* out) {
  if (text.empty()) return Status::Ok();  // now
  auto ts = ParseTimestamp(text);
  if (!ts.ok()) return ts.status().WithContext("--ts");
  *out = *ts;
  return Status::Ok();
}

// ---- Text output --------------------------------------------------------------------------

std::string Amount(int64_t minor, Currency currency) {
  return Money{minor, currency}.ToString();
}

std::string Quota(int64_t left, std::string_view unit) {
  if (left == kUnlimited) return "unlimited";
  return std::to_string(left) + (unit.empty() ? "" : " ") + std::string(unit);
}

void PrintAccount(const AccountView& v) {
  std::cout << "subscriber " << v.subscriber_id.value() << " (partner " << v.partner_id.value()
            << "): plan " << v.plan_id.value() << " v" << v.plan_version << ", "
            << Name(v.billing_type) << ", " << Name(v.region) << ", " << Name(v.status) << "\n"
            << "balance   " << Amount(v.balance_minor, v.currency) << "\n"
            << "cycle     " << FormatDate(v.cycle_start) << " to " << FormatDate(v.cycle_end)
            << "\n"
            << "bundles   data " << Quota(v.data_mb_left, "MB") << ", voice "
            << Quota(v.voice_min_left, "min") << ", sms " << Quota(v.sms_left, "") << "\n";
  if (v.open_invoice_id) {
    std::cout << "invoice   " << *v.open_invoice_id
              << " open: " << Amount(v.open_invoice_minor, v.currency) << " so far\n";
  }
}

void PrintRecharge(const RechargeResult& r) {
  std::cout << "recharge " << r.recharge_id << " " << RechargeStateName(r.state) << ": "
            << Amount(r.amount_minor, r.currency) << " for subscriber " << r.subscriber_id.value()
            << " via " << Name(r.channel) << " at " << FormatTimestamp(r.ts) << " (event "
            << r.event_id << ")\n"
            << "balance   " << Amount(r.balance_minor, r.currency) << "\n";
  if (r.replayed) std::cout << "replayed: the key was used before; this is the original result\n";
}

// ---- Subcommands --------------------------------------------------------------------------

// The ledger that ledger.backend names (DIR/ledger.sqlite by default).
Result<std::unique_ptr<Ledger>> Open(const LedgerFlags& f) {
  return OpenConfiguredLedger(*f.config, f.data);
}

Status ReadActivate(const LedgerFlags& f, ActivateRequest* r) {
  TALLY_ASSIGN_OR_RETURN(r->subscriber_id, IdFlag<SubscriberId>("--subscriber", f.subscriber));
  TALLY_ASSIGN_OR_RETURN(r->partner_id, IdFlag<PartnerId>("--partner", f.partner));
  TALLY_ASSIGN_OR_RETURN(r->plan_id, IdFlag<PlanId>("--plan", f.plan));
  TALLY_RETURN_IF_ERROR(Required("--region", f.region));
  TALLY_RETURN_IF_ERROR(EnumFlag("--region", f.region, &r->region));
  TALLY_RETURN_IF_ERROR(TimeFlag(f.ts, &r->ts));
  if (!f.opening_balance.empty()) {
    TALLY_ASSIGN_OR_RETURN(r->opening_balance_minor,
                           IntFlag("--opening-balance", f.opening_balance));
  }
  r->profile.msisdn = f.msisdn;
  r->profile.imsi = f.imsi;
  r->profile.name = f.name;
  r->profile.country = f.country;
  r->profile.city = f.city;
  return EnumFlag("--device-type", f.device_type, &r->profile.device_type);
}

int Activate(const LedgerFlags& f) {
  ActivateRequest r;
  if (Status st = ReadActivate(f, &r); !st.ok()) return UsageError("activate", st);
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("activate", ledger.status());
  auto view = (*ledger)->Activate(r);
  if (!view.ok()) return Failed("activate", view.status());
  if (f.json) {
    std::cout << AccountViewJson(*view) << "\n";
  } else {
    PrintAccount(*view);
  }
  return 0;
}

int ChangePlan(const LedgerFlags& f) {
  auto id = IdFlag<SubscriberId>("--subscriber", f.subscriber);
  auto plan = IdFlag<PlanId>("--plan", f.plan);
  std::optional<Timestamp> ts;
  for (const Status& st : {id.status(), plan.status(), TimeFlag(f.ts, &ts)}) {
    if (!st.ok()) return UsageError("plan", st);
  }
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("plan", ledger.status());
  auto change = (*ledger)->ChangePlan(*id, *plan, ts);
  if (!change.ok()) return Failed("plan", change.status());
  if (f.json) {
    std::cout << PlanChangeJson(*id, *change) << "\n";
    return 0;
  }
  // The proration is in the account's currency, which the change result does not carry.
  auto view = (*ledger)->Account(*id);
  const Currency currency = view.ok() ? view->currency : Currency();
  std::cout << "subscriber " << id->value() << ": plan " << change->from_plan.value() << " -> "
            << change->to_plan.value() << " with " << std::fixed << std::setprecision(1)
            << change->remaining_fraction * 100 << "% of the cycle left\n"
            << "credit    " << Amount(change->credit_minor, currency) << " (unused share of plan "
            << change->from_plan.value() << ")\n"
            << "charge    " << Amount(change->charge_minor, currency)
            << " (remaining share of plan " << change->to_plan.value() << ")\n"
            << "balance   " << Amount(change->balance_minor, currency) << "\n";
  return 0;
}

int SetStatus(const LedgerFlags& f) {
  auto id = IdFlag<SubscriberId>("--subscriber", f.subscriber);
  Status action_given = Required("--action", f.action);
  auto action = ParseAccountAction(f.action);
  std::optional<Timestamp> ts;
  for (const Status& st :
       {id.status(), action_given, action.status().WithContext("--action"), TimeFlag(f.ts, &ts)}) {
    if (!st.ok()) return UsageError("status", st);
  }
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("status", ledger.status());
  auto view = (*ledger)->SetStatus(*id, *action, ts);
  if (!view.ok()) return Failed("status", view.status());
  if (f.json) {
    std::cout << AccountViewJson(*view) << "\n";
  } else {
    PrintAccount(*view);
  }
  return 0;
}

Status ReadRecharge(const LedgerFlags& f, RechargeRequest* r) {
  TALLY_RETURN_IF_ERROR(Required("--key", f.key));
  r->idempotency_key = f.key;
  TALLY_ASSIGN_OR_RETURN(r->subscriber_id, IdFlag<SubscriberId>("--subscriber", f.subscriber));
  TALLY_ASSIGN_OR_RETURN(r->amount_minor, IntFlag("--amount", f.amount));
  if (!f.currency.empty()) {
    auto c = Currency::Parse(f.currency);
    if (!c.ok()) return c.status().WithContext("--currency");
    r->currency = *c;
  }
  TALLY_RETURN_IF_ERROR(EnumFlag("--channel", f.channel, &r->channel));
  TALLY_RETURN_IF_ERROR(EnumFlag("--payment-status", f.payment_status, &r->payment_status));
  TALLY_RETURN_IF_ERROR(TimeFlag(f.ts, &r->ts));
  if (!f.event_id.empty()) r->event_id = f.event_id;
  return Status::Ok();
}

int Recharge(const LedgerFlags& f) {
  RechargeRequest r;
  if (Status st = ReadRecharge(f, &r); !st.ok()) return UsageError("recharge", st);
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("recharge", ledger.status());
  auto result = (*ledger)->Recharge(r);
  if (!result.ok()) return Failed("recharge", result.status());
  if (f.json) {
    std::cout << RechargeJson(*result) << "\n";
  } else {
    PrintRecharge(*result);
  }
  return 0;
}

int Compensate(const LedgerFlags& f, bool reversal) {
  const char* command = reversal ? "reverse" : "refund";
  CompensateRequest r;
  r.reversal = reversal;
  r.idempotency_key = f.key;
  auto id = IntFlag("--recharge", f.recharge);
  for (const Status& st : {Required("--key", f.key), id.status(), TimeFlag(f.ts, &r.ts)}) {
    if (!st.ok()) return UsageError(command, st);
  }
  r.recharge_id = *id;
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed(command, ledger.status());
  auto result = (*ledger)->Compensate(r);
  if (!result.ok()) return Failed(command, result.status());
  if (f.json) {
    std::cout << RechargeJson(*result) << "\n";
  } else {
    PrintRecharge(*result);
  }
  return 0;
}

int Refund(const LedgerFlags& f) {
  return Compensate(f, false);
}
int Reverse(const LedgerFlags& f) {
  return Compensate(f, true);
}

int Balance(const LedgerFlags& f) {
  auto id = IdFlag<SubscriberId>("--subscriber", f.subscriber);
  if (!id.ok()) return UsageError("balance", id.status());
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("balance", ledger.status());
  auto view = (*ledger)->Account(*id);
  if (!view.ok()) return Failed("balance", view.status());
  if (f.json) {
    std::cout << AccountViewJson(*view) << "\n";
  } else {
    PrintAccount(*view);
  }
  return 0;
}

int Invoices(const LedgerFlags& f) {
  auto id = IdFlag<SubscriberId>("--subscriber", f.subscriber);
  if (!id.ok()) return UsageError("invoices", id.status());
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("invoices", ledger.status());
  auto invoices = (*ledger)->Invoices(*id);
  if (!invoices.ok()) return Failed("invoices", invoices.status());
  if (f.json) {
    std::cout << InvoicesJson(*id, *invoices) << "\n";
    return 0;
  }
  if (invoices->empty()) {
    std::cout << "subscriber " << id->value() << " has no invoices (prepaid accounts have none)\n";
    return 0;
  }
  std::cout << std::left << std::setw(9) << "invoice" << std::setw(26) << "period" << std::setw(8)
            << "state" << std::setw(16) << "fee" << std::setw(16) << "usage" << std::setw(16)
            << "adjustment"
            << "total\n";
  for (const Invoice& inv : *invoices) {
    std::cout << std::setw(9) << inv.invoice_id << std::setw(26)
              << FormatDate(inv.period_start) + " to " + FormatDate(inv.period_end) << std::setw(8)
              << (inv.closed ? "closed" : "open") << std::setw(16)
              << Amount(inv.fee_minor, inv.currency) << std::setw(16)
              << Amount(inv.usage_minor, inv.currency) << std::setw(16)
              << Amount(inv.adjustment_minor, inv.currency) << Amount(inv.total_minor, inv.currency)
              << "\n";
  }
  return 0;
}

int Plans(const LedgerFlags& f) {
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("plans", ledger.status());
  auto plans = (*ledger)->PlanVersions();
  if (!plans.ok()) return Failed("plans", plans.status());
  if (f.json) {
    // The rows of the plans table, as NDJSON rows inside one array.
    TextBuffer out(4096);
    out.Put("{\"plans\":[");
    for (size_t i = 0; i < plans->size(); ++i) {
      if (i) out.Put(',');
      WriteJsonRow(out, (*plans)[i]);
      out.Chop(1);  // the row's newline
    }
    out.Put("]}");
    std::cout << out.view() << "\n";
    return 0;
  }
  std::cout << std::left << std::setw(6) << "plan" << std::setw(5) << "ver" << std::setw(15)
            << "region" << std::setw(20) << "name" << std::setw(10) << "billing" << std::setw(14)
            << "price" << std::setw(12) << "data" << std::setw(12) << "voice" << std::setw(10)
            << "sms" << std::setw(12) << "from"
            << "to\n";
  for (const PlanVersion& v : *plans) {
    std::cout << std::setw(6) << v.plan_id.value() << std::setw(5) << v.version << std::setw(15)
              << Name(v.region) << std::setw(20) << v.name << std::setw(10) << Name(v.billing_type)
              << std::setw(14) << Amount(v.monthly_price_minor, v.currency) << std::setw(12)
              << Quota(v.data_mb, "MB") << std::setw(12) << Quota(v.voice_minutes, "min")
              << std::setw(10) << Quota(v.sms, "") << std::setw(12) << FormatDate(v.effective_from)
              << (v.effective_to ? FormatDate(*v.effective_to) : "-") << "\n";
  }
  if (plans->empty()) std::cout << "no plan versions; load them with `tally ledger import-plans`\n";
  return 0;
}


// What an import did; `added` is known for plan versions (partners are upserted).
void PrintImport(const LedgerFlags& f, std::string_view what, size_t read,
                 std::optional<size_t> added) {
  if (f.json) {
    TextBuffer out(256);
    out.Put("{\"file\":");
    out.PutJsonString(f.file);
    out.Put(",\"read\":");
    out.PutInt(static_cast<int64_t>(read));
    if (added) {
      out.Put(",\"new\":");
      out.PutInt(static_cast<int64_t>(*added));
    }
    out.Put("}");
    std::cout << out.view() << "\n";
    return;
  }
  std::cout << "imported " << read << " " << what << " from " << f.file;
  if (added) std::cout << " (" << *added << " new)";
  std::cout << "\n";
}

int ImportPlans(const LedgerFlags& f) {
  if (Status st = Required("FILE", f.file); !st.ok()) return UsageError("import-plans", st);
  auto rows = ReadCsvFile<PlanVersion>(f.file);
  if (!rows.ok()) return Failed("import-plans", rows.status());
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("import-plans", ledger.status());
  auto before = (*ledger)->PlanVersions();
  if (!before.ok()) return Failed("import-plans", before.status());
  if (Status st = (*ledger)->AddPlanVersions(*rows); !st.ok()) return Failed("import-plans", st);
  auto after = (*ledger)->PlanVersions();
  if (!after.ok()) return Failed("import-plans", after.status());
  PrintImport(f, "plan versions", rows->size(), after->size() - before->size());
  return 0;
}

int ImportPartners(const LedgerFlags& f) {
  if (Status st = Required("FILE", f.file); !st.ok()) return UsageError("import-partners", st);
  auto rows = ReadCsvFile<Partner>(f.file);
  if (!rows.ok()) return Failed("import-partners", rows.status());
  auto ledger = Open(f);
  if (!ledger.ok()) return Failed("import-partners", ledger.status());
  if (Status st = (*ledger)->UpsertPartners(*rows); !st.ok()) {
    return Failed("import-partners", st);
  }
  // Partners are upserted: each row adds a partner or replaces the one with its id.
  PrintImport(f, "partners", rows->size(), std::nullopt);
  return 0;
}

using Subcommand = int (*)(const LedgerFlags&);

}  // namespace

CommandFn RegisterLedger(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<LedgerFlags>();
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--data", f->data,
                 "Data directory; the ledger is DIR/ledger.sqlite (required unless ledger.backend "
                 "is postgres)");
  app.add_flag("--json", f->json, "Print JSON (the shapes of the HTTP API) instead of text");

  std::vector<std::pair<CLI::App*, Subcommand>> subs;
  auto sub = [&](const char* name, const char* help, Subcommand run) {
    CLI::App* s = app.add_subcommand(name, help);
    s->fallthrough();  // --data and --json may come after the subcommand too
    subs.emplace_back(s, run);
    return s;
  };
  auto subscriber = [&](CLI::App* s) {
    s->add_option("--subscriber", f->subscriber, "Subscriber id (required)");
  };
  auto ts = [&](CLI::App* s) {
    s->add_option("--ts", f->ts, "When it takes effect, ISO 8601 UTC [now]");
  };

  CLI::App* activate = sub("activate", "Open an account for a subscriber on a plan", Activate);
  subscriber(activate);
  activate->add_option("--partner", f->partner, "Partner id; 0 is the operator's own (required)");
  activate->add_option("--plan", f->plan, "Plan id (required)");
  activate->add_option("--region", f->region, "Home region, e.g. 'North America' (required)");
  ts(activate);
  activate->add_option("--opening-balance", f->opening_balance,
                       "Prepaid credit carried over, in minor units [0]");
  activate->add_option("--msisdn", f->msisdn, "Phone number (E.164)");
  activate->add_option("--imsi", f->imsi, "SIM identity");
  activate->add_option("--name", f->name, "Account holder's name");
  activate->add_option("--country", f->country, "Home country (ISO 3166-1 alpha-2)");
  activate->add_option("--city", f->city, "Home city");
  activate->add_option("--device-type", f->device_type,
                       "android, ios, feature_phone, tablet or hotspot [android]");

  CLI::App* plan =
      sub("plan", "Move a subscriber to another plan, prorating the cycle's fees", ChangePlan);
  subscriber(plan);
  plan->add_option("--plan", f->plan, "The new plan id (required)");
  ts(plan);

  CLI::App* status = sub("status", "Suspend, resume or deactivate an account", SetStatus);
  subscriber(status);
  status->add_option("--action", f->action, "suspend, resume or deactivate (required)");
  ts(status);

  CLI::App* recharge = sub("recharge", "Credit a prepaid balance, idempotently", Recharge);
  subscriber(recharge);
  recharge->add_option("--amount", f->amount, "Amount in minor units, e.g. 2000 (required)");
  recharge->add_option("--key", f->key,
                       "Idempotency key: a retry with the same key credits once (required)");
  recharge->add_option("--currency", f->currency, "Must match the account's [the account's]");
  recharge->add_option("--channel", f->channel, "app, retail, web, auto_topup or voucher [app]");
  recharge->add_option("--payment-status", f->payment_status,
                       "succeeded or failed; a failed payment credits nothing [succeeded]");
  ts(recharge);
  recharge->add_option("--event-id", f->event_id,
                       "The recharge event's id in the store [ledger-r<recharge id>]");

  auto compensation = [&](const char* name, const char* help, Subcommand run) {
    CLI::App* s = sub(name, help, run);
    s->add_option("--recharge", f->recharge, "Recharge id (required)");
    s->add_option("--key", f->key, "Idempotency key of this refund or reversal (required)");
    ts(s);
  };
  compensation("refund", "Refund a recharge: its amount leaves the balance", Refund);
  compensation("reverse", "Reverse a recharge (a chargeback or a correction)", Reverse);

  subscriber(sub("balance", "Show an account: balance, cycle, bundles, open invoice", Balance));
  subscriber(sub("invoices", "List a postpaid subscriber's invoices", Invoices));
  sub("plans", "List the plan versions the ledger knows", Plans);
  sub("import-plans", "Add plan versions from a plans.csv (as `tally generate` writes it)",
      ImportPlans)
      ->add_option("file", f->file, "plans.csv");
  sub("import-partners", "Add or update partners from a partners.csv", ImportPartners)
      ->add_option("file", f->file, "partners.csv");

  return [f, subs, &ctx]() {
    for (const auto& [s, run] : subs) {
      if (!s->parsed()) continue;
      auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
      if (!cfg.ok()) return UsageError(s->get_name(), cfg.status());
      f->config = std::move(*cfg);
      if (Status st = CheckLedgerSettings(*f->config); !st.ok()) {
        return UsageError(s->get_name(), st);
      }
      if (f->data.empty() && *f->config->String("ledger.backend") != "postgres") {
        return UsageError(s->get_name(), Status::InvalidArgument("--data is required"));
      }
      return run(*f);
    }
    return 2;
  };
}

}  // namespace tally
