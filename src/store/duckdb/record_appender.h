#pragma once
// Appends vectors of typed records (any struct with a kFields list) to a DuckDB table, column by
// column, through DuckDB's data-chunk appender. This is the bulk path of the embedded store: one
// vector fill per column per 2,048 rows instead of one C call per value.

#include <duckdb.h>

#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "core/status.h"
#include "model/record_codec.h"

namespace tally {

namespace duckdb_detail {

template <typename B>
constexpr duckdb_type DuckTypeOf() {
  if constexpr (std::is_same_v<B, bool>) {
    return DUCKDB_TYPE_BOOLEAN;
  } else if constexpr (std::is_same_v<B, double>) {
    return DUCKDB_TYPE_DOUBLE;
  } else if constexpr (std::is_same_v<B, Timestamp>) {
    return DUCKDB_TYPE_TIMESTAMP;
  } else if constexpr (std::is_same_v<B, Date>) {
    return DUCKDB_TYPE_DATE;
  } else if constexpr (std::is_integral_v<B>) {
    return sizeof(B) <= 4 ? DUCKDB_TYPE_INTEGER : DUCKDB_TYPE_BIGINT;
  } else if constexpr (std::is_same_v<B, std::string> || std::is_same_v<B, Currency> ||
                       std::is_enum_v<B>) {
    return DUCKDB_TYPE_VARCHAR;
  } else {
    return DUCKDB_TYPE_BIGINT;  // TypedId
  }
}

//! Writes one value into row `row` of `vec`.
template <typename B>
inline void PutValue(duckdb_vector vec, idx_t row, const B& v) {
  void* data = duckdb_vector_get_data(vec);
  if constexpr (std::is_same_v<B, bool>) {
    static_cast<bool*>(data)[row] = v;
  } else if constexpr (std::is_same_v<B, double>) {
    static_cast<double*>(data)[row] = v;
  } else if constexpr (std::is_same_v<B, Timestamp>) {
    static_cast<int64_t*>(data)[row] = v.micros;
  } else if constexpr (std::is_same_v<B, Date>) {
    static_cast<int32_t*>(data)[row] = v.days;
  } else if constexpr (std::is_integral_v<B>) {
    if constexpr (sizeof(B) <= 4) {
      static_cast<int32_t*>(data)[row] = static_cast<int32_t>(v);
    } else {
      static_cast<int64_t*>(data)[row] = static_cast<int64_t>(v);
    }
  } else if constexpr (std::is_same_v<B, std::string>) {
    duckdb_vector_assign_string_element_len(vec, row, v.data(), v.size());
  } else if constexpr (std::is_same_v<B, Currency>) {
    std::string_view code = v.code();
    duckdb_vector_assign_string_element_len(vec, row, code.data(), code.size());
  } else if constexpr (std::is_enum_v<B>) {
    std::string_view name = Name(v);
    duckdb_vector_assign_string_element_len(vec, row, name.data(), name.size());
  } else {
    static_cast<int64_t*>(data)[row] = static_cast<int64_t>(v.value());
  }
}

}  // namespace duckdb_detail

//! The DuckDB column types of Rec's fields, in kFields order.
template <typename Rec>
std::vector<duckdb_type> DuckColumnTypes() {
  std::vector<duckdb_type> types;
  ForEachField<Rec>([&](const auto& f) {
    using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
    types.push_back(duckdb_detail::DuckTypeOf<BaseType<M>>());
  });
  return types;
}

//! `CREATE TABLE` column list for Rec ("event_id VARCHAR NOT NULL, ..."), plus `extra` columns.
template <typename Rec>
std::string DuckColumnsDdl(const std::string& extra = "") {
  std::string ddl;
  ForEachField<Rec>([&](const auto& f) {
    using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
    if (!ddl.empty()) ddl += ", ";
    ddl += std::string(f.name) + " " + std::string(ValueCodec<BaseType<M>>::kSqlType);
    if (!IsOptional<M>::value) ddl += " NOT NULL";
  });
  if (!extra.empty()) ddl += ", " + extra;
  return ddl;
}

//! Comma-separated field names of Rec, in kFields order.
template <typename Rec>
std::string DuckColumnNames() {
  std::string names;
  ForEachField<Rec>([&](const auto& f) {
    if (!names.empty()) names += ", ";
    names += f.name;
  });
  return names;
}

//! Appends `rows` to `table`; when `with_day` is set the table has one more DATE column after the
//! record's fields, filled with the UTC day of the record's `ts`. Runs inside the connection's
//! current transaction, if any.
template <typename Rec>
Status AppendRecords(duckdb_connection conn, const std::string& table, const std::vector<Rec>& rows,
                     bool with_day = false) {
  if (rows.empty()) return Status::Ok();
  std::vector<duckdb_type> types = DuckColumnTypes<Rec>();
  if (with_day) types.push_back(DUCKDB_TYPE_DATE);
  std::vector<duckdb_logical_type> logical;
  for (duckdb_type t : types) logical.push_back(duckdb_create_logical_type(t));
  duckdb_appender appender = nullptr;
  Status status;
  if (duckdb_appender_create(conn, nullptr, table.c_str(), &appender) == DuckDBError) {
    status = Status::Internal("cannot append to " + table + ": " +
                              (appender ? duckdb_appender_error(appender) : "unknown error"));
  }
  duckdb_data_chunk chunk = duckdb_create_data_chunk(logical.data(), logical.size());
  const idx_t capacity = duckdb_vector_size();
  for (size_t start = 0; status.ok() && start < rows.size(); start += capacity) {
    const idx_t n = std::min<size_t>(capacity, rows.size() - start);
    duckdb_data_chunk_reset(chunk);
    idx_t col = 0;
    ForEachField<Rec>([&](const auto& f) {
      using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
      duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, col++);
      if constexpr (IsOptional<M>::value) {
        duckdb_vector_ensure_validity_writable(vec);
        uint64_t* validity = duckdb_vector_get_validity(vec);
        for (idx_t r = 0; r < n; ++r) {
          const M& m = rows[start + r].*(f.member);
          if (m) {
            duckdb_detail::PutValue(vec, r, *m);
          } else {
            duckdb_validity_set_row_invalid(validity, r);
          }
        }
      } else {
        for (idx_t r = 0; r < n; ++r) duckdb_detail::PutValue(vec, r, rows[start + r].*(f.member));
      }
    });
    if constexpr (requires(const Rec& r) { r.ts; }) {
      if (with_day) {
        auto* days = static_cast<int32_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, col)));
        for (idx_t r = 0; r < n; ++r) days[r] = rows[start + r].ts.date().days;
      }
    }
    duckdb_data_chunk_set_size(chunk, n);
    if (duckdb_append_data_chunk(appender, chunk) == DuckDBError) {
      status = Status::Internal("append to " + table + " failed: " + duckdb_appender_error(appender));
    }
  }
  if (status.ok() && appender && duckdb_appender_close(appender) == DuckDBError) {
    status = Status::Internal("append to " + table + " failed: " + duckdb_appender_error(appender));
  }
  duckdb_destroy_data_chunk(&chunk);
  if (appender) duckdb_appender_destroy(&appender);
  for (auto& t : logical) duckdb_destroy_logical_type(&t);
  return status;
}

}  // namespace tally
