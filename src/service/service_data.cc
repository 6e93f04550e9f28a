// Service: prompt-set uploads (the importer) and background exports (the exporter).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "retort/exporter.h"
#include "retort/importer.h"
#include "service/export_jobs.h"
#include "service/export_request.h"
#include "service/service.h"

namespace retort {

using nlohmann::json;

namespace {

constexpr size_t kMaxReportedErrors = 100;

// Collects the importer's rejected-line messages (bounded), with the upload's temp path
// replaced by "body".
class ImportReport : public LogSink {
 public:
  explicit ImportReport(std::string tmp_path) : tmp_(std::move(tmp_path)) {}
  void Write(const LogLine& line) override {
    if (line.level < LogLevel::kWarn) return;
    std::string m = line.message;
    for (size_t p = m.find(tmp_); p != std::string::npos; p = m.find(tmp_, p + 4)) m.replace(p, tmp_.size(), "body");
    std::lock_guard lk(mu_);
    if (errors_.size() < kMaxReportedErrors) errors_.push_back(m);
  }
  json errors() const {
    std::lock_guard lk(mu_);
    return errors_;
  }

 private:
  std::string tmp_;
  mutable std::mutex mu_;
  std::vector<std::string> errors_;
};

}  // namespace

Result<json> Service::ImportPromptSet(const std::string& name, const std::string& body) {
  if (!ValidResourceName(name))
    return Status::InvalidArgument("name: expected 1..128 characters of A-Z a-z 0-9 . _ - (not starting with '.')");
  // The importer streams from a file: the body goes to a private temp file first.
  std::string path = (std::filesystem::temp_directory_path() / "retort-upload-XXXXXX").string();
  const int fd = mkstemp(path.data());
  if (fd < 0) return Status::IOError("cannot create a temporary file for the upload");
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } remove{path};
  {
    size_t off = 0;
    while (off < body.size()) {
      const ssize_t n = ::write(fd, body.data() + off, body.size() - off);
      if (n <= 0) {
        ::close(fd);
        return Status::IOError("cannot write the upload to a temporary file");
      }
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  ImportOptions io;
  io.set = name;
  // The server shares the Store with running harvests: shorter import transactions keep their
  // result commits from waiting behind the store lock for long (the CLI default is 100k).
  io.batch_size = 10000;
  ImportReport report(path);
  Result<ImportSummary> sum = ImportPromptFile(*store_, io, path, &report);
  if (!sum.ok()) return sum.status();
  json j = json::parse(sum->ToJson(name), nullptr, false);
  if (j.is_discarded()) return Status::Internal("import summary is not JSON");
  j["errors"] = report.errors();
  if (sum->imported == 0 && sum->duplicates == 0 && sum->rejected > 0) {
    json first = report.errors();
    return Status::InvalidArgument("body: no line could be imported (" + std::to_string(sum->rejected) +
                                   " rejected)" + (first.empty() ? "" : "; first: " + first[0].get<std::string>()));
  }
  log_->Write(LogLine{LogLevel::kInfo, "", 0, 0, sum->ToLine(name)});
  return j;
}

Result<json> Service::StartExport(const std::string& body) {
  Result<ExportOptions> o = ParseExportRequest(body);
  if (!o.ok()) return o.status();
  const std::string out_name = o->out_dir;  // as the client named it, relative to the export root
  Result<std::string> dir = opts_.policy.ResolveExportDir(out_name);
  if (!dir.ok()) return dir.status();
  o->out_dir = *dir;
  if (Result<RunInfo> r = store_->GetRun(o->run); !r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("run: no run named '" + o->run + "'");
    return r.status();
  }
  Store* store = store_.get();
  LogSink* log = log_;
  ExportOptions opts = *o;
  Result<std::int64_t> id = exports_->Start({{"run", opts.run}, {"out", out_name}}, opts.out_dir, [store, log, opts, out_name]() -> Result<json> {
    Result<ExportSummary> s = RunExport(*store, opts, log);
    if (!s.ok()) return s.status();
    json manifest = json::parse(s->manifest_json, nullptr, false);
    json out = {{"export_id", s->export_id},
                {"responses", s->responses},
                {"exported", s->exported},
                {"summary", s->ToLine(out_name, opts.run)}};
    out["manifest"] = manifest.is_discarded() ? json(s->manifest_json) : manifest;
    return out;
  });
  if (!id.ok()) return id.status();
  log_->Write(LogLine{LogLevel::kInfo, opts.run, 0, 0, "export " + std::to_string(*id) + " started over the API"});
  return exports_->Get(*id);
}

Result<json> Service::GetExport(const std::string& id) {
  char* end = nullptr;
  const long long v = std::strtoll(id.c_str(), &end, 10);
  if (id.empty() || *end != '\0' || v <= 0) return Status::NotFound("no export with id '" + id + "'");
  return exports_->Get(v);
}

}  // namespace retort
