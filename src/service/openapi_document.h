// OpenApiDocument: the OpenAPI 3.1 description of the `retort serve` API (GET /v1/openapi.json).
#pragma once

#include <string_view>

namespace retort {

// The document as JSON text: src/service/openapi.json, compiled in at build time
// (cmake/embed_openapi.cmake). Static storage; thread-safe. tests/service/openapi_test.cpp
// keeps its paths equal to ApiRoutes() and its request bodies equal to what the parsers accept.
std::string_view OpenApiDocument();

}  // namespace retort
