#pragma once
// The ledger endpoints of `tally serve` (docs/ledger-api.md):
//   POST /v1/subscribers                     activate an account            201 account view
//   POST /v1/subscribers/{id}/plan           change plan, with proration    200 proration
//   POST /v1/subscribers/{id}/status         suspend, resume or deactivate  200 account view
//   GET  /v1/subscribers/{id}/balance        balance, cycle and bundles     200 account view
//   GET  /v1/subscribers/{id}/invoices       postpaid invoices              200 invoice list
//   POST /v1/recharges                       credit a prepaid balance       201 (200 when replayed)
//   POST /v1/recharges/{id}/refund           undo a recharge: refund        200
//   POST /v1/recharges/{id}/reversal         undo a recharge: chargeback    200
// Money-moving POSTs (recharge, refund, reversal) require an Idempotency-Key header: the same key
// with the same request answers the original result (with Idempotent-Replayed: true); the same
// key with a different request is a 409.
//
// Request bodies are JSON objects. A malformed body, an unknown field or a field of the wrong
// type is a 400 that names the field; ledger errors map to 400 (invalid), 404 (not found),
// 409 (exists / key reused), 503 (unavailable) and 500 (anything else).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "api/http_server.h"
#include "ledger/ledger.h"

namespace tally {

//! Routes account and recharge requests to a Ledger. Holds no state of its own, so it is as
//! thread-safe as the ledger (which is). Does not own the ledger.
class LedgerApi {
 public:
  explicit LedgerApi(Ledger* ledger) : ledger_(ledger) {}

  //! The response for `request` made by `caller`, or nullopt when the path is not a ledger
  //! route. Roles are checked by the gateway (api/gateway.h); here a partner or subscriber is
  //! kept to its own accounts: any other id is a 404, as if it did not exist.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

  //! Longest idempotency key accepted (the ledger's limit).
  static constexpr size_t kMaxKeyBytes = 128;

 private:
  //! nullopt when `caller` may see account `id`; otherwise the 404 to answer.
  std::optional<HttpResponse> CheckAccess(const Principal& caller, SubscriberId id);
  HttpResponse Activate(const HttpRequest& request, const Principal& caller);
  HttpResponse ChangePlan(const HttpRequest& request, SubscriberId id);
  HttpResponse SetStatus(const HttpRequest& request, SubscriberId id);
  HttpResponse Balance(SubscriberId id);
  HttpResponse Invoices(SubscriberId id);
  HttpResponse Recharge(const HttpRequest& request, const Principal& caller);
  HttpResponse Compensate(const HttpRequest& request, int64_t recharge_id, bool reversal);

  Ledger* ledger_;
};

// The JSON forms of the ledger's answers, one object without a trailing newline. The API answers
// with them and `tally ledger --json` prints them, so both speak the same shapes.

//! subscriber_id, partner_id, plan_id, plan_version, billing_type, region, status, currency,
//! balance_minor, cycle_start, cycle_end, bundles {data_mb_left, voice_min_left, sms_left}
//! (-1 unlimited), open_invoice_id and open_invoice_minor (null for prepaid).
std::string AccountViewJson(const AccountView& view);
//! subscriber_id, from_plan, to_plan, credit_minor, charge_minor, remaining_fraction,
//! balance_minor.
std::string PlanChangeJson(SubscriberId id, const PlanChangeResult& change);
//! recharge_id, event_id, state, subscriber_id, amount_minor, currency, channel, balance_minor,
//! ts, replayed.
std::string RechargeJson(const RechargeResult& recharge);
//! {"subscriber_id": id, "invoices": [...]}, oldest first.
std::string InvoicesJson(SubscriberId id, const std::vector<Invoice>& invoices);

//! "succeeded", "failed", "refunded" or "reversed".
std::string_view RechargeStateName(RechargeState state);
//! Parses "suspend", "resume" or "deactivate"; the error lists them.
Result<AccountAction> ParseAccountAction(std::string_view text);

}  // namespace tally
