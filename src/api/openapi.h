#pragma once
// The OpenAPI 3.0 document of tally's REST API, served at GET /openapi.json. The document is
// src/api/openapi.json, compiled into the binary; a test checks that it is a valid OpenAPI
// document and that it lists exactly the routes of ApiRoutes() (api/gateway.h).

#include <string_view>

namespace tally {

std::string_view OpenApiJson();

}  // namespace tally
