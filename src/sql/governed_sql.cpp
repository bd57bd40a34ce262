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
                                            StoreReader& store) const {
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

// What SHOW answers: the server's settings (PgSettings), by name in any case.
std::optional<std::string> Setting(std::string_view name) {
  for (const PgSetting& setting : PgSettings()) {
    std::string lower(setting.name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == name) return std::string(setting.value);
  }
  return std::nullopt;
}

// Describes `sql` (params null) or runs it with `params`, on the store or the catalog database.
template <typename Db>
Result<PgResult> DescribeOrRun(Db& db, const std::string& sql, const TextParams* params,
                               const std::vector<ColumnType>& declared) {
  PgResult out;
  if (params == nullptr) {
    TALLY_ASSIGN_OR_RETURN(StatementShape shape, db.Describe(sql));
    out.table.columns = std::move(shape.columns);
    out.table.types = std::move(shape.types);
    out.params = std::move(shape.params);
  } else {
    TALLY_ASSIGN_OR_RETURN(out.table, db.QueryText(sql, *params, declared));
  }
  return out;
}

}  // namespace

Result<PgResult> GovernedSql::Execute(const Principal& who, std::string_view sql,
                                      const TextParams* params,
                                      const std::vector<ColumnType>& declared) const {
  TALLY_ASSIGN_OR_RETURN(GuardedQuery guarded, GuardSelect(sql, Relations()));
  PgResult answer;
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
  // PostgreSQL's column names, where the select list says them all (count, not count_star()).
  auto named = [&](Result<PgResult> a) -> Result<PgResult> {
    if (a.ok() && guarded.column_names.size() == a->table.columns.size()) {
      a->table.columns = guarded.column_names;
    }
    return a;
  };
  if (guarded.kind == GuardedQuery::Kind::kCatalog) {
    return named(Catalog(guarded.text, params, declared));
  }
  // The statement without its trailing semicolons, inside a subquery that sees the governed
  // relations as CTEs; the line breaks keep a trailing comment from swallowing the parenthesis.
  std::string body = std::move(guarded.text);
  while (!body.empty() &&
         (body.back() == ';' || std::isspace(static_cast<unsigned char>(body.back())))) {
    body.pop_back();
  }
  auto task = [&](StoreReader& store) -> Status {
    std::string with;
    for (const std::string& r : guarded.relations) {
      TALLY_ASSIGN_OR_RETURN(std::string definition, Definition(who, r, store));
      with += (with.empty() ? "WITH " : ", ") + r + " AS (" + definition + ")";
    }
    // Prepared, never run as a script: DuckDB refuses to prepare more than one statement, a
    // second line of defence behind the guard's one-SELECT rule.
    const std::string text = with + " SELECT * FROM (\n" + body + "\n) AS q";
    TALLY_ASSIGN_OR_RETURN(answer, DescribeOrRun(store, text, params, declared));
    return Status::Ok();
  };
  if (timeout_.count() > 0) {
    Status st = pipeline_->RunRead(task, std::chrono::steady_clock::now() + timeout_);
    if (st.code() == Status::Code::kDeadlineExceeded) {
      return Status::DeadlineExceeded("the query ran past serve.query_timeout_ms (" +
                                      std::to_string(timeout_.count()) + " ms)");
    }
    TALLY_RETURN_IF_ERROR(st);
  } else {
    TALLY_RETURN_IF_ERROR(pipeline_->RunRead(task));
  }
  return named(std::move(answer));
}

namespace {

// The catalog database's snapshot of DuckDB's own pg_catalog and information_schema, taken when
// only the governed relations exist (schema public) and cut to them, into database pgc; then
// the catalog tables PostgreSQL has and DuckDB lacks, empty, with the columns psql reads. The
// guard sends pg_catalog.x to pgc.pg.x and information_schema.x to pgc.info.x.
std::string CatalogSnapshot() {
  struct View {
    const char* schema;
    const char* name;
    const char* select;  // what to keep of DuckDB's view
  };
  static const View kViews[] = {
      {"pg", "pg_namespace",
       "SELECT * FROM system.pg_catalog.pg_namespace WHERE nspname IN ('public', 'pg_catalog', "
       "'information_schema')"},
      {"pg", "pg_class",
       "SELECT *, false AS relforcerowsecurity FROM system.pg_catalog.pg_class WHERE "
       "relnamespace IN (SELECT oid FROM system.pg_catalog.pg_namespace WHERE nspname = "
       "'public')"},
      // DuckDB's pg_attribute types columns with its own type ids; pg_type has PostgreSQL's
      // OIDs (the ones the wire protocol sends): atttypid becomes the OID, by type name.
      {"pg", "pg_attribute",
       "SELECT a.* REPLACE (coalesce((SELECT t.oid FROM system.pg_catalog.pg_type t WHERE "
       "t.typname = format_type(a.atttypid, NULL)), 25) AS atttypid) FROM "
       "system.pg_catalog.pg_attribute a WHERE attrelid IN (SELECT oid FROM pgc.pg.pg_class)"},
      {"pg", "pg_tables", "SELECT * FROM system.pg_catalog.pg_tables WHERE schemaname = 'public'"},
      {"pg", "pg_database",
       "SELECT * REPLACE ('tally' AS datname) FROM system.pg_catalog.pg_database WHERE datname "
       "= 'memory'"},
      {"pg", "pg_type", "SELECT * FROM system.pg_catalog.pg_type"},
      {"pg", "pg_am", "SELECT * FROM system.pg_catalog.pg_am"},
      {"pg", "pg_proc", "SELECT * FROM system.pg_catalog.pg_proc"},
      {"pg", "pg_attrdef", "SELECT * FROM system.pg_catalog.pg_attrdef WHERE false"},
      {"pg", "pg_constraint", "SELECT * FROM system.pg_catalog.pg_constraint WHERE false"},
      {"pg", "pg_index", "SELECT * FROM system.pg_catalog.pg_index WHERE false"},
      {"pg", "pg_indexes", "SELECT * FROM system.pg_catalog.pg_indexes WHERE false"},
      {"pg", "pg_description", "SELECT * FROM system.pg_catalog.pg_description WHERE false"},
      {"pg", "pg_depend", "SELECT * FROM system.pg_catalog.pg_depend WHERE false"},
      {"pg", "pg_enum", "SELECT * FROM system.pg_catalog.pg_enum WHERE false"},
      {"pg", "pg_sequence", "SELECT * FROM system.pg_catalog.pg_sequence WHERE false"},
      {"pg", "pg_sequences", "SELECT * FROM system.pg_catalog.pg_sequences WHERE false"},
      {"pg", "pg_views", "SELECT * FROM system.pg_catalog.pg_views WHERE false"},
      {"pg", "pg_tablespace", "SELECT * FROM system.pg_catalog.pg_tablespace"},
      {"info", "schemata",
       "SELECT * REPLACE ('tally' AS catalog_name) FROM system.information_schema.schemata "
       "WHERE catalog_name = 'memory' AND schema_name = 'public'"},
      {"info", "tables",
       "SELECT * REPLACE ('tally' AS table_catalog) FROM system.information_schema.tables WHERE "
       "table_catalog = 'memory' AND table_schema = 'public'"},
      {"info", "columns",
       "SELECT * REPLACE ('tally' AS table_catalog) FROM system.information_schema.columns "
       "WHERE table_catalog = 'memory' AND table_schema = 'public'"},
      {"info", "views", "SELECT * FROM system.information_schema.views WHERE false"},
      {"info", "table_constraints",
       "SELECT * FROM system.information_schema.table_constraints WHERE false"},
      {"info", "key_column_usage",
       "SELECT * FROM system.information_schema.key_column_usage WHERE false"},
      {"info", "referential_constraints",
       "SELECT * FROM system.information_schema.referential_constraints WHERE false"},
      {"info", "check_constraints",
       "SELECT * FROM system.information_schema.check_constraints WHERE false"},
  };
  std::string sql = "ATTACH ':memory:' AS pgc; CREATE SCHEMA pgc.pg; CREATE SCHEMA pgc.info;";
  for (const View& v : kViews) {
    sql += std::string("CREATE TABLE pgc.") + v.schema + "." + v.name + " AS " + v.select + ";";
  }
  // PostgreSQL's catalog tables DuckDB lacks, with the columns psql's \d reads: empty.
  sql +=
      "CREATE TABLE pgc.pg.pg_policy (oid BIGINT, polname VARCHAR, polrelid BIGINT, "
      "polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, "
      "polwithcheck VARCHAR);"
      "CREATE TABLE pgc.pg.pg_statistic_ext (oid BIGINT, stxrelid BIGINT, stxname "
      "VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys "
      "INTEGER[], stxkind VARCHAR[], stxexprs VARCHAR);"
      "CREATE TABLE pgc.pg.pg_publication (oid BIGINT, pubname VARCHAR, pubowner "
      "BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, "
      "pubtruncate BOOLEAN, pubviaroot BOOLEAN);"
      "CREATE TABLE pgc.pg.pg_publication_rel (oid BIGINT, prpubid BIGINT, prrelid "
      "BIGINT, prqual VARCHAR, prattrs INTEGER[]);"
      "CREATE TABLE pgc.pg.pg_publication_namespace (oid BIGINT, pnpubid BIGINT, "
      "pnnspid BIGINT);"
      "CREATE TABLE pgc.pg.pg_inherits (inhrelid BIGINT, inhparent BIGINT, inhseqno "
      "INTEGER, inhdetachpending BOOLEAN);"
      "CREATE TABLE pgc.pg.pg_trigger (oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, "
      "tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, "
      "tgconstraint BIGINT);"
      "CREATE TABLE pgc.pg.pg_rewrite (oid BIGINT, rulename VARCHAR, ev_class BIGINT, "
      "ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN, ev_qual VARCHAR, ev_action "
      "VARCHAR);"
      "CREATE TABLE pgc.pg.pg_partitioned_table (partrelid BIGINT, partstrat VARCHAR, "
      "partnatts INTEGER);"
      "CREATE TABLE pgc.pg.pg_foreign_table (ftrelid BIGINT, ftserver BIGINT, "
      "ftoptions VARCHAR[]);"
      "CREATE TABLE pgc.pg.pg_collation (oid BIGINT, collname VARCHAR, collnamespace "
      "BIGINT, collprovider VARCHAR, collisdeterministic BOOLEAN, collencoding INTEGER);"
      "CREATE TABLE pgc.pg.pg_roles (oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, "
      "rolinherit BOOLEAN, rolcreaterole BOOLEAN, rolcreatedb BOOLEAN, rolcanlogin BOOLEAN);"
      "INSERT INTO pgc.pg.pg_roles VALUES (10, 'tally', false, true, false, false, "
      "true);";
  return sql;
}

}  // namespace

Status GovernedSql::BuildCatalog() const {
  // Each relation's columns and types, as DuckDB describes its definition (the same for every
  // role: masking keeps a column's type).
  const Principal admin{Role::kAdmin, std::nullopt, std::nullopt, "catalog", {}, {}};
  std::string ddl = "CREATE SCHEMA public; SET search_path = 'public';";
  TALLY_RETURN_IF_ERROR(pipeline_->RunRead([&](StoreReader& store) {
    for (const std::string& r : Relations()) {
      TALLY_ASSIGN_OR_RETURN(std::string definition, Definition(admin, r, store));
      TALLY_ASSIGN_OR_RETURN(TextTable shape, store.Query("DESCRIBE " + definition));
      std::string columns;
      for (const auto& row : shape.rows) {
        if (row.size() < 2 || !row[0] || !row[1]) continue;
        columns += (columns.empty() ? "" : ", ") + std::string("\"") + *row[0] + "\" " + *row[1];
      }
      ddl += "CREATE TABLE public.\"" + r + "\" (" + columns + ");";
    }
    return Status::Ok();
  }));
  TALLY_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open(":memory:"));
  // What psql and BI tools call that DuckDB lacks or spells otherwise (the guard drops the
  // pg_catalog qualifier of a function, so these are found first); then nothing outside.
  ddl += CatalogSnapshot() +
         "CREATE TYPE main.regtype AS BIGINT; CREATE TYPE main.regclass AS BIGINT;"
         "CREATE TYPE main.regproc AS BIGINT; CREATE TYPE main.regnamespace AS BIGINT;"
         "CREATE TYPE main.regrole AS BIGINT;"
         "CREATE MACRO main.format_type(type_oid, type_mod) AS (SELECT CASE typname "
         "WHEN 'int8' THEN 'bigint' WHEN 'int4' THEN 'integer' WHEN 'int2' THEN 'smallint' "
         "WHEN 'float8' THEN 'double precision' WHEN 'float4' THEN 'real' WHEN 'bool' THEN "
         "'boolean' WHEN 'varchar' THEN 'character varying' WHEN 'timestamp' THEN "
         "'timestamp without time zone' WHEN 'timestamptz' THEN 'timestamp with time zone' "
         "ELSE typname END FROM pgc.pg.pg_type t WHERE t.oid = type_oid);"
         "CREATE MACRO main.pg_get_userbyid(id) AS 'tally';"
         "CREATE MACRO main.pg_encoding_to_char(id) AS 'UTF8';"
         "CREATE MACRO main.pg_backend_pid() AS 0;"
         "CREATE MACRO main.pg_get_statisticsobjdef_columns(id) AS NULL;"
         "CREATE MACRO main.pg_relation_is_publishable(id) AS false;"
         "CREATE MACRO main.array_upper(a, d) AS len(a);"
         "CREATE MACRO main.array_lower(a, d) AS CASE WHEN len(a) > 0 THEN 1 END;"
         "CREATE MACRO main.current_database() AS 'tally';"
         "CREATE MACRO main.version() AS (SELECT 'PostgreSQL 15.0 (tally; DuckDB ' || "
         "library_version || ')' FROM pragma_version());"
         "CREATE MACRO main.pg_get_expr(e, r) AS NULL, (e, r, pretty) AS NULL;"
         "SET search_path = 'public,main';"
         "SET enable_external_access = false; SET threads = 1; SET memory_limit = '256MB';"
         "SET lock_configuration = true;";
  TALLY_RETURN_IF_ERROR(db.Execute(ddl));
  catalog_ = std::move(db);
  return Status::Ok();
}

Result<PgResult> GovernedSql::Catalog(const std::string& sql, const TextParams* params,
                                      const std::vector<ColumnType>& declared) const {
  std::lock_guard lock(catalog_mu_);
  if (!catalog_) TALLY_RETURN_IF_ERROR(BuildCatalog());
  return DescribeOrRun(*catalog_, sql, params, declared);
}

}  // namespace tally
