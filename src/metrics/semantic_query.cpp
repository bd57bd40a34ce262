#include "metrics/semantic_query.h"

#include <simdjson.h>

#include <algorithm>
#include <array>

namespace tally {

namespace {

constexpr std::array<std::string_view, 8> kOpNames = {"equals", "notEquals", "gt",  "gte",
                                                      "lt",     "lte",       "set", "notSet"};

using simdjson::dom::element;
using simdjson::dom::element_type;

Status Bad(const std::string& field, const std::string& what) {
  return Status::InvalidArgument("query: " + field + ": " + what);
}

Result<std::string> StringAt(element v, const std::string& field) {
  std::string_view s;
  if (v.get(s) != simdjson::SUCCESS) return Bad(field, "must be a string");
  if (s.size() > 256) return Bad(field, "longer than 256 bytes");
  return std::string(s);
}

Result<std::vector<std::string>> StringsAt(element v, const std::string& field) {
  simdjson::dom::array arr;
  if (v.get(arr) != simdjson::SUCCESS) return Bad(field, "must be an array of strings");
  std::vector<std::string> out;
  size_t i = 0;
  for (element item : arr) {
    TALLY_ASSIGN_OR_RETURN(std::string s, StringAt(item, field + "[" + std::to_string(i++) + "]"));
    out.push_back(std::move(s));
  }
  return out;
}

// A dateRange bound: a date (start of that day, or of the next day for the end) or a timestamp.
Result<Timestamp> Bound(element v, const std::string& field, bool end) {
  TALLY_ASSIGN_OR_RETURN(std::string text, StringAt(v, field));
  if (text.size() == 10) {
    auto d = ParseDate(text);
    if (!d.ok()) return Bad(field, d.status().message());
    return StartOfDay(Date{d->days + (end ? 1 : 0)});
  }
  auto ts = ParseTimestamp(text);
  if (!ts.ok()) return Bad(field, ts.status().message());
  return *ts;
}

Status ParseTime(element v, SemanticQuery* q, bool* have_range) {
  simdjson::dom::array arr;
  if (v.get(arr) != simdjson::SUCCESS || arr.size() != 1) {
    return Bad("timeDimensions", "must be an array of one object");
  }
  element td = arr.at(0);
  simdjson::dom::object obj;
  if (td.get(obj) != simdjson::SUCCESS) return Bad("timeDimensions[0]", "must be an object");
  for (auto [key, val] : obj) {
    const std::string field = "timeDimensions[0]." + std::string(key);
    if (key == "dimension") {
      TALLY_ASSIGN_OR_RETURN(std::string d, StringAt(val, field));
      if (d != "time") return Bad(field, "the time dimension is 'time', not '" + d + "'");
    } else if (key == "granularity") {
      if (val.is_null()) continue;
      TALLY_ASSIGN_OR_RETURN(std::string g, StringAt(val, field));
      auto parsed = GranularityNamed(g);
      if (!parsed) {
        return Bad(field, "'" + g +
                              "' is not a granularity (minute, 5minute, hour, day, week, month, "
                              "year)");
      }
      q->granularity = *parsed;
    } else if (key == "dateRange") {
      simdjson::dom::array range;
      if (val.get(range) != simdjson::SUCCESS || range.size() != 2) {
        return Bad(field, "must be [from, to]");
      }
      TALLY_ASSIGN_OR_RETURN(q->from, Bound(range.at(0), field + "[0]", false));
      TALLY_ASSIGN_OR_RETURN(q->to, Bound(range.at(1), field + "[1]", true));
      *have_range = true;
    } else {
      return Bad(field, "unknown key");
    }
  }
  return Status::Ok();
}

Status ParseFilter(element v, const std::string& field, QueryFilter* f) {
  simdjson::dom::object obj;
  if (v.get(obj) != simdjson::SUCCESS) return Bad(field, "must be an object");
  bool have_op = false;
  for (auto [key, val] : obj) {
    const std::string sub = field + "." + std::string(key);
    if (key == "member" || key == "dimension") {
      TALLY_ASSIGN_OR_RETURN(f->member, StringAt(val, sub));
    } else if (key == "operator") {
      TALLY_ASSIGN_OR_RETURN(std::string op, StringAt(val, sub));
      auto it = std::find(kOpNames.begin(), kOpNames.end(), op);
      if (it == kOpNames.end()) {
        return Bad(sub, "'" + op +
                            "' is not an operator (equals, notEquals, gt, gte, lt, lte, "
                            "set, notSet)");
      }
      f->op = static_cast<FilterOp>(it - kOpNames.begin());
      have_op = true;
    } else if (key == "values") {
      simdjson::dom::array arr;
      if (val.get(arr) != simdjson::SUCCESS) return Bad(sub, "must be an array");
      size_t i = 0;
      for (element item : arr) {
        const std::string at = sub + "[" + std::to_string(i++) + "]";
        if (item.is_string()) {
          TALLY_ASSIGN_OR_RETURN(std::string s, StringAt(item, at));
          f->values.push_back(std::move(s));
        } else if (item.is_int64()) {
          f->values.push_back(std::to_string(item.get_int64().value()));
        } else if (item.is_double()) {
          f->values.push_back(simdjson::minify(item));
        } else {
          return Bad(at, "must be a string or a number");
        }
      }
      if (f->values.size() > 1000) return Bad(sub, "more than 1000 values");
    } else {
      return Bad(sub, "unknown key");
    }
  }
  if (f->member.empty()) return Bad(field + ".member", "is missing");
  if (!have_op) return Bad(field + ".operator", "is missing");
  const bool takes_values = f->op != FilterOp::kSet && f->op != FilterOp::kNotSet;
  if (takes_values && f->values.empty()) return Bad(field + ".values", "needs at least one value");
  if (!takes_values && !f->values.empty()) return Bad(field + ".values", "takes no values");
  const bool single = f->op == FilterOp::kGt || f->op == FilterOp::kGte || f->op == FilterOp::kLt ||
                      f->op == FilterOp::kLte;
  if (single && f->values.size() != 1) return Bad(field + ".values", "takes exactly one value");
  return Status::Ok();
}

Status ParseOrder(element v, std::vector<QueryOrder>* out) {
  auto direction = [](element d, const std::string& field, bool* desc) -> Status {
    TALLY_ASSIGN_OR_RETURN(std::string s, StringAt(d, field));
    if (s != "asc" && s != "desc") return Bad(field, "is 'asc' or 'desc', not '" + s + "'");
    *desc = s == "desc";
    return Status::Ok();
  };
  simdjson::dom::object obj;
  if (v.get(obj) == simdjson::SUCCESS) {
    for (auto [key, val] : obj) {
      QueryOrder o{std::string(key), false};
      TALLY_RETURN_IF_ERROR(direction(val, "order." + std::string(key), &o.descending));
      out->push_back(std::move(o));
    }
    return Status::Ok();
  }
  simdjson::dom::array arr;
  if (v.get(arr) != simdjson::SUCCESS) {
    return Bad("order", "must be an object {member: 'asc'|'desc'} or an array of pairs");
  }
  size_t i = 0;
  for (element pair : arr) {
    const std::string field = "order[" + std::to_string(i++) + "]";
    simdjson::dom::array p;
    if (pair.get(p) != simdjson::SUCCESS || p.size() != 2) {
      return Bad(field, "must be [member, 'asc'|'desc']");
    }
    QueryOrder o;
    TALLY_ASSIGN_OR_RETURN(o.member, StringAt(p.at(0), field + "[0]"));
    TALLY_RETURN_IF_ERROR(direction(p.at(1), field + "[1]", &o.descending));
    out->push_back(std::move(o));
  }
  return Status::Ok();
}

}  // namespace

std::string_view Name(FilterOp op) {
  return kOpNames[static_cast<size_t>(op)];
}

Result<SemanticQuery> ParseSemanticQuery(std::string_view json) {
  if (json.size() > (1 << 20)) return Status::InvalidArgument("query: larger than 1 MiB");
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err) {
    return Status::InvalidArgument(std::string("query: not valid JSON: ") +
                                   simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get(obj) != simdjson::SUCCESS) return Bad("(top level)", "must be an object");
  SemanticQuery q;
  bool have_range = false;
  for (auto [key, val] : obj) {
    const std::string field(key);
    if (key == "measures") {
      TALLY_ASSIGN_OR_RETURN(q.measures, StringsAt(val, field));
    } else if (key == "dimensions") {
      TALLY_ASSIGN_OR_RETURN(q.dimensions, StringsAt(val, field));
    } else if (key == "timeDimensions") {
      TALLY_RETURN_IF_ERROR(ParseTime(val, &q, &have_range));
    } else if (key == "filters") {
      simdjson::dom::array arr;
      if (val.get(arr) != simdjson::SUCCESS) return Bad(field, "must be an array");
      size_t i = 0;
      for (element f : arr) {
        QueryFilter filter;
        TALLY_RETURN_IF_ERROR(ParseFilter(f, "filters[" + std::to_string(i++) + "]", &filter));
        q.filters.push_back(std::move(filter));
      }
    } else if (key == "order") {
      TALLY_RETURN_IF_ERROR(ParseOrder(val, &q.order));
    } else if (key == "limit") {
      int64_t limit = 0;
      if (val.get(limit) != simdjson::SUCCESS || limit < 1 || limit > kMaxQueryLimit) {
        return Bad(field, "must be an integer from 1 to " + std::to_string(kMaxQueryLimit));
      }
      q.limit = limit;
    } else {
      return Bad(field,
                 "unknown key (measures, dimensions, timeDimensions, filters, order, "
                 "limit)");
    }
  }
  if (q.measures.empty()) return Bad("measures", "at least one measure is needed");
  if (!have_range) {
    return Bad("timeDimensions[0].dateRange",
               "is required: every query reads a bounded time range");
  }
  if (q.to.micros <= q.from.micros) return Bad("timeDimensions[0].dateRange", "is empty");
  if (q.to.micros - q.from.micros > kMaxQueryDays * kMicrosPerDay) {
    return Bad("timeDimensions[0].dateRange",
               "spans more than " + std::to_string(kMaxQueryDays) + " days");
  }
  return q;
}

}  // namespace tally
