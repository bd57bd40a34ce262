# The dashboards (web/, docs/web.md): TypeScript bundled by esbuild and compiled into the binary
# as tally_web, so `tally serve` alone serves them. web/build.mjs writes the files as a C++ source
# (web_assets_data.cpp); it needs web/node_modules, which scripts/setup installs (npm ci).
find_program(NODE_EXECUTABLE node REQUIRED)
if(NOT EXISTS ${CMAKE_SOURCE_DIR}/web/node_modules/esbuild)
  message(FATAL_ERROR "web/node_modules is missing: run scripts/setup (or make setup) first")
endif()
file(GLOB_RECURSE TALLY_WEB_INPUTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/web/src/*
     ${CMAKE_SOURCE_DIR}/web/static/*)
set(TALLY_WEB_CPP ${CMAKE_BINARY_DIR}/generated/web_assets_data.cpp)
add_custom_command(
  OUTPUT ${TALLY_WEB_CPP}
  COMMAND ${NODE_EXECUTABLE} ${CMAKE_SOURCE_DIR}/web/build.mjs --out ${CMAKE_BINARY_DIR}/web
          --cpp ${TALLY_WEB_CPP}
  DEPENDS ${TALLY_WEB_INPUTS} ${CMAKE_SOURCE_DIR}/web/build.mjs
          ${CMAKE_SOURCE_DIR}/web/package-lock.json
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/web
  COMMENT "Building the dashboards (web/build.mjs, esbuild)"
  VERBATIM)
add_library(tally_web STATIC src/web/web_assets.cpp ${TALLY_WEB_CPP})
target_link_libraries(tally_web PUBLIC tally_http tally_core)
