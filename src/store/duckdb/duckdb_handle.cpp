#include "store/duckdb/duckdb_handle.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <utility>

namespace tally {

Result<DuckDb> DuckDb::Open(const std::string& path) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError)
    return Status::Internal("duckdb_create_config failed");
  duckdb_set_config(config, "autoinstall_known_extensions", "false");
  duckdb_set_config(config, "autoload_known_extensions", "false");
  DuckDb out;
  char* err = nullptr;
  const char* p = path == ":memory:" ? nullptr : path.c_str();
  if (duckdb_open_ext(p, &out.db_, config, &err) == DuckDBError) {
    std::string msg = err ? err : "unknown error";
    if (err) duckdb_free(err);
    duckdb_destroy_config(&config);
    return Status::IOError("cannot open DuckDB database '" + path + "': " + msg);
  }
  duckdb_destroy_config(&config);
  if (duckdb_connect(out.db_, &out.conn_) == DuckDBError) {
    return Status::IOError("cannot connect to DuckDB database '" + path + "'");
  }
  return out;
}

Result<DuckDb> DuckDb::Connect() const {
  if (db_ == nullptr) return Status::Internal("DuckDb::Connect on a closed database");
  DuckDb out;
  out.db_ = db_;
  out.owns_db_ = false;
  if (duckdb_connect(db_, &out.conn_) == DuckDBError) {
    out.db_ = nullptr;
    return Status::IOError("cannot open another connection to the DuckDB database");
  }
  return out;
}

DuckDb::DuckDb(DuckDb&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      conn_(std::exchange(other.conn_, nullptr)),
      owns_db_(other.owns_db_) {}

DuckDb& DuckDb::operator=(DuckDb&& other) noexcept {
  if (this != &other) {
    Close();
    db_ = std::exchange(other.db_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
    owns_db_ = other.owns_db_;
  }
  return *this;
}

DuckDb::~DuckDb() {
  Close();
}

void DuckDb::Close() {
  if (conn_) duckdb_disconnect(&conn_);
  if (db_ && owns_db_) duckdb_close(&db_);
  conn_ = nullptr;
  db_ = nullptr;
}

Status DuckDb::Execute(const std::string& sql) {
  duckdb_result res;
  if (duckdb_query(conn_, sql.c_str(), &res) == DuckDBError) {
    std::string msg = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::InvalidArgument("DuckDB: " + msg);
  }
  duckdb_destroy_result(&res);
  return Status::Ok();
}

namespace {

ColumnType TypeOf(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_INVALID:
    case DUCKDB_TYPE_SQLNULL:
      return ColumnType::kUnknown;
    case DUCKDB_TYPE_BOOLEAN:
      return ColumnType::kBool;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_UTINYINT:
      return ColumnType::kInt16;
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_USMALLINT:
      return ColumnType::kInt32;
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UINTEGER:
      return ColumnType::kInt64;
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_DECIMAL:
      return ColumnType::kNumeric;
    case DUCKDB_TYPE_FLOAT:
      return ColumnType::kFloat32;
    case DUCKDB_TYPE_DOUBLE:
      return ColumnType::kFloat64;
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_ENUM:
    case DUCKDB_TYPE_UUID:
      return ColumnType::kText;
    case DUCKDB_TYPE_DATE:
      return ColumnType::kDate;
    case DUCKDB_TYPE_TIME:
      return ColumnType::kTime;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return ColumnType::kTimestamp;
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return ColumnType::kTimestampTz;
    case DUCKDB_TYPE_INTERVAL:
      return ColumnType::kInterval;
    default:
      return ColumnType::kOther;
  }
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> ParseNumber(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> ParseBool(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "t" || s == "true" || s == "1" || s == "yes" || s == "on" || s == "y") return true;
  if (s == "f" || s == "false" || s == "0" || s == "no" || s == "off" || s == "n") return false;
  return std::nullopt;
}

// Binds one client value to placeholder `at`, read as `want`.
Status BindText(duckdb_prepared_statement stmt, idx_t at, const std::optional<std::string>& value,
                ColumnType want) {
  const std::string where = "parameter $" + std::to_string(at);
  if (!value) {
    return duckdb_bind_null(stmt, at) == DuckDBSuccess
               ? Status::Ok()
               : Status::InvalidArgument(where + ": cannot bind NULL");
  }
  const std::string& v = *value;
  duckdb_state st = DuckDBError;
  switch (want) {
    case ColumnType::kBool: {
      auto b = ParseBool(v);
      if (!b) return Status::InvalidArgument(where + ": '" + v + "' is not a boolean");
      st = duckdb_bind_boolean(stmt, at, *b);
      break;
    }
    case ColumnType::kInt16:
    case ColumnType::kInt32:
    case ColumnType::kInt64: {
      auto i = ParseInt(v);
      if (!i) return Status::InvalidArgument(where + ": '" + v + "' is not an integer");
      st = duckdb_bind_int64(stmt, at, *i);
      break;
    }
    case ColumnType::kFloat32:
    case ColumnType::kFloat64: {
      auto d = ParseNumber(v);
      if (!d) return Status::InvalidArgument(where + ": '" + v + "' is not a number");
      st = duckdb_bind_double(stmt, at, *d);
      break;
    }
    case ColumnType::kUnknown:  // nothing says: an integer, a number, or text
      if (auto i = ParseInt(v)) {
        st = duckdb_bind_int64(stmt, at, *i);
      } else if (auto d = ParseNumber(v)) {
        st = duckdb_bind_double(stmt, at, *d);
      } else {
        st = duckdb_bind_varchar_length(stmt, at, v.data(), v.size());
      }
      break;
    default:  // DuckDB casts text to dates, timestamps, decimals and text as the statement needs
      st = duckdb_bind_varchar_length(stmt, at, v.data(), v.size());
  }
  return st == DuckDBSuccess ? Status::Ok()
                             : Status::InvalidArgument(where + ": cannot bind '" + v + "'");
}

// A prepared statement, destroyed with its owner.
struct DestroyPrepared {
  void operator()(duckdb_prepared_statement stmt) const { duckdb_destroy_prepare(&stmt); }
};
using Prepared = std::unique_ptr<std::remove_pointer_t<duckdb_prepared_statement>, DestroyPrepared>;

Result<Prepared> Prepare(duckdb_connection conn, const std::string& sql) {
  duckdb_prepared_statement stmt = nullptr;
  if (duckdb_prepare(conn, sql.c_str(), &stmt) == DuckDBError) {
    std::string msg = stmt && duckdb_prepare_error(stmt) ? duckdb_prepare_error(stmt) : "unknown";
    duckdb_destroy_prepare(&stmt);
    return Status::InvalidArgument("DuckDB: " + msg);
  }
  return Prepared(stmt);
}

// Every row of a result as text; destroys the result.
TextTable ToTextTable(duckdb_result* res) {
  TextTable t;
  idx_t cols = duckdb_column_count(res);
  idx_t rows = duckdb_row_count(res);
  for (idx_t c = 0; c < cols; ++c) {
    t.columns.emplace_back(duckdb_column_name(res, c));
    t.types.push_back(TypeOf(duckdb_column_type(res, c)));
  }
  t.rows.resize(rows);
  for (idx_t r = 0; r < rows; ++r) {
    t.rows[r].resize(cols);
    for (idx_t c = 0; c < cols; ++c) {
      if (duckdb_value_is_null(res, c, r)) continue;
      char* v = duckdb_value_varchar(res, c, r);
      t.rows[r][c] = std::string(v ? v : "");
      if (v) duckdb_free(v);
    }
  }
  duckdb_destroy_result(res);
  return t;
}

// Runs a prepared statement whose values are bound, for its rows as text.
Result<TextTable> RunPrepared(const Prepared& stmt) {
  duckdb_result res;
  if (duckdb_execute_prepared(stmt.get(), &res) == DuckDBError) {
    std::string msg = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::InvalidArgument("DuckDB: " + msg);
  }
  return ToTextTable(&res);
}

}  // namespace

Result<TextTable> DuckDb::Query(const std::string& sql) {
  duckdb_result res;
  if (duckdb_query(conn_, sql.c_str(), &res) == DuckDBError) {
    std::string msg = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::InvalidArgument("DuckDB: " + msg);
  }
  return ToTextTable(&res);
}

Result<TextTable> DuckDb::Query(const std::string& sql, const std::vector<SqlParam>& params) {
  TALLY_ASSIGN_OR_RETURN(Prepared stmt, Prepare(conn_, sql));
  if (duckdb_nparams(stmt.get()) != params.size()) {
    return Status::Internal("DuckDB: the statement has " +
                            std::to_string(duckdb_nparams(stmt.get())) + " placeholders but " +
                            std::to_string(params.size()) + " values were given");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const idx_t at = i + 1;
    duckdb_state st = std::visit(
        [&](const auto& v) -> duckdb_state {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            return duckdb_bind_int64(stmt.get(), at, v);
          } else if constexpr (std::is_same_v<T, double>) {
            return duckdb_bind_double(stmt.get(), at, v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            return duckdb_bind_varchar_length(stmt.get(), at, v.data(), v.size());
          } else if constexpr (std::is_same_v<T, Timestamp>) {
            return duckdb_bind_timestamp(stmt.get(), at, duckdb_timestamp{v.micros});
          } else {
            return duckdb_bind_date(stmt.get(), at, duckdb_date{v.days});
          }
        },
        params[i]);
    if (st == DuckDBError) {
      return Status::InvalidArgument("DuckDB: cannot bind value " + std::to_string(at));
    }
  }
  return RunPrepared(stmt);
}

Result<StatementShape> DuckDb::Describe(const std::string& sql) {
  TALLY_ASSIGN_OR_RETURN(Prepared stmt, Prepare(conn_, sql));
  StatementShape shape;
  for (idx_t i = 1; i <= duckdb_nparams(stmt.get()); ++i) {
    shape.params.push_back(TypeOf(duckdb_param_type(stmt.get(), i)));
  }
  for (idx_t c = 0; c < duckdb_prepared_statement_column_count(stmt.get()); ++c) {
    const char* name = duckdb_prepared_statement_column_name(stmt.get(), c);
    shape.columns.emplace_back(name ? name : "");
    const ColumnType t = TypeOf(duckdb_prepared_statement_column_type(stmt.get(), c));
    shape.types.push_back(t == ColumnType::kUnknown ? ColumnType::kText : t);
  }
  return shape;
}

Result<TextTable> DuckDb::QueryText(const std::string& sql, const TextParams& params,
                                    const std::vector<ColumnType>& declared) {
  TALLY_ASSIGN_OR_RETURN(Prepared stmt, Prepare(conn_, sql));
  if (duckdb_nparams(stmt.get()) != params.size()) {
    return Status::InvalidArgument("the statement has " +
                                   std::to_string(duckdb_nparams(stmt.get())) + " parameters but " +
                                   std::to_string(params.size()) + " values were given");
  }
  for (idx_t at = 1; at <= params.size(); ++at) {
    ColumnType want = TypeOf(duckdb_param_type(stmt.get(), at));
    if (want == ColumnType::kUnknown && at <= declared.size()) want = declared[at - 1];
    TALLY_RETURN_IF_ERROR(BindText(stmt.get(), at, params[at - 1], want));
  }
  return RunPrepared(stmt);
}

Result<std::string> DuckDb::QueryScalar(const std::string& sql) {
  TALLY_ASSIGN_OR_RETURN(TextTable t, Query(sql));
  if (t.rows.size() != 1 || t.columns.size() != 1) {
    return Status::InvalidArgument("expected one value from: " + sql);
  }
  if (!t.rows[0][0]) return Status::NotFound("NULL from: " + sql);
  return *t.rows[0][0];
}

Result<std::vector<std::string>> DuckDb::QueryStrings(const std::string& sql) {
  duckdb_result res;
  if (duckdb_query(conn_, sql.c_str(), &res) == DuckDBError) {
    std::string msg = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::InvalidArgument("DuckDB: " + msg);
  }
  std::vector<std::string> out;
  if (duckdb_column_count(&res) < 1 || duckdb_column_type(&res, 0) != DUCKDB_TYPE_VARCHAR) {
    duckdb_destroy_result(&res);
    return Status::InvalidArgument("expected a VARCHAR first column from: " + sql);
  }
  while (duckdb_data_chunk chunk = duckdb_fetch_chunk(res)) {
    const idx_t n = duckdb_data_chunk_get_size(chunk);
    duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, 0);
    auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(vec));
    uint64_t* validity = duckdb_vector_get_validity(vec);
    for (idx_t r = 0; r < n; ++r) {
      if (validity && !duckdb_validity_row_is_valid(validity, r)) continue;
      out.emplace_back(duckdb_string_t_data(&data[r]), duckdb_string_t_length(data[r]));
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_destroy_result(&res);
  return out;
}

std::string SqlQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace tally
