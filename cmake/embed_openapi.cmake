# Generates a C++ source holding the OpenAPI document of `retort serve` as a string literal.
# Usage: cmake -DIN=<openapi.json> -DOUT=<file.cc> -P embed_openapi.cmake
file(READ "${IN}" doc)
string(FIND "${doc}" ")retortopenapi\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )retortopenapi\"")
endif()
set(body "// Generated from src/service/openapi.json by cmake/embed_openapi.cmake. Do not edit.\n")
string(APPEND body "#include \"service/openapi_document.h\"\n\nnamespace retort {\n")
string(APPEND body "std::string_view OpenApiDocument() {\n  static constexpr std::string_view kDoc = R\"retortopenapi(${doc})retortopenapi\";\n  return kDoc;\n}\n}  // namespace retort\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
