// Service: prompt-set uploads (the importer) and background exports (the exporter).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "retort/exporter.h"
#include "retort/importer.h"
#include "service/export_jobs.h"
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

// "--with-logprobs" -> "with_logprobs" in validation messages.
std::string FlagNamesToFields(const std::string& msg) {
  static const std::regex kFlag("--([a-z][a-z0-9-]*)");
  std::string out;
  std::sregex_iterator it(msg.begin(), msg.end(), kFlag), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += msg.substr(last, static_cast<size_t>(it->position()) - last);
    std::string name = (*it)[1];
    for (char& c : name)
      if (c == '-') c = '_';
    out += name;
    last = static_cast<size_t>(it->position() + it->length());
  }
  return out + msg.substr(last);
}

Status Expect(bool ok, const std::string& field, const char* what) {
  return ok ? Status::OK() : Status::InvalidArgument(field + ": expected " + what);
}

// Export options from the JSON body (field names = `retort export` flags with '_').
Result<ExportOptions> ExportOptionsFromJson(const json& j) {
  ExportOptions o;
  for (const auto& [k, v] : j.items()) {
    if (k == "run" || k == "out" || k == "license") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      const std::string& s = v.get_ref<const std::string&>();
      (k == "run" ? o.run : k == "out" ? o.out_dir : o.license) = s;
    } else if (k == "format") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<ExportFormat> f = ParseExportFormat(v.get_ref<const std::string&>());
      if (!f.ok()) return Status::InvalidArgument(FlagNamesToFields(f.status().message()));
      o.format = *f;
    } else if (k == "fields") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string() && (v == "full" || v == "minimal"), k, "\"full\" or \"minimal\""));
      o.fields = v == "minimal" ? ExportFields::kMinimal : ExportFields::kFull;
    } else if (k == "reasoning") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<ReasoningMode> r = ParseReasoningMode(v.get_ref<const std::string&>());
      if (!r.ok()) return Status::InvalidArgument(FlagNamesToFields(r.status().message()));
      o.reasoning = *r;
    } else if (k == "compress") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<Compression> c = ParseCompression(v.get_ref<const std::string&>());
      if (!c.ok()) return Status::InvalidArgument(FlagNamesToFields(c.status().message()));
      o.compress = *c;
    } else if (k == "split") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string like \"train=0.98,validation=0.02\""));
      Result<std::vector<SplitSpec>> s = ParseSplits(v.get_ref<const std::string&>());
      if (!s.ok()) return Status::InvalidArgument("split: " + FlagNamesToFields(s.status().message()));
      o.splits = *s;
    } else if (k == "with_logprobs" || k == "keep_truncated" || k == "keep_duplicates") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_boolean(), k, "true or false"));
      (k == "with_logprobs" ? o.with_logprobs : k == "keep_truncated" ? o.keep_truncated : o.keep_duplicates) =
          v.get<bool>();
    } else if (k == "shard_records" || k == "shard_bytes" || k == "min_chars" || k == "max_chars") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_integer(), k, "an integer"));
      const std::int64_t x = v.get<std::int64_t>();
      (k == "shard_records" ? o.shard_records : k == "shard_bytes" ? o.shard_bytes : k == "min_chars" ? o.min_chars
                                                                                                     : o.max_chars) = x;
    } else if (k == "seed") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_unsigned(), k, "a non-negative integer"));
      o.seed = v.get<std::uint64_t>();
    } else if (k == "drop_pattern") {
      if (v.is_string()) {
        o.drop_patterns.push_back(v.get<std::string>());
      } else {
        RETORT_RETURN_IF_ERROR(Expect(v.is_array(), k, "a string or an array of strings"));
        for (const json& e : v) {
          RETORT_RETURN_IF_ERROR(Expect(e.is_string(), k, "an array of strings"));
          o.drop_patterns.push_back(e.get<std::string>());
        }
      }
    } else {
      return Status::InvalidArgument(k + ": unknown field");
    }
  }
  if (o.run.empty()) return Status::InvalidArgument("run: the run to export is required");
  if (o.out_dir.empty()) return Status::InvalidArgument("out: the output directory is required");
  if (Status v = o.Validate(); !v.ok()) return Status::InvalidArgument(FlagNamesToFields(v.message()));
  return o;
}

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
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("body: not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("body: expected a JSON object");
  Result<ExportOptions> o = ExportOptionsFromJson(j);
  if (!o.ok()) return o.status();
  if (Result<RunInfo> r = store_->GetRun(o->run); !r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("run: no run named '" + o->run + "'");
    return r.status();
  }
  Store* store = store_.get();
  LogSink* log = log_;
  ExportOptions opts = *o;
  Result<std::int64_t> id = exports_->Start({{"run", opts.run}, {"out", opts.out_dir}}, [store, log, opts]() -> Result<json> {
    Result<ExportSummary> s = RunExport(*store, opts, log);
    if (!s.ok()) return s.status();
    json manifest = json::parse(s->manifest_json, nullptr, false);
    json out = {{"export_id", s->export_id},
                {"responses", s->responses},
                {"exported", s->exported},
                {"summary", s->ToLine(opts.out_dir, opts.run)}};
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
