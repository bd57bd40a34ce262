#include "api/subscriber_api.h"

#include <charconv>

#include "api/responses.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

constexpr std::string_view kColumns =
    "subscriber_id, msisdn, imsi, name, partner_id, plan_id, billing_type, region, country, city, "
    "device_type, activation_date, status, status_date";
// Columns answered as JSON numbers; the others are strings.
constexpr std::string_view kNumeric[] = {"subscriber_id", "partner_id", "plan_id"};

std::optional<int64_t> PositiveId(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// `text` for a LIKE pattern with '\' as the escape character.
std::string LikeEscaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Appends one profile row as a JSON object, masked for `role`.
void PutProfile(TextBuffer& out, const TextTable& t, size_t row, Role role) {
  out.Put('{');
  for (size_t c = 0; c < t.columns.size(); ++c) {
    if (c) out.Put(',');
    const std::string& col = t.columns[c];
    out.PutJsonString(col);
    out.Put(':');
    const std::optional<std::string>& v = t.rows[row][c];
    if (!v) {
      out.Put("null");
      continue;
    }
    bool numeric = false;
    for (std::string_view n : kNumeric) numeric |= col == n;
    if (numeric) {
      out.Put(*v);
    } else if (col == "msisdn") {
      out.PutJsonString(MaskMsisdn(*v, role));
    } else if (col == "imsi") {
      out.PutJsonString(MaskImsi(*v, role));
    } else if (col == "name") {
      out.PutJsonString(MaskName(*v, role));
    } else {
      out.PutJsonString(ValidUtf8OrEscaped(*v));
    }
  }
  out.Put('}');
}

}  // namespace

std::optional<HttpResponse> SubscriberApi::Handle(const HttpRequest& request,
                                                  const Principal& caller) {
  constexpr std::string_view kPrefix = "/v1/subscribers";
  const std::string_view path = request.path;
  if (!path.starts_with(kPrefix)) return std::nullopt;
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (path == kPrefix) return read ? std::optional(Search(request, caller)) : std::nullopt;
  if (path[kPrefix.size()] != '/' || !read) return std::nullopt;
  const std::string_view id_text = path.substr(kPrefix.size() + 1);
  if (id_text.find('/') != std::string_view::npos) return std::nullopt;
  const std::optional<int64_t> id = PositiveId(id_text);
  if (!id) {
    return JsonError(400, "subscriber id '" + std::string(id_text.substr(0, 32)) +
                              "': expected a positive integer");
  }
  return Profile(caller, *id);
}

Result<std::string> SubscriberProfileJson(IngestPipeline* pipeline, const Principal& caller,
                                          int64_t id) {
  const SecurityScope scope = ScopeOf(caller);
  if (scope.subscriber && *scope.subscriber != id) {
    return Status::NotFound(SubscriberNotFound(SubscriberId(id)));
  }
  std::string sql = "SELECT " + std::string(kColumns) + " FROM subscribers WHERE subscriber_id = ?";
  std::vector<SqlParam> params = {id};
  if (scope.partner) {
    sql += " AND partner_id = ?";
    params.emplace_back(*scope.partner);
  }
  TextTable table;
  TALLY_RETURN_IF_ERROR(pipeline->RunExclusive([&](EventStore& store) {
    TALLY_ASSIGN_OR_RETURN(table, store.Query(sql, params));
    return Status::Ok();
  }));
  if (table.rows.empty()) return Status::NotFound(SubscriberNotFound(SubscriberId(id)));
  TextBuffer out(512);
  PutProfile(out, table, 0, caller.role);
  return std::string(out.view());
}

HttpResponse SubscriberApi::Profile(const Principal& caller, int64_t id) {
  Result<std::string> profile = SubscriberProfileJson(pipeline_, caller, id);
  if (!profile.ok()) {
    const bool missing = profile.status().code() == Status::Code::kNotFound;
    return JsonError(missing ? 404 : 500, profile.status().message());
  }
  HttpResponse r = JsonResponse(200, std::move(*profile));
  r.headers.emplace_back("X-Tally-Rows", "1");
  return r;
}

Result<std::string> SearchSubscribersJson(IngestPipeline* pipeline, const Principal& caller,
                                          std::string_view q, int64_t limit, size_t* count) {
  *count = 0;
  if (q.empty() || q.size() > 128) {
    return Status::InvalidArgument(
        "q: expected 1 to 128 characters (a subscriber id, MSISDN or name)");
  }
  if (limit < 1 || limit > SubscriberApi::kMaxLimit) {
    return Status::InvalidArgument("limit: expected 1.." +
                                   std::to_string(SubscriberApi::kMaxLimit));
  }
  const bool digits = AllDigits(q);
  const bool msisdn_form = q[0] == '+' && AllDigits(q.substr(1));
  const bool sees_msisdn = Sees(caller.role, SensitiveField::kMsisdn);
  const bool sees_name = Sees(caller.role, SensitiveField::kName);
  std::vector<std::string> terms;
  std::vector<SqlParam> params;
  if (digits) {
    if (auto id = PositiveId(q)) {
      terms.push_back("subscriber_id = ?");
      params.emplace_back(*id);
    }
    if (sees_msisdn && q.size() >= 4) {  // the last digits of a number, as a caller reads them
      terms.push_back("msisdn LIKE ? ESCAPE '\\'");
      params.emplace_back("%" + LikeEscaped(q));
    }
  } else if (msisdn_form) {
    if (!sees_msisdn) {
      return Status::InvalidArgument("q: role " + std::string(Name(caller.role)) +
                                     " sees MSISDNs masked and may search by subscriber id only");
    }
    terms.push_back("msisdn = ?");
    params.emplace_back(std::string(q));
  } else {
    if (!sees_name) {
      return Status::InvalidArgument("q: role " + std::string(Name(caller.role)) +
                                     " sees names masked and may search by subscriber id only");
    }
    terms.push_back("name ILIKE ? ESCAPE '\\'");
    params.emplace_back("%" + LikeEscaped(q) + "%");
  }
  if (terms.empty()) return std::string("[]");
  std::string where = "(";
  for (size_t i = 0; i < terms.size(); ++i) where += (i ? " OR " : "") + terms[i];
  where += ")";
  const SecurityScope scope = ScopeOf(caller);
  if (scope.partner) {
    where += " AND partner_id = ?";
    params.emplace_back(*scope.partner);
  }
  if (scope.subscriber) {
    where += " AND subscriber_id = ?";
    params.emplace_back(*scope.subscriber);
  }
  const std::string sql = "SELECT " + std::string(kColumns) + " FROM subscribers WHERE " + where +
                          " ORDER BY subscriber_id LIMIT " + std::to_string(limit);
  TextTable table;
  TALLY_RETURN_IF_ERROR(pipeline->RunExclusive([&](EventStore& store) {
    TALLY_ASSIGN_OR_RETURN(table, store.Query(sql, params));
    return Status::Ok();
  }));
  TextBuffer out(256 + table.rows.size() * 384);
  out.Put('[');
  for (size_t i = 0; i < table.rows.size(); ++i) {
    if (i) out.Put(',');
    PutProfile(out, table, i, caller.role);
  }
  out.Put(']');
  *count = table.rows.size();
  return std::string(out.view());
}

HttpResponse SubscriberApi::Search(const HttpRequest& request, const Principal& caller) {
  auto q_it = request.query.find("q");
  const std::string q = q_it == request.query.end() ? "" : q_it->second;
  if (q.empty() || q.size() > 128) {
    return JsonError(400, "?q: expected 1 to 128 characters (a subscriber id, MSISDN or name)");
  }
  int64_t limit = 20;
  if (auto l = request.query.find("limit"); l != request.query.end()) {
    auto v = PositiveId(l->second);
    if (!v || *v > kMaxLimit) {
      return JsonError(400, "?limit: expected 1.." + std::to_string(kMaxLimit));
    }
    limit = *v;
  }
  size_t count = 0;
  Result<std::string> found = SearchSubscribersJson(pipeline_, caller, q, limit, &count);
  if (!found.ok()) {
    const bool invalid = found.status().code() == Status::Code::kInvalidArgument;
    return JsonError(invalid ? 400 : 500,
                     invalid ? "?" + found.status().message() : found.status().message());
  }
  HttpResponse r = JsonResponse(200, "{\"subscribers\":" + std::move(*found) + "}");
  r.headers.emplace_back("X-Tally-Rows", std::to_string(count));
  return r;
}

}  // namespace tally
