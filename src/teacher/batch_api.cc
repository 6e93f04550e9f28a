// BatchApi for OpenAI's Batch API and Anthropic's Message Batches (wire-formats.md §C).
#include "teacher/batch_api.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "teacher/provider_error.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

namespace {

using nlohmann::json;

constexpr std::size_t kMetaBodyMax = 16u << 20;  // a batch object or a list page
constexpr double kBulkTimeoutS = 3600;           // an upload or download of up to hundreds of MB

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string Short(const std::string& s, std::size_t n = 300) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// "2024-08-20T18:37:24.100435Z" -> Unix ms (0 when it does not parse).
Millis ParseRfc3339Ms(const std::string& s) {
  std::tm tm{};
  int frac_digits = 0;
  long frac = 0;
  if (s.size() < 19) return 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec) != 6)
    return 0;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i)
      if (frac_digits < 3) {
        frac = frac * 10 + (s[i] - '0');
        ++frac_digits;
      }
  }
  while (frac_digits < 3) {
    frac *= 10;
    ++frac_digits;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return 0;
  return static_cast<Millis>(t) * 1000 + frac;
}

class BatchApiBase : public BatchApi {
 public:
  // `batches` is the path of the batch collection; `after_param` names the list cursor.
  BatchApiBase(std::unique_ptr<HttpTransport> api, std::unique_ptr<HttpTransport> bulk, HeaderList auth,
               std::string batches, std::string after_param)
      : api_(std::move(api)),
        bulk_(std::move(bulk)),
        auth_(std::move(auth)),
        batches_(std::move(batches)),
        after_param_(std::move(after_param)) {}

 public:
  Result<BatchState> Get(const std::string& id, BatchCallError* err) override {
    Result<json> j = CallJson("GET", batches_ + "/" + id, nullptr, "poll batch (GET " + batches_ + "/{id})", err);
    if (!j.ok()) return j.status();
    return Parse(*j);
  }

  // Newest first, page by page: the cursor is the page's last_id (or its last item's id).
  Status List(const std::function<bool(const BatchState&)>& fn, BatchCallError* err) override {
    std::string after;
    for (int page = 0; page < 10'000; ++page) {
      Result<json> j = CallJson("GET", batches_ + "?limit=100" + (after.empty() ? "" : "&" + after_param_ + "=" + after),
                                nullptr, "list batches (GET " + batches_ + ")", err);
      if (!j.ok()) return j.status();
      const json& data = (*j)["data"];
      if (!data.is_array()) return Status::Corruption("list batches: no data array");
      for (const json& b : data) {
        if (!b.is_object()) continue;
        if (!fn(Parse(b))) return Status::OK();
        after = Text(b, "id");
      }
      if (!Text(*j, "last_id").empty()) after = Text(*j, "last_id");
      if (!j->value("has_more", false) || data.empty() || after.empty()) return Status::OK();
    }
    return Status::OK();
  }

  Result<BatchState> Cancel(const std::string& id, BatchCallError* err) override {
    json body = json::object();
    Result<json> j = CallJson("POST", batches_ + "/" + id + "/cancel", &body, "cancel batch (POST " + batches_ + "/{id}/cancel)", err);
    if (!j.ok()) return j.status();
    return Parse(*j);
  }

  // Streams every result resource of the batch into `out_path`, a line break after each (a cut
  // last line stays cut: it is reported, not joined to the next file's first line).
  Result<std::int64_t> Download(const BatchState& b, const std::string& out_path, BatchCallError* err) override {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(out_path.c_str(), "wb"));
    if (!f) return Status::IOError("cannot write '" + out_path + "': " + std::strerror(errno));
    std::int64_t total = 0;
    for (const std::string& path : ResultPaths(b)) {
      Result<std::int64_t> n = StreamTo(path, f.get(), "download results (GET " + path + ")", err);
      if (!n.ok()) return n.status();
      total += *n;
      if (std::fputc('\n', f.get()) == EOF) return Status::IOError("cannot write '" + out_path + "'");
    }
    if (std::fflush(f.get()) != 0) return Status::IOError("cannot write '" + out_path + "': " + std::strerror(errno));
    return total;
  }

 protected:
  // A batch object of this provider.
  virtual BatchState Parse(const json& j) const = 0;
  // Where the results of an ended batch are read, in order.
  virtual std::vector<std::string> ResultPaths(const BatchState& b) const = 0;

 protected:
  // Sorts an HTTP outcome into OK, retryable or final, with the provider's message.
  Status Check(const HttpResponse& r, const std::string& what, BatchCallError* err) const {
    err->status = Status::OK();
    err->retryable = false;
    err->retry_after_s = 0;
    if (r.error != TransportError::kNone) {
      err->retryable = r.error != TransportError::kBodyTooLarge && r.error != TransportError::kHeadersTooLarge;
      err->status = Status::Unavailable(what + ": " + TransportErrorName(r.error) + ": " + r.error_detail);
      return err->status;
    }
    if (r.status >= 200 && r.status < 300) return Status::OK();
    const ProviderError pe = ParseProviderErrorBody(r.body);
    const std::string msg = what + ": HTTP " + std::to_string(r.status) +
                            (pe.message.empty() ? std::string() : ": " + Short(pe.message));
    if (std::optional<Millis> ra = ParseRetryAfterMs(r.headers, 0)) err->retry_after_s = static_cast<double>(*ra) / 1000;
    if (r.status == 401 || r.status == 403) {
      err->status = Status::Unauthenticated(msg + " (check the API key variable)");
    } else if (r.status == 404) {
      err->status = Status::NotFound(msg);
    } else if (r.status == 408 || r.status == 409 || r.status == 425 || r.status == 429 || r.status >= 500) {
      err->retryable = true;
      err->status = Status::Unavailable(msg);
    } else {
      err->status = Status::InvalidArgument(msg);
    }
    return err->status;
  }

  Result<json> CallJson(const char* method, const std::string& path, const json* body, const std::string& what,
                        BatchCallError* err) {
    HttpResponse r = std::string_view(method) == "GET" ? api_->Get(path, auth_) : api_->Post(path, auth_, body ? Dump(*body) : "{}");
    RETORT_RETURN_IF_ERROR(Check(r, what, err));
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      err->retryable = true;  // a proxy's HTML page, a cut body: worth another try
      err->status = Status::Corruption(what + ": the answer is not a JSON object: " + Short(r.body, 120));
      return err->status;
    }
    return j;
  }

  // Streams the 200 body of GET `path` into `f`; the bytes written.
  Result<std::int64_t> StreamTo(const std::string& path, std::FILE* f, const std::string& what, BatchCallError* err) {
    std::int64_t n = 0;
    bool write_failed = false;
    HttpResponse r = bulk_->GetStream(path, auth_, [&](std::string_view chunk) {
      if (std::fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size()) {
        write_failed = true;
        return false;
      }
      n += static_cast<std::int64_t>(chunk.size());
      return true;
    });
    if (write_failed) {
      err->retryable = false;
      err->status = Status::IOError(what + ": cannot write the results file: " + std::strerror(errno));
      return err->status;
    }
    RETORT_RETURN_IF_ERROR(Check(r, what, err));
    return n;
  }

  std::unique_ptr<HttpTransport> api_, bulk_;
  HeaderList auth_;
  const std::string batches_, after_param_;
};


}  // namespace

BatchResultLine ClassifyOpenAIBatchLine(std::string_view raw) {
  BatchResultLine out;
  json line = json::parse(raw, nullptr, false);
  if (line.is_discarded() || !line.is_object() || !line.contains("custom_id") || !line["custom_id"].is_string()) {
    out.error = "not a batch output line {\"custom_id\", \"response\", \"error\"}";
    return out;
  }
  out.custom_id = line["custom_id"].get<std::string>();
  const json err = line.value("error", json());
  const json resp = line.value("response", json());
  if (!err.is_null()) {
    out.outcome = BatchResultLine::Outcome::kRetry;  // batch_expired, batch_cancelled, ...: send again
    out.error = "batch: " + Short(Dump(err));
    return out;
  }
  if (!resp.is_object() || !resp.contains("status_code") || !resp["status_code"].is_number_integer()) {
    out.error = "response.status_code: expected an integer";
    return out;
  }
  out.status = resp["status_code"].get<int>();
  out.request_id = Text(resp, "request_id");
  const json body = resp.value("body", json());
  out.body = body.is_string() ? body.get<std::string>() : Dump(body);
  if (out.status == 200) {
    out.outcome = BatchResultLine::Outcome::kSucceeded;
    return out;
  }
  const ProviderError pe = ParseProviderErrorBody(out.body);
  out.error = "batch: HTTP " + std::to_string(out.status) + (pe.message.empty() ? "" : ": " + Short(pe.message));
  const bool permanent = out.status >= 400 && out.status < 500 && out.status != 408 && out.status != 409 &&
                         out.status != 429;
  out.outcome = permanent ? BatchResultLine::Outcome::kFailed : BatchResultLine::Outcome::kRetry;
  return out;
}

BatchResultLine ClassifyAnthropicBatchLine(std::string_view raw) {
  BatchResultLine out;
  json line = json::parse(raw, nullptr, false);
  if (line.is_discarded() || !line.is_object() || !line.contains("custom_id") || !line["custom_id"].is_string() ||
      !line.contains("result") || !line["result"].is_object()) {
    out.error = "not a Message Batches result line {\"custom_id\", \"result\"}";
    return out;
  }
  out.custom_id = line["custom_id"].get<std::string>();
  const json& res = line["result"];
  const std::string type = Text(res, "type");
  if (type == "succeeded" && res.contains("message") && res["message"].is_object()) {
    out.outcome = BatchResultLine::Outcome::kSucceeded;
    out.body = Dump(res["message"]);
    out.request_id = Text(res["message"], "id");
    out.status = 200;
    return out;
  }
  if (type == "errored") {
    const json e = res.value("error", json());
    const ProviderError pe = ParseProviderErrorJson(e);
    out.request_id = e.is_object() ? Text(e, "request_id") : "";
    out.body = Dump(e);
    out.error = "batch: errored: " + (pe.type.empty() ? std::string("error") : pe.type) +
                (pe.message.empty() ? "" : ": " + Short(pe.message));
    // An invalid request must be fixed before it is sent again; other errors may be retried.
    const bool permanent = pe.type == "invalid_request_error";
    out.status = permanent ? 400 : 0;
    out.outcome = permanent ? BatchResultLine::Outcome::kFailed : BatchResultLine::Outcome::kRetry;
    return out;
  }
  if (type == "canceled" || type == "expired") {
    out.outcome = BatchResultLine::Outcome::kRetry;
    out.error = "batch: " + type;
    return out;
  }
  out.error = "result.type: expected succeeded, errored, canceled or expired";
  return out;
}

namespace {

// ---- OpenAI Batch API ----
class OpenAIBatchApi : public BatchApiBase {
 public:
  OpenAIBatchApi(std::unique_ptr<HttpTransport> api, std::unique_ptr<HttpTransport> bulk, HeaderList auth)
      : BatchApiBase(std::move(api), std::move(bulk), std::move(auth), "/batches", "after") {}
  std::string_view Provider() const override { return "openai-chat"; }
  std::int64_t MaxRequests() const override { return 50'000; }
  std::int64_t MaxBytes() const override { return 200'000'000; }
  std::string FileHead() const override { return ""; }
  std::string Entry(const std::string& custom_id, const std::string& request_body) const override {
    return "{\"custom_id\":" + json(custom_id).dump() + ",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":" +
           request_body + "}";
  }
  std::string Separator() const override { return "\n"; }
  std::string FileTail() const override { return "\n"; }
  bool NeedsUpload() const override { return true; }

  Result<std::string> Upload(const std::string& path, BatchCallError* err) override {
    std::random_device rd;
    char boundary[41];
    std::snprintf(boundary, sizeof boundary, "retort-%08x%08x%08x", rd(), rd(), rd());
    StreamedBody b;
    b.content_type = std::string("multipart/form-data; boundary=") + boundary;
    b.head = std::string("--") + boundary +
             "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + boundary +
             "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"retort-batch.jsonl\"\r\n"
             "Content-Type: application/jsonl\r\n\r\n";
    b.file_path = path;
    b.tail = std::string("\r\n--") + boundary + "--\r\n";
    HttpResponse r = bulk_->PostStream("/files", auth_, b);
    RETORT_RETURN_IF_ERROR(Check(r, "upload (POST /files)", err));
    json j = json::parse(r.body, nullptr, false);
    const std::string id = j.is_object() ? Text(j, "id") : "";
    if (id.empty()) {
      err->retryable = true;
      err->status = Status::Corruption("upload (POST /files): no file id in the answer: " + Short(r.body, 120));
      return err->status;
    }
    return id;
  }

  Result<BatchState> Create(const std::string& file_id, const std::string&, const std::string& tag,
                            BatchCallError* err) override {
    json body = {{"input_file_id", file_id},
                 {"endpoint", "/v1/chat/completions"},
                 {"completion_window", "24h"},
                 {"metadata", {{"retort_tag", tag}}}};
    Result<json> j = CallJson("POST", "/batches", &body, "create batch (POST /batches)", err);
    if (!j.ok()) return j.status();
    return Parse(*j);
  }

  BatchResultLine Classify(std::string_view raw) const override { return ClassifyOpenAIBatchLine(raw); }

 private:
  std::vector<std::string> ResultPaths(const BatchState& b) const override {
    std::vector<std::string> out;  // the output file, then the error file
    for (const std::string* id : {&b.output_file_id, &b.error_file_id})
      if (!id->empty()) out.push_back("/files/" + *id + "/content");
    return out;
  }
  BatchState Parse(const json& j) const override {
    BatchState s;
    s.id = Text(j, "id");
    s.status = Text(j, "status");
    s.ended = s.status == "completed" || s.status == "expired" || s.status == "cancelled" || s.status == "failed";
    s.failed = s.status == "failed";
    s.output_file_id = Text(j, "output_file_id");
    s.error_file_id = Text(j, "error_file_id");
    if (j.contains("request_counts") && j["request_counts"].is_object()) {
      s.counts_json = Dump(j["request_counts"]);
      const json& c = j["request_counts"];
      if (c.contains("total") && c["total"].is_number_integer()) s.total_requests = c["total"].get<std::int64_t>();
    }
    if (j.contains("metadata") && j["metadata"].is_object()) s.tag = Text(j["metadata"], "retort_tag");
    if (j.contains("created_at") && j["created_at"].is_number()) s.created_at_ms = j["created_at"].get<Millis>() * 1000;
    if (j.contains("errors") && j["errors"].is_object() && j["errors"].contains("data") && j["errors"]["data"].is_array()) {
      for (const json& e : j["errors"]["data"]) {
        if (!e.is_object()) continue;
        if (!s.errors.empty()) s.errors += "; ";
        s.errors += (e.contains("line") && e["line"].is_number_integer() ? "line " + std::to_string(e["line"].get<long>()) + ": " : "") +
                    Short(Text(e, "message"), 200);
        if (s.errors.size() > 1000) break;
      }
    }
    return s;
  }
};

// ---- Anthropic Message Batches ----
class AnthropicBatchApi : public BatchApiBase {
 public:
  AnthropicBatchApi(std::unique_ptr<HttpTransport> api, std::unique_ptr<HttpTransport> bulk, HeaderList auth)
      : BatchApiBase(std::move(api), std::move(bulk), std::move(auth), "/v1/messages/batches", "after_id") {}
  std::string_view Provider() const override { return "anthropic-messages"; }
  std::int64_t MaxRequests() const override { return 100'000; }
  std::int64_t MaxBytes() const override { return 256'000'000; }
  std::string FileHead() const override { return "{\"requests\":[\n"; }
  std::string Entry(const std::string& custom_id, const std::string& request_body) const override {
    return "{\"custom_id\":" + json(custom_id).dump() + ",\"params\":" + request_body + "}";
  }
  std::string Separator() const override { return ",\n"; }
  std::string FileTail() const override { return "\n]}\n"; }
  bool NeedsUpload() const override { return false; }
  Result<std::string> Upload(const std::string&, BatchCallError*) override { return std::string(); }

  Result<BatchState> Create(const std::string&, const std::string& path, const std::string&,
                            BatchCallError* err) override {
    StreamedBody b;
    b.content_type = "application/json";
    b.file_path = path;
    HttpResponse r = bulk_->PostStream("/v1/messages/batches", auth_, b);
    RETORT_RETURN_IF_ERROR(Check(r, "create batch (POST /v1/messages/batches)", err));
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || Text(j, "id").empty()) {
      err->retryable = true;
      err->status = Status::Corruption("create batch: no batch id in the answer: " + Short(r.body, 120));
      return err->status;
    }
    return Parse(j);
  }

  BatchResultLine Classify(std::string_view raw) const override { return ClassifyAnthropicBatchLine(raw); }

 private:
  // The SDK builds the results address from the id (results_url names the same resource).
  std::vector<std::string> ResultPaths(const BatchState& b) const override {
    return {"/v1/messages/batches/" + b.id + "/results"};
  }
  BatchState Parse(const json& j) const override {
    BatchState s;
    s.id = Text(j, "id");
    s.status = Text(j, "processing_status");
    s.ended = s.status == "ended";
    if (j.contains("request_counts") && j["request_counts"].is_object()) {
      s.counts_json = Dump(j["request_counts"]);
      std::int64_t total = 0;
      for (const auto& [k, v] : j["request_counts"].items())
        if (v.is_number_integer()) total += v.get<std::int64_t>();
      s.total_requests = total;
    }
    s.created_at_ms = ParseRfc3339Ms(Text(j, "created_at"));
    return s;
  }
};

}  // namespace

Result<std::unique_ptr<BatchApi>> MakeBatchApi(const BatchApiOptions& opts) {
  TransportOptions meta = opts.transport;
  meta.max_body_bytes = kMetaBodyMax;
  TransportOptions bulk = opts.transport;
  bulk.timeout_s = std::max(bulk.timeout_s, kBulkTimeoutS);
  if (bulk.idle_timeout_s <= 0) bulk.idle_timeout_s = std::min(opts.transport.timeout_s, 600.0);
  bulk.max_body_bytes = kMetaBodyMax;  // bodies of error answers; 200 bodies stream to the file
  Result<std::unique_ptr<HttpTransport>> api = HttpTransport::Create(meta);
  if (!api.ok()) return api.status();
  Result<std::unique_ptr<HttpTransport>> big = HttpTransport::Create(bulk);
  if (!big.ok()) return big.status();
  if (opts.provider == "openai-chat")
    return std::unique_ptr<BatchApi>(new OpenAIBatchApi(std::move(*api), std::move(*big), opts.auth_headers));
  if (opts.provider == "anthropic-messages")
    return std::unique_ptr<BatchApi>(new AnthropicBatchApi(std::move(*api), std::move(*big), opts.auth_headers));
  return Status::InvalidArgument("--provider: no batch API for '" + opts.provider +
                                 "' (batch mode supports openai-chat and anthropic-messages)");
}

}  // namespace retort
