#include "sql/governed_sql.h"

#include <cctype>
#include <map>

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

Result<TextTable> GovernedSql::Run(const Principal& who, std::string_view sql) const {
  TALLY_ASSIGN_OR_RETURN(GuardedQuery guarded, GuardSelect(sql, Relations()));
  if (guarded.parameters > 0) {
    return Status::InvalidArgument("$" + std::to_string(guarded.parameters) +
                                   ": parameters need the extended query protocol");
  }
  // The statement without its trailing semicolons, inside a subquery that sees the governed
  // relations as CTEs; the line breaks keep a trailing comment from swallowing the parenthesis.
  std::string body(sql);
  while (!body.empty() &&
         (body.back() == ';' || std::isspace(static_cast<unsigned char>(body.back())))) {
    body.pop_back();
  }
  TextTable table;
  TALLY_RETURN_IF_ERROR(pipeline_->RunExclusive([&](EventStore& store) {
    std::string with;
    for (const std::string& r : guarded.relations) {
      TALLY_ASSIGN_OR_RETURN(std::string definition, Definition(who, r, store));
      with += (with.empty() ? "WITH " : ", ") + r + " AS (" + definition + ")";
    }
    // Prepared, never run as a script: DuckDB refuses to prepare more than one statement, a
    // second line of defence behind the guard's one-SELECT rule.
    TALLY_ASSIGN_OR_RETURN(table, store.Query(with + " SELECT * FROM (\n" + body + "\n) AS q",
                                              std::vector<SqlParam>{}));
    return Status::Ok();
  }));
  return table;
}

}  // namespace tally
