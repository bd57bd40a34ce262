#include "api/subscriber_api.h"

#include <array>
#include <charconv>

#include "api/responses.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"
#include "core/utf8.h"
#include "metrics/compiler.h"

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

// How one column of an activity list is written to JSON.
enum class Cell : uint8_t { kText, kNumber, kBool, kTime, kCounterparty };

struct ActivityColumn {
  std::string_view name;
  Cell cell;
};

// One list of GET /v1/subscribers/{id}/activity: its key, the family it reads, a fixed extra
// condition (no caller text) and its columns; ts comes first in every list.
struct ActivityList {
  std::string_view key;
  EventFamily family;
  std::string_view condition;
  std::vector<ActivityColumn> columns;
};

const std::array<ActivityList, 4>& ActivityLists() {
  static const std::array<ActivityList, 4> k = {{
      {"sessions",
       EventFamily::kUsage,
       "",
       {{"ts", Cell::kTime},
        {"kind", Cell::kText},
        {"duration_s", Cell::kNumber},
        {"bytes", Cell::kNumber},
        {"counterparty", Cell::kCounterparty},
        {"destination", Cell::kText},
        {"roaming", Cell::kBool},
        {"roaming_country", Cell::kText},
        {"tower_id", Cell::kNumber},
        {"session_ref", Cell::kText}}},
      {"drops",
       EventFamily::kNetwork,
       " AND kind = 'call_drop'",
       {{"ts", Cell::kTime},
        {"cause", Cell::kText},
        {"tower_id", Cell::kNumber},
        {"session_ref", Cell::kText}}},
      {"complaints",
       EventFamily::kComplaint,
       "",
       {{"ts", Cell::kTime},
        {"case_id", Cell::kText},
        {"category", Cell::kText},
        {"channel", Cell::kText},
        {"priority", Cell::kText},
        {"resolution_hours", Cell::kNumber}}},
      {"recharges",
       EventFamily::kRecharge,
       "",
       {{"ts", Cell::kTime},
        {"amount_minor", Cell::kNumber},
        {"currency", Cell::kText},
        {"channel", Cell::kText},
        {"payment_status", Cell::kText}}},
  }};
  return k;
}

// Appends the rows of `t` (read with `list`'s columns) as a JSON array of objects. Sessions get
// "live": true when they were still open at `as_of`.
void PutActivity(TextBuffer& out, const ActivityList& list, const TextTable& t, Timestamp as_of,
                 Role role) {
  const bool sessions = list.family == EventFamily::kUsage;
  out.Put('[');
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (r) out.Put(',');
    out.Put('{');
    std::optional<Timestamp> start;
    std::optional<int64_t> duration;
    for (size_t c = 0; c < list.columns.size(); ++c) {
      const ActivityColumn& col = list.columns[c];
      if (c) out.Put(',');
      out.PutJsonString(col.name);
      out.Put(':');
      const std::optional<std::string>& v = t.rows[r][c];
      if (!v) {
        out.Put("null");
        continue;
      }
      switch (col.cell) {
        case Cell::kNumber:
          out.Put(*v);
          if (col.name == "duration_s") duration = std::strtoll(v->c_str(), nullptr, 10);
          break;
        case Cell::kBool:
          out.Put(*v == "true" || *v == "1" ? "true" : "false");
          break;
        case Cell::kTime: {
          Result<Timestamp> ts = ParseTimestamp(*v);
          if (ts.ok()) start = *ts;
          out.PutJsonString(ts.ok() ? FormatTimestamp(*ts) : ValidUtf8OrEscaped(*v));
          break;
        }
        case Cell::kCounterparty:
          out.PutJsonString(MaskMsisdn(*v, role));
          break;
        case Cell::kText:
          out.PutJsonString(ValidUtf8OrEscaped(*v));
          break;
      }
    }
    if (sessions) {
      const bool live = start && duration && start->micros + *duration * 1000000 > as_of.micros;
      out.Put(live ? ",\"live\":true" : ",\"live\":false");
    }
    out.Put('}');
  }
  out.Put(']');
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
  std::string_view id_text = path.substr(kPrefix.size() + 1);
  std::string_view action;
  if (const size_t slash = id_text.find('/'); slash != std::string_view::npos) {
    action = id_text.substr(slash + 1);
    id_text = id_text.substr(0, slash);
    if (action != "activity") return std::nullopt;
  }
  const std::optional<int64_t> id = PositiveId(id_text);
  if (!id) {
    return JsonError(400, "subscriber id '" + std::string(id_text.substr(0, 32)) +
                              "': expected a positive integer");
  }
  return action.empty() ? Profile(caller, *id) : Activity(request, caller, *id);
}

Result<std::string> SubscriberProfileJson(IngestPipeline* pipeline, const Principal& caller,
                                          int64_t id) {
  const SecurityScope scope = ScopeOf(caller);
  if (scope.subscriber && *scope.subscriber != id) {
    return Status::NotFound(SubscriberNotFound(SubscriberId(id)));
  }
  std::string where = " AS s WHERE subscriber_id = ?";
  std::vector<SqlParam> params = {id};
  if (scope.partner) {
    where += " AND partner_id = ?";
    params.emplace_back(*scope.partner);
  }
  TextTable table;
  TALLY_RETURN_IF_ERROR(pipeline->RunRead([&](StoreReader& store) {
    TALLY_ASSIGN_OR_RETURN(table, store.Query("SELECT " + std::string(kColumns) + " FROM " +
                                                  store.TableSql("subscribers") + where,
                                              params));
    return Status::Ok();
  }));
  if (table.rows.empty()) return Status::NotFound(SubscriberNotFound(SubscriberId(id)));
  TextBuffer out(512);
  PutProfile(out, table, 0, caller.role);
  return std::string(out.view());
}

Result<std::string> SubscriberActivityJson(IngestPipeline* pipeline, const Principal& caller,
                                           int64_t id, int64_t hours, int64_t limit,
                                           std::optional<Timestamp> until) {
  if (hours < 1 || hours > SubscriberApi::kMaxActivityHours) {
    return Status::InvalidArgument("hours: expected 1.." +
                                   std::to_string(SubscriberApi::kMaxActivityHours));
  }
  if (limit < 1 || limit > SubscriberApi::kMaxLimit) {
    return Status::InvalidArgument("limit: expected 1.." +
                                   std::to_string(SubscriberApi::kMaxLimit));
  }
  if (!MaySeeSubscriber(caller, SubscriberId(id), *pipeline)) {
    return Status::NotFound(SubscriberNotFound(SubscriberId(id)));
  }
  const SecurityScope scope = ScopeOf(caller);
  TextBuffer out(4096);
  TALLY_RETURN_IF_ERROR(pipeline->RunRead([&](StoreReader& store) {
    const std::optional<Timestamp> end = until ? until : pipeline->watermark();
    out.Put("{\"subscriber_id\":");
    out.Put(std::to_string(id));
    out.Put(",\"hours\":");
    out.Put(std::to_string(hours));
    out.Put(",\"as_of\":");
    if (end) {
      out.PutJsonString(FormatTimestamp(*end));
    } else {
      out.Put("null");
    }
    std::string counts;
    for (const ActivityList& list : ActivityLists()) {
      out.Put(',');
      out.PutJsonString(list.key);
      out.Put(':');
      if (!end) {
        out.Put("[]");
        counts += std::string(counts.empty() ? "" : ",") + "\"" + std::string(list.key) + "\":0";
        continue;
      }
      // The newest stored event is inside its window; a given end is not.
      const TimeRange range{Timestamp{end->micros - hours * 3600 * 1000000},
                            Timestamp{end->micros + (until ? 0 : 1)}};
      TALLY_ASSIGN_OR_RETURN(EventRelation rel, store.Relation(list.family, range));
      std::string where = " FROM (" + rel.sql + ") AS e WHERE subscriber_id = ?";
      std::vector<SqlParam> params = {id};
      if (scope.partner) {
        where += " AND partner_id = ?";
        params.emplace_back(*scope.partner);
      }
      where += list.condition;
      std::string columns;
      for (const ActivityColumn& c : list.columns) {
        columns += (columns.empty() ? "" : ", ") + std::string(c.name);
      }
      TALLY_ASSIGN_OR_RETURN(TextTable rows,
                             store.Query("SELECT " + columns + where + " ORDER BY ts DESC LIMIT " +
                                             std::to_string(limit),
                                         params));
      TALLY_ASSIGN_OR_RETURN(TextTable count, store.Query("SELECT COUNT(*)" + where, params));
      PutActivity(out, list, rows, *end, caller.role);
      counts += std::string(counts.empty() ? "" : ",") + "\"" + std::string(list.key) +
                "\":" + count.rows.at(0).at(0).value_or("0");
    }
    out.Put(",\"counts\":{");
    out.Put(counts);
    out.Put("}}");
    return Status::Ok();
  }));
  return std::string(out.view());
}

HttpResponse SubscriberApi::Activity(const HttpRequest& request, const Principal& caller,
                                     int64_t id) {
  int64_t hours = 72, limit = 20;
  std::optional<Timestamp> until;
  if (auto to = request.query.find("to"); to != request.query.end()) {
    // A date is the end of that day; a timestamp is the end itself.
    if (Result<Date> day = ParseDate(to->second); day.ok()) {
      until = StartOfDay(Date{day->days + 1});
    } else if (Result<Timestamp> ts = ParseTimestamp(to->second); ts.ok()) {
      until = *ts;
    } else {
      return JsonError(400, "?to: '" + to->second.substr(0, 40) +
                                "' is not a date (YYYY-MM-DD) or an ISO 8601 timestamp");
    }
  }
  for (auto [name, target] :
       {std::pair<const char*, int64_t*>{"hours", &hours}, {"limit", &limit}}) {
    auto it = request.query.find(name);
    if (it == request.query.end()) continue;
    const std::optional<int64_t> v = PositiveId(it->second);
    *target = v.value_or(0);  // 0 is out of range: the error below names the parameter
  }
  Result<std::string> json = SubscriberActivityJson(pipeline_, caller, id, hours, limit, until);
  if (!json.ok()) {
    const Status::Code code = json.status().code();
    const int status = code == Status::Code::kNotFound          ? 404
                       : code == Status::Code::kInvalidArgument ? 400
                                                                : 500;
    return JsonError(status, (status == 400 ? "?" : "") + json.status().message());
  }
  return JsonResponse(200, std::move(*json));
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
  std::optional<std::string> name_part;  // a name search (SqlDialect::ContainsIgnoringCase)
  if (digits) {
    if (auto id = PositiveId(q)) {
      terms.push_back("subscriber_id = ?");
      params.emplace_back(*id);
    }
    if (sees_msisdn && q.size() >= 4) {  // the last digits of a number, as a caller reads them
      terms.push_back("msisdn LIKE ?");  // digits only: nothing to escape
      params.emplace_back("%" + std::string(q));
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
    name_part = std::string(q);
  }
  if (terms.empty() && !name_part) return std::string("[]");
  const SecurityScope scope = ScopeOf(caller);
  TextTable table;
  TALLY_RETURN_IF_ERROR(pipeline->RunRead([&](StoreReader& store) {
    std::vector<std::string> where_terms = terms;
    std::vector<SqlParam> where_params = params;
    if (name_part) {  // a part of the name, in any case
      auto [term, value] = DialectFor(store)->ContainsIgnoringCase("name", *name_part);
      where_terms.push_back(term);
      where_params.emplace_back(std::in_place_type<std::string>, value);
    }
    std::string where = "(";
    for (size_t i = 0; i < where_terms.size(); ++i) {
      where += (i ? " OR " : "") + where_terms[i];
    }
    where += ")";
    if (scope.partner) {
      where += " AND partner_id = ?";
      where_params.emplace_back(*scope.partner);
    }
    if (scope.subscriber) {
      where += " AND subscriber_id = ?";
      where_params.emplace_back(*scope.subscriber);
    }
    const std::string sql = "SELECT " + std::string(kColumns) + " FROM " +
                            store.TableSql("subscribers") + " AS s WHERE " + where +
                            " ORDER BY subscriber_id LIMIT " + std::to_string(limit);
    TALLY_ASSIGN_OR_RETURN(table, store.Query(sql, where_params));
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
