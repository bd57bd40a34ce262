# The API tier (src/api): routes, the gateway (auth, roles, rate limits, audit and access logs,
# Prometheus metrics) and the OpenAPI document (src/api/openapi.json, compiled into the binary).

# The GraphQL engine (src/api/graphql: lexer, parser, validation, execution, introspection) and
# the declaration of tally's schema (tally_schema_types.cpp), apart from the resolvers. It needs
# only the metric catalogue, not the rest of the API tier, so the GraphQL fuzzer links this alone
# (cmake/fuzz.cmake); the resolvers (tally_schema.cpp) stay in tally_api.
add_library(tally_graphql STATIC
  src/api/graphql/ast.cpp
  src/api/graphql/executor.cpp
  src/api/graphql/introspection.cpp
  src/api/graphql/lexer.cpp
  src/api/graphql/parser.cpp
  src/api/graphql/schema.cpp
  src/api/graphql/tally_schema_types.cpp
  src/api/graphql/validation.cpp
  src/api/graphql/value.cpp
)
target_link_libraries(tally_graphql PUBLIC tally_metric_catalogue tally_core)

# The routes, the gateway and tally's GraphQL resolvers.
find_package(prometheus-cpp CONFIG REQUIRED)
file(READ ${CMAKE_SOURCE_DIR}/src/api/openapi.json TALLY_OPENAPI_TEXT)
configure_file(${CMAKE_SOURCE_DIR}/src/api/openapi_text.cpp.in
               ${CMAKE_BINARY_DIR}/generated/openapi_text.cpp @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/src/api/openapi.json)
add_library(tally_api STATIC
  ${CMAKE_BINARY_DIR}/generated/openapi_text.cpp
  src/api/access_log.cpp
  src/api/gateway.cpp
  src/api/graphql/tally_schema.cpp
  src/api/graphql_api.cpp
  src/api/ingest_api.cpp
  src/api/insights_api.cpp
  src/api/ledger_api.cpp
  src/api/live_api.cpp
  src/api/metrics_api.cpp
  src/api/models_api.cpp
  src/api/server_metrics.cpp
  src/api/subscriber_api.cpp
)
target_link_libraries(tally_api PUBLIC tally_graphql tally_auth tally_models tally_insights tally_metrics tally_ledger tally_ingest tally_http
                                       tally_core PkgConfig::SIMDJSON prometheus-cpp::core)
