// Service: prompt-set uploads and exports (importer and exporter land with the dataio branch).
#include "service/export_jobs.h"
#include "service/service.h"

namespace retort {

using nlohmann::json;

Result<json> Service::ImportPromptSet(const std::string& name, const std::string& body) {
  (void)name;
  (void)body;
  return Status::Unavailable("prompt-set upload needs the importer (not merged yet)");
}

Result<json> Service::StartExport(const std::string& body) {
  (void)body;
  return Status::Unavailable("exports need the exporter (not merged yet)");
}

Result<json> Service::GetExport(const std::string& id) {
  (void)id;
  return Status::Unavailable("exports need the exporter (not merged yet)");
}

}  // namespace retort
