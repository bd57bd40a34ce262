# The metrics layer: the catalogue (src/metrics/catalogue.toml, compiled into the binary), semantic
# queries compiled to SQL with bound values, row-level security and the result cache.
file(READ ${CMAKE_SOURCE_DIR}/src/metrics/catalogue.toml TALLY_CATALOGUE_TEXT)
configure_file(${CMAKE_SOURCE_DIR}/src/metrics/catalogue_text.cpp.in
               ${CMAKE_BINARY_DIR}/generated/catalogue_text.cpp @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/src/metrics/catalogue.toml)
# The catalogue is a library of its own so that code which only names measures and dimensions
# (tally's GraphQL schema in tally_graphql, and so the GraphQL fuzzer) does not compile the query
# compiler and the engine, which need the event store.
add_library(tally_metric_catalogue STATIC
  ${CMAKE_BINARY_DIR}/generated/catalogue_text.cpp
  src/metrics/catalogue.cpp
)
target_link_libraries(tally_metric_catalogue PUBLIC tally_core)
add_library(tally_metrics STATIC
  src/metrics/semantic_query.cpp
  src/metrics/compiler.cpp
  src/metrics/analyses.cpp
  src/metrics/metrics_engine.cpp
)
target_link_libraries(tally_metrics PUBLIC tally_metric_catalogue tally_ingest tally_core)
