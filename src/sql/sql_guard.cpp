#include "sql/sql_guard.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>
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
  Walker(const std::set<std::string>& governed, std::string_view text)
      : governed_(governed), text_(text) {}

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
      ColumnNames(select);
      return Select(select, {});
    }
    return Malformed();
  }

  // PostgreSQL's names for the result columns of a plain SELECT list: an alias, else a column's
  // or a function's name, else ?column?. None when the list has a star or the query is a set
  // operation (the names are then the first arm's, as DuckDB gives them).
  void ColumnNames(simdjson::dom::object select) {
    simdjson::dom::array targets;
    if (select["targetList"].get(targets) != simdjson::SUCCESS) return;
    std::vector<std::string> names;
    for (simdjson::dom::element t : targets) {
      simdjson::dom::object target;
      if (t["ResTarget"].get(target) != simdjson::SUCCESS) return;
      std::string_view alias;
      if (target["name"].get(alias) == simdjson::SUCCESS) {
        names.emplace_back(alias);
        continue;
      }
      simdjson::dom::element val;
      if (target["val"].get(val) != simdjson::SUCCESS) return;
      std::optional<std::string> name = NameOf(val);
      if (!name) return;  // a star
      names.push_back(std::move(*name));
    }
    result_.column_names = std::move(names);
  }
  // The name PostgreSQL gives an unaliased expression; nullopt for a star.
  static std::optional<std::string> NameOf(simdjson::dom::element val) {
    simdjson::dom::object o;
    if ((val["ColumnRef"].get(o) == simdjson::SUCCESS)) {
      simdjson::dom::array fields;
      if (o["fields"].get(fields) != simdjson::SUCCESS || fields.size() == 0) return "?column?";
      simdjson::dom::element last = fields.at(fields.size() - 1);
      if (last["A_Star"].is_object()) return std::nullopt;
      std::string_view s;
      return last["String"]["sval"].get(s) == simdjson::SUCCESS ? std::string(s) : "?column?";
    }
    if (val["FuncCall"].get(o) == simdjson::SUCCESS) {
      std::vector<std::string> names;
      simdjson::dom::element parts;
      if (o["funcname"].get(parts) == simdjson::SUCCESS && Names(parts, &names) && !names.empty()) {
        return names.back();
      }
      return "?column?";
    }
    if (val["TypeCast"].get(o) == simdjson::SUCCESS) {
      simdjson::dom::element arg;
      if (o["arg"].get(arg) == simdjson::SUCCESS) {
        std::optional<std::string> inner = NameOf(arg);
        if (inner && *inner != "?column?") return inner;
      }
      std::vector<std::string> names;
      simdjson::dom::element parts;
      if (o["typeName"]["names"].get(parts) == simdjson::SUCCESS && Names(parts, &names) &&
          !names.empty()) {
        return names.back();
      }
      return "?column?";
    }
    if (val["CaseExpr"].is_object()) return "case";
    if (val["CoalesceExpr"].is_object()) return "coalesce";
    if (val["MinMaxExpr"].get(o) == simdjson::SUCCESS) {
      std::string_view op;
      return o["op"].get(op) == simdjson::SUCCESS && op == "IS_LEAST" ? "least" : "greatest";
    }
    if (val["NullIfExpr"].is_object()) return "nullif";
    if (val["SQLValueFunction"].get(o) == simdjson::SUCCESS) {
      std::string_view op;
      if (o["op"].get(op) == simdjson::SUCCESS && op.starts_with("SVFOP_")) {
        return Lower(op.substr(6));
      }
    }
    return "?column?";
  }

  GuardedQuery& result() { return result_; }
  bool reads_catalog() const { return reads_catalog_; }
  //! The refusal of a catalog function (or unnest in FROM) used outside a catalog query.
  const std::string& catalog_only() const { return catalog_only_; }

  //! The text with every edit applied, last first.
  std::string Rewritten() {
    std::sort(edits_.begin(), edits_.end(),
              [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
    std::string out(text_);
    size_t floor = out.size();
    for (const Edit& e : edits_) {
      if (e.end > floor) continue;  // overlapping: keep the later one
      out.replace(e.begin, e.end - e.begin, e.with);
      floor = e.begin;
    }
    return out;
  }

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
    if (key == "RangeFunction" && IsCatalogTableFunction(value)) {
      // unnest or generate_series in FROM: for catalog queries only (psql's \d uses them).
      if (catalog_only_.empty()) {
        catalog_only_ =
            "a function in FROM" + FirstAt(value) + " is not allowed: read the governed relations";
      }
      NameTheColumnByTheAlias(value);
    } else if (key == "RangeFunction" || key == "RangeTableFunc") {
      return Status::InvalidArgument("a function in FROM" + FirstAt(value) +
                                     " is not allowed: read the governed relations");
    }
    if (key == "FuncCall") {
      TALLY_RETURN_IF_ERROR(Function(value));
    } else if (key == "typeName" || key == "A_Expr" || key == "CollateClause") {
      simdjson::dom::object o;
      if (value.get(o) != simdjson::SUCCESS) return Malformed();
      std::vector<std::string> names;
      const char* field = key == "typeName" ? "names" : key == "A_Expr" ? "name" : "collname";
      simdjson::dom::element list;
      if (o[field].get(list) == simdjson::SUCCESS && Names(list, &names) && names.size() == 2 &&
          names[0] == "pg_catalog") {
        if (key == "typeName") DropQualifier(Location(o), "pg_catalog");
        if (key == "A_Expr") BareOperator(Location(o), names[1]);
        if (key == "CollateClause") DropCollate(Location(o));
      }
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
    if (has_schema && !has_catalog && (schema == "pg_catalog" || schema == "information_schema")) {
      reads_catalog_ = true;  // the catalog database's snapshot of it: pgc.pg, pgc.info
      const int64_t at = Location(rv);
      if (at >= 0 && WordAt(static_cast<size_t>(at), schema)) {
        edits_.push_back({static_cast<size_t>(at), static_cast<size_t>(at) + schema.size(),
                          schema == "pg_catalog" ? "pgc.pg" : "pgc.info"});
      }
      return Status::Ok();
    }
    if (has_schema && !has_catalog && schema == "public" && governed_.count(std::string(name))) {
      DropQualifier(Location(rv), "public");  // the governed relations are public's tables
      result_.relations.emplace(name);
      return Status::Ok();
    }
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
    if (name.starts_with("pg_")) {  // a catalog table by its plain name, as PostgreSQL allows
      reads_catalog_ = true;
      if (Location(rv) >= 0) {
        edits_.push_back({size_t(Location(rv)), size_t(Location(rv)), "pgc.pg."});
      }
      return Status::Ok();
    }
    return Status::InvalidArgument("relation \"" + std::string(name) + "\"" + At(rv) +
                                   " is not one of the governed relations (" + List() + ")");
  }

  // `FROM f(...) s`: PostgreSQL names the function's one column s too; DuckDB names only the
  // table, so `s(s)` is written for it (after the alias, found past the call's parentheses).
  void NameTheColumnByTheAlias(simdjson::dom::element value) {
    std::string_view alias;
    simdjson::dom::array colnames;
    if (value["alias"]["aliasname"].get(alias) != simdjson::SUCCESS ||
        value["alias"]["colnames"].get(colnames) == simdjson::SUCCESS) {
      return;
    }
    simdjson::dom::object call;
    if (value["functions"].at(0)["List"]["items"].at(0)["FuncCall"].get(call) !=
        simdjson::SUCCESS) {
      return;
    }
    const int64_t location = Location(call);
    if (location < 0) return;
    size_t at = text_.find('(', static_cast<size_t>(location));
    int depth = 0;
    for (; at < text_.size(); ++at) {
      if (text_[at] == '\'') {
        at = text_.find('\'', at + 1);
        if (at == std::string_view::npos) return;
      } else if (text_[at] == '(') {
        ++depth;
      } else if (text_[at] == ')' && --depth == 0) {
        break;
      }
    }
    if (at >= text_.size()) return;
    at = SkipSpace(at + 1);
    if (WordAt(at, "as")) at = SkipSpace(at + 2);
    if (!WordAt(at, Lower(alias))) return;
    const size_t end = at + alias.size();
    edits_.push_back({end, end, "(" + std::string(alias) + ")"});
  }

  // A RangeFunction calling one catalog function (unnest, generate_series) and nothing else.
  static bool IsCatalogTableFunction(simdjson::dom::element value) {
    simdjson::dom::array functions;
    if (value["functions"].get(functions) != simdjson::SUCCESS || functions.size() != 1) {
      return false;
    }
    simdjson::dom::array items;
    if (functions.at(0)["List"]["items"].get(items) != simdjson::SUCCESS || items.size() == 0) {
      return false;
    }
    simdjson::dom::element parts;
    if (items.at(0)["FuncCall"]["funcname"].get(parts) != simdjson::SUCCESS) return false;
    std::vector<std::string> names;
    if (!Names(parts, &names) || names.empty()) return false;
    const std::string name = Lower(names.back());
    return name == "unnest" || name == "generate_series";
  }

  Status Function(simdjson::dom::element value) {
    simdjson::dom::object call;
    simdjson::dom::element parts;
    if (value.get(call) != simdjson::SUCCESS || call["funcname"].get(parts) != simdjson::SUCCESS) {
      return Malformed();
    }
    std::vector<std::string> names;
    if (!Names(parts, &names)) return Malformed();
    std::string full;
    for (const auto& n : names) full += (full.empty() ? "" : ".") + n;
    // The parser itself qualifies the functions behind SQL syntax (EXTRACT, SUBSTRING ... FROM,
    // AT TIME ZONE) with pg_catalog; any other qualification is refused.
    const bool qualified_ok = names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog");
    const std::string name = names.empty() ? "" : Lower(names.back());
    const bool catalog_only = !FunctionAllowed(name) && CatalogFunctionAllowed(name);
    if (names.empty() || !qualified_ok || (!FunctionAllowed(name) && !catalog_only)) {
      return Status::InvalidArgument("function " + full + At(call) + " is not allowed");
    }
    if (catalog_only && catalog_only_.empty()) {
      catalog_only_ = "function " + full + At(call) + " reads the catalog: it is allowed in " +
                      "catalog queries only";
    }
    if (names.size() == 2) DropQualifier(Location(call), "pg_catalog");
    return Status::Ok();
  }

  std::string List() const {
    std::string out;
    for (const auto& r : governed_) out += (out.empty() ? "" : ", ") + r;
    return out;
  }

  // Text edits at parse-tree positions: a qualifier DuckDB does not know, removed.
  struct Edit {
    size_t begin, end;
    std::string with;
  };

  static int64_t Location(simdjson::dom::object o) {
    int64_t location = -1;
    if (o["location"].get(location) != simdjson::SUCCESS) return -1;
    return location;
  }
  bool WordAt(size_t at, std::string_view word) const {
    if (at + word.size() > text_.size()) return false;
    for (size_t i = 0; i < word.size(); ++i) {
      const char c = text_[at + i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != word[i]) return false;
    }
    const size_t end = at + word.size();
    return end == text_.size() ||
           !(std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_');
  }
  size_t SkipSpace(size_t at) const {
    while (at < text_.size() && std::isspace(static_cast<unsigned char>(text_[at]))) ++at;
    return at;
  }
  // `schema.` at `location` (unquoted, as written), removed.
  void DropQualifier(int64_t location, std::string_view schema) {
    if (location < 0 || !WordAt(static_cast<size_t>(location), schema)) return;
    size_t at = SkipSpace(static_cast<size_t>(location) + schema.size());
    if (at >= text_.size() || text_[at] != '.') return;
    edits_.push_back({static_cast<size_t>(location), SkipSpace(at + 1), ""});
  }
  // `OPERATOR(pg_catalog.~)` at `location`, replaced with the bare operator.
  void BareOperator(int64_t location, std::string_view op) {
    if (location < 0 || !WordAt(static_cast<size_t>(location), "operator")) return;
    const size_t close = text_.find(')', static_cast<size_t>(location));
    if (close == std::string_view::npos) return;
    edits_.push_back({static_cast<size_t>(location), close + 1, " " + std::string(op) + " "});
  }
  // `COLLATE pg_catalog.default` at `location`, removed (DuckDB's collations differ).
  void DropCollate(int64_t location) {
    if (location < 0 || !WordAt(static_cast<size_t>(location), "collate")) return;
    size_t at = SkipSpace(static_cast<size_t>(location) + 7);
    if (WordAt(at, "pg_catalog")) {
      at = SkipSpace(at + 10);
      if (at >= text_.size() || text_[at] != '.') return;
      at = SkipSpace(at + 1);
    }
    if (at < text_.size() && text_[at] == '"') {
      const size_t close = text_.find('"', at + 1);
      if (close == std::string_view::npos) return;
      at = close + 1;
    } else {
      while (at < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[at])) || text_[at] == '_')) {
        ++at;
      }
    }
    edits_.push_back({static_cast<size_t>(location), at, ""});
  }

  // The names of a list of String nodes (funcname, names, collname, name).
  static bool Names(simdjson::dom::element list, std::vector<std::string>* out) {
    simdjson::dom::array parts;
    if (list.get(parts) != simdjson::SUCCESS) return false;
    for (simdjson::dom::element p : parts) {
      std::string_view s;
      if (p["String"]["sval"].get(s) != simdjson::SUCCESS) return false;
      out->emplace_back(s);
    }
    return true;
  }

  const std::set<std::string>& governed_;
  std::string_view text_;
  GuardedQuery result_;
  bool reads_catalog_ = false;
  std::string catalog_only_;
  std::vector<Edit> edits_;
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

bool CatalogFunctionAllowed(std::string_view name) {
  static constexpr std::array kCatalogFunctions = std::to_array<std::string_view>({
      "array_lower",
      "array_to_string",
      "array_upper",
      "col_description",
      "current_database",
      "current_schema",
      "current_schemas",
      "format_type",
      "generate_series",
      "has_database_privilege",
      "has_schema_privilege",
      "has_table_privilege",
      "obj_description",
      "pg_backend_pid",
      "pg_encoding_to_char",
      "pg_function_is_visible",
      "pg_get_constraintdef",
      "pg_get_expr",
      "pg_get_indexdef",
      "pg_get_statisticsobjdef_columns",
      "pg_get_userbyid",
      "pg_get_viewdef",
      "pg_has_role",
      "pg_relation_is_publishable",
      "pg_table_is_visible",
      "pg_type_is_visible",
      "quote_ident",
      "shobj_description",
      "unnest",
      "version",
  });
  static_assert(std::is_sorted(kCatalogFunctions.begin(), kCatalogFunctions.end()));
  return std::binary_search(kCatalogFunctions.begin(), kCatalogFunctions.end(), name);
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
  Walker walker(relations, text);
  TALLY_RETURN_IF_ERROR(walker.Statement(stmt));
  GuardedQuery& result = walker.result();
  if (result.kind == GuardedQuery::Kind::kSelect) {
    if (result.relations.empty()) {
      result.kind = GuardedQuery::Kind::kCatalog;  // the catalog, or no relation at all
    } else if (walker.reads_catalog()) {
      return Status::InvalidArgument(
          "a query reads the governed relations or the catalog (pg_catalog, "
          "information_schema), not both");
    } else if (!walker.catalog_only().empty()) {
      return Status::InvalidArgument(walker.catalog_only());
    }
  }
  result.text = walker.Rewritten();
  return std::move(result);
}

}  // namespace tally
