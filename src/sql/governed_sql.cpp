#include "sql/governed_sql.h"

#include <cctype>
#include <map>
#include <optional>

#include "api/tenant_scope.h"
#include "sql/sql_guard.h"

namespace tally {

namespace {

const std::map<std::string, EventFamily, std::less<>>& Families() {
  static const std::map<std::string, EventFamily, std::less<>> k = {
      {"usage", EventFamily::kUsage},
      {"recharges", EventFamily::kRecharge},
      {"lifecycle", EventFamily::kLifecycle},
      {"network", EventFamily::kNetwork},
      {"roaming", EventFamily::kRoaming},
      {"complaints", EventFamily::kComplaint},
      {"charges", EventFamily::kCharge},
      {"app_events", EventFamily::kApp},
      {"experiment_events", EventFamily::kExperiment},
  };
  return k;
}

// A column masked as auth.cpp's Mask does it, in SQL: KeepEnds for MSISDN and IMSI (values too
// short for the partial rule are all stars), initials for names.
std::string Masked(SensitiveField field, Role role) {
  switch (field) {
    case SensitiveField::kMsisdn:
      return Sees(role, field) ? "msisdn"
                               : "CASE WHEN length(msisdn) < 8 THEN repeat('*', length(msisdn)) "
                                 "ELSE repeat('*', length(msisdn) - 4) || right(msisdn, 4) END";
    case SensitiveField::kImsi:
      return Sees(role, field) ? "imsi"
                               : "CASE WHEN length(imsi) < 10 THEN repeat('*', length(imsi)) "
                                 "ELSE left(imsi, 5) || repeat('*', length(imsi) - 5) END";
    case SensitiveField::kName:
      return Sees(role, field)
                 ? "name"
                 : "array_to_string(list_transform(list_filter(string_split_regex(name, "
                   "'[ \\t\\n\\r\\f\\v]+'), w -> w <> ''), w -> left(w, 1) || '.'), ' ')";
  }
  return "NULL";
}

}  // namespace

const std::set<std::string>& GovernedSql::Relations() {
  static const std::set<std::string> k = [] {
    std::set<std::string> s = {"subscribers"};
    for (const auto& [name, family] : Families()) s.insert(name);
    return s;
  }();
  return k;
}

Result<std::string> GovernedSql::Definition(const Principal& who, std::string_view relation,
                                            EventStore& store) const {
  const SecurityScope scope = ScopeOf(who);
  // The scope's ids are integers from the credential, never text from the query.
  std::string where = " WHERE true";
  if (relation == "subscribers") {
    if (scope.partner) where += " AND partner_id = " + std::to_string(*scope.partner);
    if (scope.subscriber) where += " AND subscriber_id = " + std::to_string(*scope.subscriber);
    return "SELECT subscriber_id, " + Masked(SensitiveField::kMsisdn, who.role) + " AS msisdn, " +
           Masked(SensitiveField::kImsi, who.role) + " AS imsi, " +
           Masked(SensitiveField::kName, who.role) +
           " AS name, partner_id, plan_id, billing_type, region, country, city, device_type, "
           "activation_date, status, status_date FROM subscribers" +
           where;
  }
  auto family = Families().find(relation);
  if (family == Families().end()) {
    return Status::InvalidArgument("no governed relation " + std::string(relation));
  }
  const TimeRange all{Timestamp{int64_t{DaysFromCivil(1900, 1, 1)} * kMicrosPerDay},
                      Timestamp{int64_t{DaysFromCivil(2200, 1, 1)} * kMicrosPerDay}};
  TALLY_ASSIGN_OR_RETURN(EventRelation rel, store.Relation(family->second, all));
  if (scope.partner) where += " AND partner_id = " + std::to_string(*scope.partner);
  if (scope.subscriber) {
    where += family->second == EventFamily::kExperiment
                 ? " AND unit = 'subscriber' AND unit_id = " + std::to_string(*scope.subscriber)
                 : " AND subscriber_id = " + std::to_string(*scope.subscriber);
  }
  return "SELECT * FROM (" + rel.sql + ") AS governed" + where;
}

namespace {

// What SHOW answers: the settings the server announces at startup, and the few more clients ask.
std::optional<std::string> Setting(std::string_view name) {
  static const std::map<std::string, std::string, std::less<>> k = {
      {"server_version", "15.0 (tally)"},
      {"server_version_num", "150000"},
      {"server_encoding", "UTF8"},
      {"client_encoding", "UTF8"},
      {"datestyle", "ISO, MDY"},
      {"timezone", "UTC"},
      {"integer_datetimes", "on"},
      {"standard_conforming_strings", "on"},
      {"transaction_isolation", "read committed"},
      {"transaction_read_only", "on"},
      {"default_transaction_read_only", "on"},
      {"search_path", "public"},
      {"max_identifier_length", "63"},
      {"lc_collate", "C"},
      {"lc_ctype", "C"},
  };
  auto it = k.find(name);
  if (it == k.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<SqlAnswer> GovernedSql::Execute(const Principal& who, std::string_view sql,
                                       const TextParams* params,
                                       const std::vector<ColumnType>& declared) const {
  TALLY_ASSIGN_OR_RETURN(GuardedQuery guarded, GuardSelect(sql, Relations()));
  SqlAnswer answer;
  if (guarded.kind == GuardedQuery::Kind::kSession) {
    if (guarded.tag != "SHOW") {
      answer.tag = guarded.tag;
      return answer;
    }
    std::optional<std::string> value = Setting(guarded.setting);
    if (!value) {
      return Status::NotFound("unrecognized configuration parameter \"" + guarded.setting + "\"");
    }
    answer.table.columns = {guarded.setting};
    answer.table.types = {ColumnType::kText};
    if (params != nullptr) answer.table.rows.push_back({*value});
    return answer;
  }
  // The statement without its trailing semicolons, inside a subquery that sees the governed
  // relations as CTEs; the line breaks keep a trailing comment from swallowing the parenthesis.
  std::string body(sql);
  while (!body.empty() &&
         (body.back() == ';' || std::isspace(static_cast<unsigned char>(body.back())))) {
    body.pop_back();
  }
  TALLY_RETURN_IF_ERROR(pipeline_->RunExclusive([&](EventStore& store) {
    std::string with;
    for (const std::string& r : guarded.relations) {
      TALLY_ASSIGN_OR_RETURN(std::string definition, Definition(who, r, store));
      with += (with.empty() ? "WITH " : ", ") + r + " AS (" + definition + ")";
    }
    // Prepared, never run as a script: DuckDB refuses to prepare more than one statement, a
    // second line of defence behind the guard's one-SELECT rule.
    const std::string text = with + " SELECT * FROM (\n" + body + "\n) AS q";
    if (params == nullptr) {
      TALLY_ASSIGN_OR_RETURN(StatementShape shape, store.Describe(text));
      answer.table.columns = std::move(shape.columns);
      answer.table.types = std::move(shape.types);
      answer.params = std::move(shape.params);
    } else {
      TALLY_ASSIGN_OR_RETURN(answer.table, store.QueryText(text, *params, declared));
    }
    return Status::Ok();
  }));
  return answer;
}

Result<TextTable> GovernedSql::Run(const Principal& who, std::string_view sql) const {
  const TextParams none;
  TALLY_ASSIGN_OR_RETURN(SqlAnswer answer, Execute(who, sql, &none, {}));
  return std::move(answer.table);
}

}  // namespace tally
