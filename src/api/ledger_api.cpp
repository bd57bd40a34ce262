#include "api/ledger_api.h"

#include <simdjson.h>

#include <algorithm>
#include <initializer_list>
#include <type_traits>

#include "api/responses.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"
#include "core/utf8.h"
#include "model/enums.h"

namespace tally {

namespace {

constexpr std::string_view kSubscribers = "/v1/subscribers";
constexpr std::string_view kRecharges = "/v1/recharges";
constexpr std::string_view kKeyHeader = "idempotency-key";

// ---- Responses ----------------------------------------------------------------------------

// The HTTP status of a ledger failure: the caller's fault (4xx), retry later (503), or ours.
int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kAlreadyExists:
      return 409;
    case Status::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpResponse LedgerError(const Status& st) {
  return JsonError(HttpStatusOf(st), st.message());
}

HttpResponse MethodNotAllowed(std::string_view allowed, std::string_view path) {
  HttpResponse r = JsonError(405, "use " + std::string(allowed) + " for " + std::string(path));
  r.headers.emplace_back("Allow", std::string(allowed));
  return r;
}

// Idempotent-Replayed: true on an answer that repeats an earlier one.
void MarkReplayed(HttpResponse& r, bool replayed) {
  if (replayed) r.headers.emplace_back("Idempotent-Replayed", "true");
}

// ---- JSON output --------------------------------------------------------------------------

// Writes one JSON object member by member; each call adds `"name":value`.
class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(TextBuffer& out) : out_(out) { out_.Put('{'); }

  JsonObjectWriter& Int(std::string_view name, int64_t v) {
    Key(name);
    out_.PutInt(v);
    return *this;
  }
  JsonObjectWriter& Double(std::string_view name, double v) {
    Key(name);
    out_.PutDouble(v);
    return *this;
  }
  JsonObjectWriter& Bool(std::string_view name, bool v) {
    Key(name);
    out_.Put(v ? "true" : "false");
    return *this;
  }
  JsonObjectWriter& String(std::string_view name, std::string_view v) {
    Key(name);
    out_.PutJsonString(ValidUtf8OrEscaped(v));
    return *this;
  }
  JsonObjectWriter& Null(std::string_view name) {
    Key(name);
    out_.Put("null");
    return *this;
  }
  //! A value that is JSON already (a nested object or array).
  JsonObjectWriter& Raw(std::string_view name, std::string_view json) {
    Key(name);
    out_.Put(json);
    return *this;
  }
  void End() { out_.Put('}'); }

 private:
  void Key(std::string_view name) {
    if (!first_) out_.Put(',');
    first_ = false;
    out_.PutJsonString(name);
    out_.Put(':');
  }
  TextBuffer& out_;
  bool first_ = true;
};

// ---- JSON input ---------------------------------------------------------------------------

Status FieldError(std::string_view name, std::string_view what) {
  return Status::InvalidArgument("field '" + std::string(name) + "': " + std::string(what));
}

Status Convert(std::string_view name, simdjson::dom::element v, int64_t* out) {
  using T = simdjson::dom::element_type;
  switch (v.type()) {
    case T::INT64:
      *out = v.get_int64().value_unsafe();
      return Status::Ok();
    case T::UINT64:
      return FieldError(name, "out of range");
    default:
      return FieldError(name, "expected an integer");
  }
}

Status Convert(std::string_view name, simdjson::dom::element v, std::string* out) {
  std::string_view s;
  if (v.get_string().get(s)) return FieldError(name, "expected a string");
  out->assign(s);
  return Status::Ok();
}

Status Convert(std::string_view name, simdjson::dom::element v, Timestamp* out) {
  std::string_view s;
  if (v.get_string().get(s)) return FieldError(name, "expected an ISO 8601 timestamp string");
  auto ts = ParseTimestamp(s);
  if (!ts.ok()) return FieldError(name, ts.status().message());
  *out = *ts;
  return Status::Ok();
}

Status Convert(std::string_view name, simdjson::dom::element v, Currency* out) {
  std::string_view s;
  if (v.get_string().get(s)) return FieldError(name, "expected a currency code string");
  auto c = Currency::Parse(s);
  if (!c.ok()) return FieldError(name, c.status().message());
  *out = *c;
  return Status::Ok();
}

template <typename Tag>
Status Convert(std::string_view name, simdjson::dom::element v, TypedId<Tag>* out) {
  int64_t raw = 0;
  TALLY_RETURN_IF_ERROR(Convert(name, v, &raw));
  *out = TypedId<Tag>(raw);
  return Status::Ok();
}

template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
Status Convert(std::string_view name, simdjson::dom::element v, E* out) {
  std::string_view s;
  if (v.get_string().get(s)) return FieldError(name, "expected a string");
  auto e = ParseEnum<E>(s);
  if (!e.ok()) return FieldError(name, e.status().message());
  *out = *e;
  return Status::Ok();
}

// One request body: a JSON object whose keys must be among the fields the route accepts. Every
// error names the field. An empty body reads as {}, so routes whose fields are all optional can
// be called without one.
class JsonBody {
 public:
  Status Parse(std::string_view text, std::initializer_list<std::string_view> fields) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) text = "{}";
    simdjson::dom::element doc;
    if (auto err = parser_.parse(text.data(), text.size(), true).get(doc)) {
      return Status::InvalidArgument(std::string("malformed JSON body: ") +
                                     simdjson::error_message(err));
    }
    if (doc.get_object().get(obj_)) {
      return Status::InvalidArgument("malformed JSON body: expected an object");
    }
    std::vector<std::string_view> seen;
    for (auto member : obj_) {
      const std::string_view key = member.key;
      if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
        std::string msg = "unknown field '" + std::string(key.substr(0, 64)) + "' (expected ";
        for (auto f = fields.begin(); f != fields.end(); ++f) {
          if (f != fields.begin()) msg += ", ";
          msg += *f;
        }
        return Status::InvalidArgument(msg + ")");
      }
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return FieldError(key, "appears twice");
      }
      seen.push_back(key);
    }
    return Status::Ok();
  }

  //! A field that must be present and not null.
  template <typename T>
  Status Required(std::string_view name, T* out) const {
    auto v = Get(name);
    if (!v) return FieldError(name, "is required");
    return Convert(name, *v, out);
  }
  //! A field that may be absent or null; then `out` keeps its default.
  template <typename T>
  Status Optional(std::string_view name, T* out) const {
    auto v = Get(name);
    return v ? Convert(name, *v, out) : Status::Ok();
  }
  template <typename T>
  Status Optional(std::string_view name, std::optional<T>* out) const {
    auto v = Get(name);
    if (!v) return Status::Ok();
    T value{};
    TALLY_RETURN_IF_ERROR(Convert(name, *v, &value));
    *out = std::move(value);
    return Status::Ok();
  }

 private:
  std::optional<simdjson::dom::element> Get(std::string_view name) const {
    simdjson::dom::element v;
    if (obj_.at_key(name).get(v) || v.is_null()) return std::nullopt;
    return v;
  }

  simdjson::dom::parser parser_;
  simdjson::dom::object obj_;
};

Status ReadActivate(std::string_view text, ActivateRequest* r) {
  JsonBody body;
  TALLY_RETURN_IF_ERROR(body.Parse(
      text, {"subscriber_id", "partner_id", "plan_id", "region", "ts", "opening_balance_minor",
             "msisdn", "imsi", "name", "country", "city", "device_type"}));
  TALLY_RETURN_IF_ERROR(body.Required("subscriber_id", &r->subscriber_id));
  TALLY_RETURN_IF_ERROR(body.Required("partner_id", &r->partner_id));
  TALLY_RETURN_IF_ERROR(body.Required("plan_id", &r->plan_id));
  TALLY_RETURN_IF_ERROR(body.Required("region", &r->region));
  TALLY_RETURN_IF_ERROR(body.Optional("ts", &r->ts));
  TALLY_RETURN_IF_ERROR(body.Optional("opening_balance_minor", &r->opening_balance_minor));
  TALLY_RETURN_IF_ERROR(body.Optional("msisdn", &r->profile.msisdn));
  TALLY_RETURN_IF_ERROR(body.Optional("imsi", &r->profile.imsi));
  TALLY_RETURN_IF_ERROR(body.Optional("name", &r->profile.name));
  TALLY_RETURN_IF_ERROR(body.Optional("country", &r->profile.country));
  TALLY_RETURN_IF_ERROR(body.Optional("city", &r->profile.city));
  TALLY_RETURN_IF_ERROR(body.Optional("device_type", &r->profile.device_type));
  return Status::Ok();
}

Status ReadRecharge(std::string_view text, RechargeRequest* r) {
  JsonBody body;
  TALLY_RETURN_IF_ERROR(body.Parse(text, {"subscriber_id", "amount_minor", "currency", "channel",
                                          "payment_status", "ts", "event_id"}));
  TALLY_RETURN_IF_ERROR(body.Required("subscriber_id", &r->subscriber_id));
  TALLY_RETURN_IF_ERROR(body.Required("amount_minor", &r->amount_minor));
  TALLY_RETURN_IF_ERROR(body.Optional("currency", &r->currency));
  TALLY_RETURN_IF_ERROR(body.Optional("channel", &r->channel));
  TALLY_RETURN_IF_ERROR(body.Optional("payment_status", &r->payment_status));
  TALLY_RETURN_IF_ERROR(body.Optional("ts", &r->ts));
  TALLY_RETURN_IF_ERROR(body.Optional("event_id", &r->event_id));
  return Status::Ok();
}

Status ReadPlanChange(std::string_view text, PlanId* plan, std::optional<Timestamp>* ts) {
  JsonBody body;
  TALLY_RETURN_IF_ERROR(body.Parse(text, {"plan_id", "ts"}));
  TALLY_RETURN_IF_ERROR(body.Required("plan_id", plan));
  return body.Optional("ts", ts);
}

Status ReadStatusChange(std::string_view text, AccountAction* action,
                        std::optional<Timestamp>* ts) {
  JsonBody body;
  TALLY_RETURN_IF_ERROR(body.Parse(text, {"action", "ts"}));
  std::string name;
  TALLY_RETURN_IF_ERROR(body.Required("action", &name));
  auto parsed = ParseAccountAction(name);
  if (!parsed.ok()) return FieldError("action", parsed.status().message());
  *action = *parsed;
  return body.Optional("ts", ts);
}

// A body with only an optional time: {"ts": ...}, {} or nothing.
Status ReadTimeOnly(std::string_view text, std::optional<Timestamp>* ts) {
  JsonBody body;
  TALLY_RETURN_IF_ERROR(body.Parse(text, {"ts"}));
  return body.Optional("ts", ts);
}

// The Idempotency-Key header, which money-moving requests must carry.
Result<std::string> IdempotencyKey(const HttpRequest& request) {
  std::string key = request.Header(kKeyHeader);
  if (key.empty()) {
    return Status::InvalidArgument(
        "the Idempotency-Key header is required: a unique key per payment makes retries safe");
  }
  if (key.size() > LedgerApi::kMaxKeyBytes) {
    return Status::InvalidArgument("the Idempotency-Key header must be 1 to " +
                                   std::to_string(LedgerApi::kMaxKeyBytes) + " bytes");
  }
  return key;
}

// A positive id from a path segment: decimal digits only, no sign, within int64.
std::optional<int64_t> PathId(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v <= 0) return std::nullopt;
  return v;
}

// Splits "{id}/{action}" (the part of a path after a collection prefix and its slash).
bool SplitIdAndAction(std::string_view rest, std::string_view* id, std::string_view* action) {
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  *id = rest.substr(0, slash);
  *action = rest.substr(slash + 1);
  return action->find('/') == std::string_view::npos;
}

bool IsRead(const HttpRequest& r) {
  return r.method == "GET" || r.method == "HEAD";
}

}  // namespace

// ---- JSON forms ---------------------------------------------------------------------------

std::string_view RechargeStateName(RechargeState state) {
  switch (state) {
    case RechargeState::kSucceeded:
      return "succeeded";
    case RechargeState::kFailed:
      return "failed";
    case RechargeState::kRefunded:
      return "refunded";
    case RechargeState::kReversed:
      return "reversed";
  }
  return "unknown";
}

Result<AccountAction> ParseAccountAction(std::string_view text) {
  if (text == "suspend") return AccountAction::kSuspend;
  if (text == "resume") return AccountAction::kResume;
  if (text == "deactivate") return AccountAction::kDeactivate;
  return Status::InvalidArgument("'" + std::string(text.substr(0, 64)) +
                                 "' is not an account action (expected one of suspend, resume, "
                                 "deactivate)");
}

std::string AccountViewJson(const AccountView& v) {
  TextBuffer bundles(128);
  JsonObjectWriter(bundles)
      .Int("data_mb_left", v.data_mb_left)
      .Int("voice_min_left", v.voice_min_left)
      .Int("sms_left", v.sms_left)
      .End();
  TextBuffer out(512);
  JsonObjectWriter w(out);
  w.Int("subscriber_id", v.subscriber_id.value())
      .Int("partner_id", v.partner_id.value())
      .Int("plan_id", v.plan_id.value())
      .Int("plan_version", v.plan_version)
      .String("billing_type", Name(v.billing_type))
      .String("region", Name(v.region))
      .String("status", Name(v.status))
      .String("currency", v.currency.code())
      .Int("balance_minor", v.balance_minor)
      .String("cycle_start", FormatDate(v.cycle_start))
      .String("cycle_end", FormatDate(v.cycle_end))
      .Raw("bundles", bundles.view());
  if (v.open_invoice_id) {
    w.Int("open_invoice_id", *v.open_invoice_id).Int("open_invoice_minor", v.open_invoice_minor);
  } else {
    w.Null("open_invoice_id").Null("open_invoice_minor");
  }
  w.End();
  return std::string(out.view());
}

std::string PlanChangeJson(SubscriberId id, const PlanChangeResult& c) {
  TextBuffer out(256);
  JsonObjectWriter(out)
      .Int("subscriber_id", id.value())
      .Int("from_plan", c.from_plan.value())
      .Int("to_plan", c.to_plan.value())
      .Int("credit_minor", c.credit_minor)
      .Int("charge_minor", c.charge_minor)
      .Double("remaining_fraction", c.remaining_fraction)
      .Int("balance_minor", c.balance_minor)
      .End();
  return std::string(out.view());
}

std::string RechargeJson(const RechargeResult& r) {
  TextBuffer out(512);
  JsonObjectWriter(out)
      .Int("recharge_id", r.recharge_id)
      .String("event_id", r.event_id)
      .String("state", RechargeStateName(r.state))
      .Int("subscriber_id", r.subscriber_id.value())
      .Int("amount_minor", r.amount_minor)
      .String("currency", r.currency.code())
      .String("channel", Name(r.channel))
      .Int("balance_minor", r.balance_minor)
      .String("ts", FormatTimestamp(r.ts))
      .Bool("replayed", r.replayed)
      .End();
  return std::string(out.view());
}

std::string InvoicesJson(SubscriberId id, const std::vector<Invoice>& invoices) {
  TextBuffer list(256 + 256 * invoices.size());
  list.Put('[');
  for (size_t i = 0; i < invoices.size(); ++i) {
    const Invoice& inv = invoices[i];
    if (i) list.Put(',');
    JsonObjectWriter(list)
        .Int("invoice_id", inv.invoice_id)
        .String("period_start", FormatDate(inv.period_start))
        .String("period_end", FormatDate(inv.period_end))
        .Bool("closed", inv.closed)
        .String("currency", inv.currency.code())
        .Int("fee_minor", inv.fee_minor)
        .Int("usage_minor", inv.usage_minor)
        .Int("adjustment_minor", inv.adjustment_minor)
        .Int("total_minor", inv.total_minor)
        .End();
  }
  list.Put(']');
  TextBuffer out(list.size() + 64);
  JsonObjectWriter(out).Int("subscriber_id", id.value()).Raw("invoices", list.view()).End();
  return std::string(out.view());
}

// ---- Routing ------------------------------------------------------------------------------

std::optional<HttpResponse> LedgerApi::Handle(const HttpRequest& request, const Principal& caller) {
  const std::string_view path = request.path;
  if (path == kSubscribers) {
    if (request.method != "POST") return MethodNotAllowed("POST", path);
    return Activate(request, caller);
  }
  if (path == kRecharges) {
    if (request.method != "POST") return MethodNotAllowed("POST", path);
    return Recharge(request, caller);
  }
  const bool subscribers = path.starts_with(std::string(kSubscribers) + "/");
  const bool recharges = path.starts_with(std::string(kRecharges) + "/");
  if (!subscribers && !recharges) return std::nullopt;

  const std::string_view rest = path.substr((subscribers ? kSubscribers : kRecharges).size() + 1);
  std::string_view id_text, action;
  if (!SplitIdAndAction(rest, &id_text, &action)) {
    return JsonError(404, "no route for " + request.method + " " + std::string(path));
  }
  const std::optional<int64_t> id = PathId(id_text);
  const char* what = subscribers ? "subscriber" : "recharge";
  if (subscribers) {
    const bool post = action == "plan" || action == "status";
    const bool get = action == "balance" || action == "invoices";
    if (!post && !get) return JsonError(404, "no route for " + std::string(path));
    if (post && request.method != "POST") return MethodNotAllowed("POST", path);
    if (get && !IsRead(request)) return MethodNotAllowed("GET", path);
  } else {
    if (action != "refund" && action != "reversal") {
      return JsonError(404, "no route for " + std::string(path));
    }
    if (request.method != "POST") return MethodNotAllowed("POST", path);
  }
  if (!id) {
    return JsonError(400, std::string(what) + " id '" + std::string(id_text.substr(0, 64)) +
                              "' in the path: expected a positive integer");
  }
  if (recharges) {
    // A recharge id says nothing about its tenant; only internal roles undo recharges.
    if (!SeesAllTenants(caller)) return JsonError(403, "only admin and agent undo recharges");
    return Compensate(request, *id, action == "reversal");
  }
  const SubscriberId subscriber(*id);
  if (auto denied = CheckAccess(caller, subscriber)) return *denied;
  if (action == "plan") return ChangePlan(request, subscriber);
  if (action == "status") return SetStatus(request, subscriber);
  if (action == "balance") return Balance(subscriber);
  return Invoices(subscriber);
}

// ---- Endpoints ----------------------------------------------------------------------------

std::optional<HttpResponse> LedgerApi::CheckAccess(const Principal& caller, SubscriberId id) {
  if (SeesAllTenants(caller)) return std::nullopt;
  auto view = ledger_->Account(id);
  if (view.ok() && MaySee(caller, id, view->partner_id)) return std::nullopt;
  if (!view.ok() && view.status().code() != Status::Code::kNotFound) {
    return LedgerError(view.status());
  }
  return JsonError(404, SubscriberNotFound(id));
}

HttpResponse LedgerApi::Activate(const HttpRequest& request, const Principal& caller) {
  ActivateRequest r;
  if (Status st = ReadActivate(request.body, &r); !st.ok()) return LedgerError(st);
  if (!SeesAllTenants(caller) && !(caller.partner && *caller.partner == r.partner_id)) {
    return JsonError(403, "partner_id " + std::to_string(r.partner_id.value()) + ": a " +
                              std::string(Name(caller.role)) +
                              " may activate subscribers of its own partner only");
  }
  auto view = ledger_->Activate(r);
  if (!view.ok()) return LedgerError(view.status());
  HttpResponse resp = JsonResponse(201, AccountViewJson(*view));
  resp.headers.emplace_back(
      "Location",
      std::string(kSubscribers) + "/" + std::to_string(view->subscriber_id.value()) + "/balance");
  return resp;
}

HttpResponse LedgerApi::ChangePlan(const HttpRequest& request, SubscriberId id) {
  PlanId plan;
  std::optional<Timestamp> ts;
  if (Status st = ReadPlanChange(request.body, &plan, &ts); !st.ok()) return LedgerError(st);
  auto change = ledger_->ChangePlan(id, plan, ts);
  if (!change.ok()) return LedgerError(change.status());
  return JsonResponse(200, PlanChangeJson(id, *change));
}

HttpResponse LedgerApi::SetStatus(const HttpRequest& request, SubscriberId id) {
  AccountAction action = AccountAction::kSuspend;
  std::optional<Timestamp> ts;
  if (Status st = ReadStatusChange(request.body, &action, &ts); !st.ok()) return LedgerError(st);
  auto view = ledger_->SetStatus(id, action, ts);
  if (!view.ok()) return LedgerError(view.status());
  return JsonResponse(200, AccountViewJson(*view));
}

HttpResponse LedgerApi::Balance(SubscriberId id) {
  auto view = ledger_->Account(id);
  if (!view.ok()) return LedgerError(view.status());
  return JsonResponse(200, AccountViewJson(*view));
}

HttpResponse LedgerApi::Invoices(SubscriberId id) {
  auto invoices = ledger_->Invoices(id);
  if (!invoices.ok()) return LedgerError(invoices.status());
  return JsonResponse(200, InvoicesJson(id, *invoices));
}

HttpResponse LedgerApi::Recharge(const HttpRequest& request, const Principal& caller) {
  auto key = IdempotencyKey(request);
  if (!key.ok()) return LedgerError(key.status());
  RechargeRequest r;
  r.idempotency_key = std::move(*key);
  if (Status st = ReadRecharge(request.body, &r); !st.ok()) return LedgerError(st);
  if (auto denied = CheckAccess(caller, r.subscriber_id)) return *denied;
  auto result = ledger_->Recharge(r);
  if (!result.ok()) return LedgerError(result.status());
  // 201 for the recharge that credited; 200 for a retry answered with the original result.
  HttpResponse resp = JsonResponse(result->replayed ? 200 : 201, RechargeJson(*result));
  MarkReplayed(resp, result->replayed);
  return resp;
}

HttpResponse LedgerApi::Compensate(const HttpRequest& request, int64_t recharge_id, bool reversal) {
  auto key = IdempotencyKey(request);
  if (!key.ok()) return LedgerError(key.status());
  CompensateRequest r;
  r.idempotency_key = std::move(*key);
  r.recharge_id = recharge_id;
  r.reversal = reversal;
  if (Status st = ReadTimeOnly(request.body, &r.ts); !st.ok()) return LedgerError(st);
  auto result = ledger_->Compensate(r);
  if (!result.ok()) return LedgerError(result.status());
  HttpResponse resp = JsonResponse(200, RechargeJson(*result));
  MarkReplayed(resp, result->replayed);
  return resp;
}

}  // namespace tally
