# The SQL endpoint for BI tools (issue 9, docs/sql.md): the guard that accepts read-only
# SELECTs over the governed relations, parsed by the real PostgreSQL parser (Debian's
# libpg-query-dev, a static library); the governed relations (row filters and masking as SQL);
# and the PostgreSQL-wire server `tally serve --sql-port` runs.
find_path(PG_QUERY_INCLUDE_DIR pg_query.h REQUIRED)
find_library(PG_QUERY_LIBRARY NAMES libpg_query.a pg_query REQUIRED)
add_library(tally_sql STATIC src/sql/sql_guard.cpp src/sql/governed_sql.cpp src/sql/pg_wire.cpp
                             src/sql/sql_endpoint.cpp)
target_include_directories(tally_sql SYSTEM PRIVATE ${PG_QUERY_INCLUDE_DIR})
target_link_libraries(tally_sql PUBLIC tally_auth tally_ingest tally_core PkgConfig::SIMDJSON
                                       ${PG_QUERY_LIBRARY} Threads::Threads)
