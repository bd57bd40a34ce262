#include "sql/sql_guard.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace tally {

namespace {

// Functions a read-only analytic query may call: aggregates, window functions, arithmetic,
// strings, dates and conditionals. Nothing that reads files, settings, the catalog or the
// environment. Sorted, for binary search.
constexpr std::array kAllowedFunctions = std::to_array<std::string_view>({
    "abs",
    "acos",
    "age",
    "any_value",
    "approx_count_distinct",
    "array_agg",
    "asin",
    "atan",
    "atan2",
    "avg",
    "bit_length",
    "bool_and",
    "bool_or",
    "btrim",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "concat",
    "concat_ws",
    "corr",
    "cos",
    "count",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "date_diff",
    "date_part",
    "date_trunc",
    "datediff",
    "datepart",
    "datetrunc",
    "day",
    "dayofweek",
    "dayofyear",
    "degrees",
    "dense_rank",
    "div",
    "epoch",
    "every",
    "exp",
    "extract",
    "first_value",
    "floor",
    "greatest",
    "hour",
    "initcap",
    "isfinite",
    "lag",
    "last_day",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "log",
    "log10",
    "log2",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_time",
    "make_timestamp",
    "max",
    "md5",
    "median",
    "min",
    "minute",
    "mod",
    "mode",
    "month",
    "monthname",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "octet_length",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pi",
    "position",
    "pow",
    "power",
    "quarter",
    "radians",
    "rank",
    "regexp_matches",
    "regexp_replace",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "rpad",
    "rtrim",
    "second",
    "sign",
    "sin",
    "split_part",
    "sqrt",
    "starts_with",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "strftime",
    "string_agg",
    "strpos",
    "strptime",
    "substr",
    "substring",
    "sum",
    "tan",
    "timezone",
    "to_timestamp",
    "trim",
    "trunc",
    "upper",
    "var_pop",
    "var_samp",
    "variance",
    "week",
    "weekday",
    "year",
});
static_assert(std::is_sorted(kAllowedFunctions.begin(), kAllowedFunctions.end()));

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string At(simdjson::dom::object o) {
  int64_t location = -1;
  if (o["location"].get(location) == simdjson::SUCCESS && location >= 0) {
    return " at " + std::to_string(location + 1);
  }
  return "";
}

// " at N" for the first location found in `e`, depth first (a node without its own location,
// such as a function in FROM, takes its first child's).
std::string FirstAt(simdjson::dom::element e) {
  if (e.is_array()) {
    for (simdjson::dom::element item : simdjson::dom::array(e)) {
      std::string at = FirstAt(item);
      if (!at.empty()) return at;
    }
  } else if (e.is_object()) {
    simdjson::dom::object o = e;
    std::string at = At(o);
    if (!at.empty()) return at;
    for (auto [key, value] : o) {
      at = FirstAt(value);
      if (!at.empty()) return at;
    }
  }
  return "";
}

// "CopyStmt" -> "COPY", "VariableSetStmt" -> "SET": what a user would call the statement.
std::string StatementName(std::string_view kind) {
  static const std::array<std::pair<std::string_view, std::string_view>, 12> kNames = {{
      {"InsertStmt", "INSERT"},
      {"UpdateStmt", "UPDATE"},
      {"DeleteStmt", "DELETE"},
      {"MergeStmt", "MERGE"},
      {"CopyStmt", "COPY"},
      {"VariableSetStmt", "SET"},
      {"VariableShowStmt", "SHOW"},
      {"CreateStmt", "CREATE TABLE"},
      {"CreateTableAsStmt", "CREATE TABLE AS"},
      {"DropStmt", "DROP"},
      {"ExplainStmt", "EXPLAIN"},
      {"TransactionStmt", "a transaction statement"},
  }};
  for (auto [k, name] : kNames) {
    if (k == kind) return std::string(name);
  }
  std::string s(kind);
  if (s.size() > 4 && s.ends_with("Stmt")) s.resize(s.size() - 4);
  return s + " (a statement other than SELECT)";
}

// Walks a parse tree (libpg_query's JSON) and refuses the first node that breaks a rule.
class Walker {
 public:
  explicit Walker(const std::set<std::string>& governed) : governed_(governed) {}

  Status Statement(simdjson::dom::object stmt) {
    for (auto [key, value] : stmt) {
      if (key == "VariableSetStmt" || key == "VariableShowStmt" || key == "TransactionStmt" ||
          key == "DiscardStmt") {
        return Session(key, value);
      }
      if (key != "SelectStmt") {
        return Status::InvalidArgument("only SELECT is allowed: this is " + StatementName(key));
      }
      simdjson::dom::object select;
      if (value.get(select) != simdjson::SUCCESS) return Malformed();
      return Select(select, {});
    }
    return Malformed();
  }

  GuardedQuery& result() { return result_; }

  // The session statements BI tools send on their own: answered, never run.
  Status Session(std::string_view key, simdjson::dom::element value) {
    result_.kind = GuardedQuery::Kind::kSession;
    std::string_view kind, name;
    if (value["kind"].get(kind) != simdjson::SUCCESS) kind = "";
    if (value["name"].get(name) != simdjson::SUCCESS) name = "";
    if (key == "VariableShowStmt") {
      result_.tag = "SHOW";
      result_.setting = Lower(name);
      return Status::Ok();
    }
    if (key == "DiscardStmt") {
      result_.tag = "DISCARD ALL";
      return Status::Ok();
    }
    if (key == "TransactionStmt") {
      static const std::array<std::pair<std::string_view, std::string_view>, 4> kTags = {{
          {"TRANS_STMT_BEGIN", "BEGIN"},
          {"TRANS_STMT_START", "START TRANSACTION"},
          {"TRANS_STMT_COMMIT", "COMMIT"},
          {"TRANS_STMT_ROLLBACK", "ROLLBACK"},
      }};
      for (auto [k, tag] : kTags) {
        if (k == kind) {
          result_.tag = std::string(tag);
          return Status::Ok();
        }
      }
      return Status::InvalidArgument(
          "only BEGIN, COMMIT and ROLLBACK are accepted (every query is read-only)");
    }
    // SET: a client setting, or SET TRANSACTION/SESSION CHARACTERISTICS (VAR_SET_MULTI).
    if (kind == "VAR_SET_MULTI" || SessionSettingAllowed(Lower(name))) {
      result_.tag = kind == "VAR_RESET" || kind == "VAR_RESET_ALL" ? "RESET" : "SET";
      return Status::Ok();
    }
    return Status::InvalidArgument("SET " + std::string(name) +
                                   " is not allowed: a client may set only " +
                                   "application_name, client_encoding, DateStyle, "
                                   "extra_float_digits, search_path, TimeZone and the like "
                                   "(docs/sql.md), and they change nothing");
  }

 private:
  using Scope = std::vector<std::string>;  // the CTE names visible here

  static Status Malformed() { return Status::InvalidArgument("unexpected parse tree"); }

  // A SelectStmt's fields: its WITH list first, each CTE seeing only the ones before it (and
  // itself, when recursive); the rest of the statement sees them all.
  Status Select(simdjson::dom::object select, Scope scope) {
    simdjson::dom::object with;
    if (select["withClause"].get(with) == simdjson::SUCCESS) {
      bool recursive = false;
      if (with["recursive"].get(recursive) != simdjson::SUCCESS) recursive = false;
      simdjson::dom::array ctes;
      if (with["ctes"].get(ctes) != simdjson::SUCCESS) return Malformed();
      for (simdjson::dom::element item : ctes) {
        simdjson::dom::object cte;
        std::string_view name;
        if (item["CommonTableExpr"].get(cte) != simdjson::SUCCESS ||
            cte["ctename"].get(name) != simdjson::SUCCESS) {
          return Malformed();
        }
        Scope visible = scope;
        if (recursive) visible.emplace_back(name);
        simdjson::dom::element query;
        if (cte["ctequery"].get(query) != simdjson::SUCCESS) return Malformed();
        TALLY_RETURN_IF_ERROR(Node(query, visible));
        scope.emplace_back(name);
      }
    }
    for (auto [key, value] : select) {
      if (key == "withClause") continue;
      if (key == "larg" || key == "rarg") {  // the arms of UNION, INTERSECT, EXCEPT
        simdjson::dom::object arm;
        if (value.get(arm) != simdjson::SUCCESS) return Malformed();
        TALLY_RETURN_IF_ERROR(Select(arm, scope));
        continue;
      }
      if (key == "intoClause") return Status::InvalidArgument("SELECT INTO is not allowed");
      if (key == "lockingClause") {
        return Status::InvalidArgument("FOR UPDATE and FOR SHARE are not allowed");
      }
      TALLY_RETURN_IF_ERROR(Node(value, scope));
    }
    return Status::Ok();
  }

  Status Node(simdjson::dom::element e, const Scope& scope) {
    if (e.is_array()) {
      for (simdjson::dom::element item : simdjson::dom::array(e)) {
        TALLY_RETURN_IF_ERROR(Node(item, scope));
      }
      return Status::Ok();
    }
    if (!e.is_object()) return Status::Ok();
    for (auto [key, value] : simdjson::dom::object(e)) {
      TALLY_RETURN_IF_ERROR(Field(key, value, scope));
    }
    return Status::Ok();
  }

  Status Field(std::string_view key, simdjson::dom::element value, const Scope& scope) {
    if (key == "SelectStmt") {
      simdjson::dom::object select;
      if (value.get(select) != simdjson::SUCCESS) return Malformed();
      return Select(select, scope);
    }
    if (key.size() > 4 && key.ends_with("Stmt")) {
      return Status::InvalidArgument("only SELECT is allowed: the query contains " +
                                     StatementName(key));
    }
    if (key == "RangeVar") return Relation(value, scope);
    if (key == "RangeFunction" || key == "RangeTableFunc") {
      return Status::InvalidArgument("a function in FROM" + FirstAt(value) +
                                     " is not allowed: read the governed relations");
    }
    if (key == "FuncCall") {
      TALLY_RETURN_IF_ERROR(Function(value));
    } else if (key == "ParamRef") {
      int64_t n = 0;
      if (value["number"].get(n) == simdjson::SUCCESS) {
        result_.parameters = std::max(result_.parameters, static_cast<int>(n));
      }
    }
    return Node(value, scope);
  }

  Status Relation(simdjson::dom::element value, const Scope& scope) {
    simdjson::dom::object rv;
    std::string_view name;
    if (value.get(rv) != simdjson::SUCCESS || rv["relname"].get(name) != simdjson::SUCCESS) {
      return Malformed();
    }
    std::string_view schema, catalog;
    const bool has_schema = rv["schemaname"].get(schema) == simdjson::SUCCESS;
    const bool has_catalog = rv["catalogname"].get(catalog) == simdjson::SUCCESS;
    if (has_schema || has_catalog) {
      return Status::InvalidArgument(
          "relation " + std::string(has_catalog ? std::string(catalog) + "." : "") +
          std::string(schema) + "." + std::string(name) + At(rv) +
          " is not allowed: name a governed relation without a schema (" + List() + ")");
    }
    if (std::find(scope.begin(), scope.end(), name) != scope.end()) return Status::Ok();
    if (governed_.count(std::string(name))) {
      result_.relations.emplace(name);
      return Status::Ok();
    }
    return Status::InvalidArgument("relation \"" + std::string(name) + "\"" + At(rv) +
                                   " is not one of the governed relations (" + List() + ")");
  }

  Status Function(simdjson::dom::element value) {
    simdjson::dom::object call;
    simdjson::dom::array parts;
    if (value.get(call) != simdjson::SUCCESS || call["funcname"].get(parts) != simdjson::SUCCESS) {
      return Malformed();
    }
    std::vector<std::string> names;
    for (simdjson::dom::element p : parts) {
      std::string_view s;
      if (p["String"]["sval"].get(s) != simdjson::SUCCESS) return Malformed();
      names.emplace_back(s);
    }
    std::string full;
    for (const auto& n : names) full += (full.empty() ? "" : ".") + n;
    // The parser itself qualifies the functions behind SQL syntax (EXTRACT, SUBSTRING ... FROM,
    // AT TIME ZONE) with pg_catalog; any other qualification is refused.
    const bool qualified_ok = names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog");
    if (names.empty() || !qualified_ok || !FunctionAllowed(Lower(names.back()))) {
      return Status::InvalidArgument("function " + full + At(call) + " is not allowed");
    }
    return Status::Ok();
  }

  std::string List() const {
    std::string out;
    for (const auto& r : governed_) out += (out.empty() ? "" : ", ") + r;
    return out;
  }

  const std::set<std::string>& governed_;
  GuardedQuery result_;
};

}  // namespace

bool SessionSettingAllowed(std::string_view name) {
  static constexpr std::array kSettings = std::to_array<std::string_view>({
      "application_name",
      "bytea_output",
      "client_encoding",
      "client_min_messages",
      "datestyle",
      "default_transaction_isolation",
      "default_transaction_read_only",
      "extra_float_digits",
      "geqo",
      "intervalstyle",
      "lc_messages",
      "lc_monetary",
      "lc_numeric",
      "lc_time",
      "search_path",
      "standard_conforming_strings",
      "statement_timeout",
      "timezone",
      "transaction_isolation",
      "transaction_read_only",
  });
  static_assert(std::is_sorted(kSettings.begin(), kSettings.end()));
  return std::binary_search(kSettings.begin(), kSettings.end(), name);
}

bool FunctionAllowed(std::string_view name) {
  return std::binary_search(kAllowedFunctions.begin(), kAllowedFunctions.end(), name);
}

Result<GuardedQuery> GuardSelect(std::string_view sql, const std::set<std::string>& relations) {
  const std::string text(sql);  // the parser needs a terminating NUL
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  struct Free {
    PgQueryParseResult& r;
    ~Free() { pg_query_free_parse_result(r); }
  } free_parsed{parsed};
  if (parsed.error) {
    std::string message = parsed.error->message ? parsed.error->message : "syntax error";
    if (parsed.error->cursorpos > 0) message += " at " + std::to_string(parsed.error->cursorpos);
    return Status::InvalidArgument(message);
  }
  simdjson::dom::parser json;
  simdjson::dom::element tree;
  if (json.parse(parsed.parse_tree, std::strlen(parsed.parse_tree)).get(tree) !=
      simdjson::SUCCESS) {
    return Status::Internal("the parser's tree is not JSON");
  }
  simdjson::dom::array stmts;
  if (tree["stmts"].get(stmts) != simdjson::SUCCESS || stmts.size() == 0) {
    return Status::InvalidArgument("empty query: send one SELECT");
  }
  if (stmts.size() > 1) {
    return Status::InvalidArgument("one statement at a time: this query has " +
                                   std::to_string(stmts.size()));
  }
  simdjson::dom::object stmt;
  if (stmts.at(0)["stmt"].get(stmt) != simdjson::SUCCESS) {
    return Status::InvalidArgument("empty query: send one SELECT");
  }
  Walker walker(relations);
  TALLY_RETURN_IF_ERROR(walker.Statement(stmt));
  return std::move(walker.result());
}

}  // namespace tally
