// The OpenAPI document of `retort serve` (GET /v1/openapi.json) against the router's route
// table and the request parsers (issue #13).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "service/api_router.h"
#include "service/export_request.h"
#include "service/openapi_document.h"
#include "service/run_request.h"

using namespace retort;
using nlohmann::json;

namespace {

json Document() {
  json doc = json::parse(OpenApiDocument(), nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  return doc;
}

// A "$ref": "#/components/..." resolved in `doc`; any other value as it is.
const json& Resolve(const json& doc, const json& v) {
  if (!v.is_object() || !v.contains("$ref")) return v;
  const std::string ref = v["$ref"];
  REQUIRE(ref.rfind("#/", 0) == 0);
  const json* at = &doc;
  for (size_t start = 2; start <= ref.size();) {
    size_t end = ref.find('/', start);
    if (end == std::string::npos) end = ref.size();
    const std::string key = ref.substr(start, end - start);
    INFO("$ref " << ref);
    REQUIRE(at->contains(key));
    at = &(*at)[key];
    start = end + 1;
  }
  return *at;
}

const std::set<std::string> kMethods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

}  // namespace

TEST_CASE("the OpenAPI document is OpenAPI 3.1 JSON with the bearer scheme", "[service][openapi]") {
  const json doc = Document();
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["info"]["title"].is_string());
  CHECK(doc["info"]["version"].is_string());
  const json& bearer = doc["components"]["securitySchemes"]["bearerAuth"];
  CHECK(bearer["type"] == "http");
  CHECK(bearer["scheme"] == "bearer");
  CHECK(doc["security"] == json::parse(R"([{"bearerAuth": []}])"));
  // Only /healthz is open: every other operation keeps the document's security.
  for (const auto& [path, item] : doc["paths"].items())
    for (const auto& [method, op] : item.items()) {
      if (!kMethods.count(method)) continue;
      INFO(method << " " << path);
      if (path == "/healthz") CHECK(op["security"] == json::array());
      else CHECK_FALSE(op.contains("security"));
    }
}

TEST_CASE("every route of the router is in the OpenAPI document and vice versa", "[service][openapi]") {
  const json doc = Document();
  std::set<std::pair<std::string, std::string>> documented, routed;
  for (const auto& [path, item] : doc["paths"].items())
    for (const auto& [method, op] : item.items()) {
      (void)op;
      if (kMethods.count(method)) documented.insert({path, method});
    }
  for (const ApiRoute& r : ApiRoutes()) {
    std::string m = r.method;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    routed.insert({r.path, m});
  }
  CHECK(routed.size() == ApiRoutes().size());  // no route twice
  CHECK(routed.count({"/v1/openapi.json", "get"}) == 1);
  std::vector<std::string> not_documented, not_routed;
  for (const auto& [path, method] : routed)
    if (!documented.count({path, method})) not_documented.push_back(method + " " + path);
  for (const auto& [path, method] : documented)
    if (!routed.count({path, method})) not_routed.push_back(method + " " + path);
  CHECK(not_documented == std::vector<std::string>{});
  CHECK(not_routed == std::vector<std::string>{});
}

TEST_CASE("every OpenAPI operation declares its path parameters, responses and error shape", "[service][openapi]") {
  const json doc = Document();
  static const std::regex kParam(R"(\{([^}]+)\})");
  for (const auto& [path, item] : doc["paths"].items()) {
    std::set<std::string> in_path;
    for (std::sregex_iterator it(path.begin(), path.end(), kParam), end; it != end; ++it) in_path.insert((*it)[1]);
    for (const auto& [method, op] : item.items()) {
      if (!kMethods.count(method)) continue;
      INFO(method << " " << path);
      CHECK(op["operationId"].is_string());
      std::set<std::string> declared;
      for (const json& p : op.value("parameters", json::array())) {
        const json& param = Resolve(doc, p);
        if (param["in"] != "path") continue;
        CHECK(param["required"] == true);
        CHECK(param.contains("schema"));
        declared.insert(param["name"].get<std::string>());
      }
      CHECK(declared == in_path);
      REQUIRE(op["responses"].is_object());
      bool success = false;
      for (const auto& [code, r] : op["responses"].items()) {
        INFO("response " << code);
        const json& resp = Resolve(doc, r);
        CHECK(resp["description"].is_string());
        if (code[0] == '2') {
          success = true;
          CHECK(resp["content"].is_object());
          continue;
        }
        // Every error is {"error": {"code", "message"}}.
        CHECK(resp["content"]["application/json"]["schema"] == json{{"$ref", "#/components/schemas/Error"}});
      }
      CHECK(success);
      CHECK(op["responses"].contains("default"));
      if (method == "post" && path != "/v1/runs/{name}/pause" && path != "/v1/runs/{name}/resume" &&
          path != "/v1/runs/{name}/cancel")
        CHECK(op["requestBody"]["required"] == true);
    }
  }
  const json& error = doc["components"]["schemas"]["Error"];
  CHECK(error["required"] == json{"error"});
  CHECK(error["properties"]["error"]["required"] == json({"code", "message"}));
}

TEST_CASE("the OpenAPI run body has exactly the fields of the harvest option table, with their types",
          "[service][openapi]") {
  const json doc = Document();
  const json& schema = doc["components"]["schemas"]["RunRequest"];
  CHECK(schema["additionalProperties"] == false);
  std::set<std::string> documented, accepted = {"name", "set"};
  for (const auto& [k, v] : schema["properties"].items()) documented.insert(k);
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) {
    if (spec.name == std::string("run")) continue;  // the run's name is "name"
    const std::string field = JsonFieldName(spec.name);
    accepted.insert(field);
    const json& prop = schema["properties"][field];
    INFO(field << ": " << prop.dump());
    switch (spec.kind) {
      case HarvestOptionSpec::Kind::kInt: CHECK(prop["type"] == "integer"); break;
      case HarvestOptionSpec::Kind::kDouble: CHECK(prop["type"] == "number"); break;
      case HarvestOptionSpec::Kind::kBool: CHECK(prop["type"] == "boolean"); break;
      case HarvestOptionSpec::Kind::kString:
        if (field == "extra_body") CHECK(prop["oneOf"].size() == 2);
        else if (field == "response_schema") CHECK(prop["type"] == "object");
        else CHECK(prop["type"] == "string");
        break;
      case HarvestOptionSpec::Kind::kList:
        CHECK(prop["oneOf"] == json::parse(R"([{"type":"string"},{"type":"array","items":{"type":"string"}}])"));
        break;
    }
  }
  CHECK(documented == accepted);
  for (const json& r : schema["required"]) CHECK(documented.count(r.get<std::string>()) == 1);
}

TEST_CASE("every field of the OpenAPI export body is accepted by the export parser", "[service][openapi]") {
  const json doc = Document();
  const json& schema = doc["components"]["schemas"]["ExportRequest"];
  CHECK(schema["additionalProperties"] == false);
  CHECK(schema["required"] == json({"run", "out"}));
  int fields = 0;
  for (const auto& [field, prop] : schema["properties"].items()) {
    // A valid value of the declared type.
    json value;
    if (prop.contains("enum")) value = prop["enum"][0];
    else if (prop.contains("examples")) value = prop["examples"][0];
    else if (prop.contains("oneOf") || prop["type"] == "string") value = "x";
    else if (prop["type"] == "integer") value = 1;
    else if (prop["type"] == "boolean") value = true;
    INFO(field << " = " << value.dump());
    REQUIRE_FALSE(value.is_null());
    json body = {{"run", "r"}, {"out", "o"}};
    if (field == "near_dup_on") body["near_dup"] = 0.8;  // only with near_dup
    body[field] = value;
    // As text, the way a request body reaches the parser.
    Result<ExportOptions> parsed = ParseExportRequest(body.dump());
    INFO((parsed.ok() ? std::string("ok") : parsed.status().message()));
    CHECK(parsed.ok());
    // The wrong type is refused, naming the field.
    body[field] = json::array({json::object()});
    Result<ExportOptions> wrong = ParseExportRequest(body.dump());
    CHECK_FALSE(wrong.ok());
    if (!wrong.ok()) CHECK(wrong.status().message().rfind(field + ":", 0) == 0);
    ++fields;
  }
  CHECK(fields == 28);  // the documented fields, counted: a field dropped from the document fails here
  Result<ExportOptions> unknown = ParseExportRequest(R"({"run": "r", "out": "o", "bogus": 1})");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message() == "bogus: unknown field");
}
