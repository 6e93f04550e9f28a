// Tests of the prompt files people have: OpenAI batch requests, CSV records, templates (issue #13).
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <vector>

#include "prompts/batch_request_line.h"
#include "prompts/csv_reader.h"
#include "prompts/prompt_template.h"
#include "retort/importer.h"
#include "retort/store.h"
#include "test_support/capture_log_sink.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {

std::vector<std::string> Split(const std::string& rec) {
  std::vector<std::string> f;
  std::string err;
  REQUIRE(SplitCsvRecord(rec, &f, &err));
  return f;
}

std::string SplitError(const std::string& rec) {
  std::vector<std::string> f;
  std::string err;
  CHECK_FALSE(SplitCsvRecord(rec, &f, &err));
  return err;
}

// Every record of `text` read through CsvReader.
std::vector<CsvRecord> ReadCsv(const std::string& text, size_t max = 1 << 20) {
  test::TempDir dir;
  const std::string path = dir.path() + "/x.csv";
  test::WriteFile(path, text);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  CsvReader r(f, max);
  std::vector<CsvRecord> out;
  CsvRecord rec;
  for (;;) {
    Result<bool> more = r.Next(&rec);
    REQUIRE(more.ok());
    if (!*more) break;
    out.push_back(rec);
  }
  std::fclose(f);
  return out;
}

RowTemplate Tmpl(const std::string& user, const std::string& system = "", const std::string& id = "") {
  Result<RowTemplate> t = MakeRowTemplate(user, system, id);
  REQUIRE(t.ok());
  return std::move(*t);
}

std::string Column(const std::string& db, const std::string& col, const std::string& key) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const std::string sql = "SELECT " + col + " FROM prompts WHERE prompt_key = ?";
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  std::string out = "<missing>";
  if (sqlite3_step(st) == SQLITE_ROW)
    out = sqlite3_column_type(st, 0) == SQLITE_NULL ? "<null>"
                                                    : reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace

TEST_CASE("SplitCsvRecord follows RFC 4180", "[prompts]") {
  CHECK(Split("a,b,c") == std::vector<std::string>{"a", "b", "c"});
  CHECK(Split("a,,") == std::vector<std::string>{"a", "", ""});
  CHECK(Split("") == std::vector<std::string>{""});
  CHECK(Split("\"x, y\",\"say \"\"hi\"\"\",z\r") == std::vector<std::string>{"x, y", "say \"hi\"", "z"});
  CHECK(Split("\"two\nlines\",\"\"") == std::vector<std::string>{"two\nlines", ""});
  CHECK(Split("\"a\r\nb\"") == std::vector<std::string>{"a\r\nb"});
  CHECK_THAT(SplitError("a,b\"c"), Catch::Contains("stray quote in unquoted field 2"));
  CHECK_THAT(SplitError("\"a\"b"), Catch::Contains("text after the closing quote of field 1"));
  CHECK_THAT(SplitError("x,\"open"), Catch::Contains("unterminated quoted field 2"));
}

TEST_CASE("CsvReader joins quoted line breaks, keeps line numbers, drops a BOM", "[prompts]") {
  auto recs = ReadCsv("\xEF\xBB\xBFq,a\r\n\"multi\r\nline, with comma\",1\r\n\r\nplain,\"2\"\n\"never closed\n");
  REQUIRE(recs.size() == 5);
  CHECK(recs[0].lineno == 1);
  CHECK(recs[0].fields == std::vector<std::string>{"q", "a"});
  CHECK(recs[1].lineno == 2);
  CHECK(recs[1].fields == std::vector<std::string>{"multi\r\nline, with comma", "1"});
  CHECK(recs[2].lineno == 4);
  CHECK(recs[2].blank);
  CHECK(recs[3].lineno == 5);
  CHECK(recs[3].fields == std::vector<std::string>{"plain", "2"});
  CHECK(recs[4].lineno == 6);
  CHECK_THAT(recs[4].error, Catch::Contains("unterminated quoted field"));
  auto bad = ReadCsv("a\n\"never closed\nstill open");
  REQUIRE(bad.size() == 2);
  CHECK(bad[1].lineno == 2);
  CHECK_THAT(bad[1].error, Catch::Contains("unterminated quoted field"));
}

TEST_CASE("CsvReader bounds a record's size", "[prompts]") {
  auto recs = ReadCsv("h\n\"" + std::string(100, 'x') + "\n" + std::string(100, 'y') + "\"\nok\n", 150);
  REQUIRE(recs.size() == 3);
  CHECK(recs[1].too_long);
  CHECK(recs[1].lineno == 2);
  CHECK(recs[2].lineno == 4);
  CHECK(recs[2].fields == std::vector<std::string>{"ok"});
}

TEST_CASE("PromptTemplate parses placeholders and brace escapes", "[prompts]") {
  Result<PromptTemplate> t = PromptTemplate::Parse("{{lit}} Solve: {question} ({question}, {n})}}", "--template");
  REQUIRE(t.ok());
  CHECK(t->fields() == std::vector<std::string>{"question", "n"});
  const std::string q = "Q", three = "3";
  auto value = [&](const std::string& f) -> const std::string& { return f == "n" ? three : q; };
  std::string out;
  REQUIRE(t->Render(value, 100, &out));
  CHECK(out == "{lit} Solve: Q (Q, 3)}");
  CHECK_FALSE(t->Render(value, 10, &out));
  CHECK_THAT(PromptTemplate::Parse("a } b", "--template").status().message(), Catch::Contains("unmatched '}'"));
  CHECK_THAT(PromptTemplate::Parse("a {b", "--template").status().message(), Catch::Contains("unmatched '{'"));
  CHECK_THAT(PromptTemplate::Parse("a {b{c}", "--template").status().message(), Catch::Contains("unmatched '{'"));
  CHECK_THAT(PromptTemplate::Parse("{}", "--system-template").status().message(),
             Catch::Contains("--system-template: empty placeholder"));
}

TEST_CASE("Template rows: JSON values as JSON text, leftovers as metadata, missing columns named", "[prompts]") {
  const RowTemplate t = Tmpl("Solve: {question} given {data}", "You are {persona}.", "qid");
  ParsedLine p = ParseTemplateJsonLine(
      t, R"({"qid":7,"question":"2+2?","data":{"b":[1,2]},"persona":"terse","answer":4,"src":"gsm8k"})");
  REQUIRE(p.ok);
  CHECK(p.prompt.key == "7");
  REQUIRE(p.prompt.messages.size() == 2);
  CHECK(p.prompt.messages[0].content == "You are terse.");
  CHECK(p.prompt.messages[1].content == R"(Solve: 2+2? given {"b":[1,2]})");
  CHECK(p.prompt.metadata_json == R"({"answer":4,"src":"gsm8k"})");

  ParsedLine miss = ParseTemplateJsonLine(t, R"({"qid":"a","data":1,"persona":"x"})");
  REQUIRE_FALSE(miss.ok);
  CHECK(miss.error.reason == LineErrorReason::kMissingColumn);
  CHECK(miss.error.field == "question");
  CHECK(miss.error.message == "column missing (template 'Solve: {question} given {data}')");

  ParsedLine noid = ParseTemplateJsonLine(t, R"({"question":"q","data":1,"persona":"x"})");
  REQUIRE_FALSE(noid.ok);
  CHECK(noid.error.field == "qid");
  ParsedLine badid = ParseTemplateJsonLine(t, R"({"qid":[1],"question":"q","data":1,"persona":"x"})");
  REQUIRE_FALSE(badid.ok);
  CHECK(badid.error.reason == LineErrorReason::kWrongType);
  // A template repeating a large column is bounded.
  std::string many;
  for (int i = 0; i < 20; ++i) many += "{q}";
  ParsedLine big = ParseTemplateJsonLine(Tmpl(many), R"({"q":")" + std::string(1 << 20, 'x') + "\"}");
  REQUIRE_FALSE(big.ok);
  CHECK(big.error.reason == LineErrorReason::kLineTooLong);
  ParsedLine empty = ParseTemplateJsonLine(Tmpl("{q}"), R"({"q":""})");
  REQUIRE_FALSE(empty.ok);
  CHECK(empty.error.reason == LineErrorReason::kEmptyContent);
  CHECK(ParseTemplateJsonLine(Tmpl("{q}"), "[1]").error.reason == LineErrorReason::kNotAnObject);
  ParsedLine nometa = ParseTemplateJsonLine(Tmpl("{q}"), R"({"q":"x"})");
  REQUIRE(nometa.ok);
  CHECK(nometa.prompt.metadata_json.empty());
  CHECK(nometa.prompt.key.rfind("h:", 0) == 0);

  ParsedLine csv = ParseTemplateCsvRecord(Tmpl("Solve: {question}"), {"id", "question"}, {"1", "2+2"});
  REQUIRE(csv.ok);
  CHECK(csv.prompt.metadata_json == R"({"id":"1"})");
  ParsedLine count = ParseTemplateCsvRecord(Tmpl("{question}"), {"id", "question"}, {"1"});
  CHECK(count.error.reason == LineErrorReason::kInvalidCsv);
}

TEST_CASE("OpenAI batch request lines keep custom_id, model and run-compatible parameters", "[prompts]") {
  const std::string line =
      R"({"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",)"
      R"("messages":[{"role":"developer","content":"Be terse."},{"role":"user","content":"2+2?"}],)"
      R"("temperature":0.7,"max_tokens":256,"stop":["\n\n"],"seed":3,"frequency_penalty":0.5,"top_p":null,)"
      R"("response_format":{"type":"json_object"},"metadata":{"k":"v"}}})";
  CHECK(IsBatchRequestLine(line));
  CHECK_FALSE(IsBatchRequestLine(R"({"id":"x","prompt":"custom_id body"})"));
  ParsedLine p = ParseBatchRequestLine(line);
  REQUIRE(p.ok);
  CHECK(p.prompt.key == "req-1");
  REQUIRE(p.prompt.messages.size() == 2);
  CHECK(p.prompt.messages[0].role == "system");
  CHECK(p.prompt.metadata_json ==
        R"({"openai_batch":{"metadata":{"k":"v"},"model":"gpt-4o-mini",)"
        R"("params":{"max_tokens":256,"seed":3,"stop":["\n\n"],"temperature":0.7}}})");
  REQUIRE(p.batch);
  CHECK(p.batch->model == "gpt-4o-mini");
  CHECK(p.batch->not_kept == std::vector<std::string>{"frequency_penalty", "response_format"});
  CHECK(p.batch->kept.size() == 4);

  auto err = [](const std::string& l) { return ParseBatchRequestLine(l).error; };
  CHECK(err(R"({"custom_id":"a","body":{"messages":[{"role":"user","content":""}]}})").field ==
        "body.messages[0].content");
  CHECK(err(R"({"custom_id":"a","body":{"model":"m"}})").field == "body.messages");
  CHECK(err(R"({"custom_id":"a","url":"/v1/embeddings","body":{"messages":[]}})").reason ==
        LineErrorReason::kUnsupportedRequest);
  CHECK(err(R"({"custom_id":"a","body":{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}})").field ==
        "body.temperature");
  CHECK(err(R"({"custom_id":"","body":{}})").field == "custom_id");
  CHECK(err(R"({"custom_id":"a","body":{},"extra":1})").reason == LineErrorReason::kUnknownField);
  CHECK(err(R"({"body":{"messages":[{"role":"user","content":"x"}]}})").field == "custom_id");
}

TEST_CASE("Importer reads an OpenAI batch file, reports fields not kept and models", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/batch.jsonl";
  test::WriteFile(file,
                  R"({"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":"one"}],"temperature":0.2,"logit_bias":{}}})"
                  "\n"
                  R"({"custom_id":"r2","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":"two"}],"temperature":0.2}})"
                  "\n"
                  R"({"id":"plain","prompt":"three"})"
                  "\n"
                  R"({"custom_id":"r1","body":{"model":"gpt-4o","messages":[{"role":"user","content":"other"}]}})"
                  "\n");
  auto store = OpenStore(dir.path() + "/c.db");
  test::CaptureLogSink log;
  ImportOptions opts;
  opts.set = "s";
  auto sum = ImportPromptFile(*store, opts, file, &log);
  REQUIRE(sum.ok());
  CHECK(sum->imported == 2);
  CHECK(sum->rejected == 2);
  CHECK(sum->rejected_by_reason == std::map<std::string, std::int64_t>{{"id_conflict", 1}, {"missing_content", 1}});
  CHECK(sum->batch_requests == 3);
  CHECK(sum->batch_models == std::map<std::string, std::int64_t>{{"gpt-4o", 3}});
  CHECK(sum->params_not_kept == std::map<std::string, std::int64_t>{{"logit_bias", 1}});
  const std::string text = log.Text();
  CHECK_THAT(text, Catch::Contains(file + ":1: body.logit_bias: not kept"));
  CHECK_THAT(text, Catch::Contains(file + ":3: custom_id: is required"));
  CHECK_THAT(text, Catch::Contains("body.model 'gpt-4o' on 3 requests: kept as metadata"));
  CHECK_THAT(text, Catch::Contains("temperature differs between requests (0.2; set on 2 of 3)"));
  CHECK(Column(dir.path() + "/c.db", "metadata", "r2") ==
        R"({"openai_batch":{"model":"gpt-4o","params":{"temperature":0.2}}})");
  CHECK_THAT(sum->ToJson("s"), Catch::Contains(R"("batch_requests":3,"batch_models":{"gpt-4o":3},)"
                                               R"("params_not_kept":{"logit_bias":1})"));
}

TEST_CASE("Importer reads CSV through a template, a missing column names file, line and field", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/data.csv";
  test::WriteFile(file,
                  "\xEF\xBB\xBFid,question,answer\r\n"
                  "q1,\"What is 2+2, really?\",4\r\n"
                  "q2,\"Quote \"\"this\"\"\nand a new line\",x\r\n"
                  "q3,\"stray\"quote,1\r\n"
                  "q4,short\r\n"
                  "q1,\"What is 2+2, really?\",4\r\n");
  auto store = OpenStore(dir.path() + "/c.db");
  test::CaptureLogSink log;
  ImportOptions opts;
  opts.set = "s";
  opts.template_text = "Solve: {question}";
  opts.id_field = "id";
  auto sum = ImportPromptFile(*store, opts, file, &log);
  REQUIRE(sum.ok());
  CHECK(sum->imported == 2);
  CHECK(sum->duplicates == 1);
  CHECK(sum->rejected == 2);
  const std::string text = log.Text();
  CHECK_THAT(text, Catch::Contains(file + ":5: line: text after the closing quote of field 2 (invalid_csv)"));
  CHECK_THAT(text, Catch::Contains(file + ":6: line: the record has 2 fields, the header 3 (invalid_csv)"));
  const std::string db = dir.path() + "/c.db";
  CHECK(Column(db, "messages", "q1") == R"([{"content":"Solve: What is 2+2, really?","role":"user"}])");
  CHECK(Column(db, "messages", "q2") == R"([{"content":"Solve: Quote \"this\"\nand a new line","role":"user"}])");
  CHECK(Column(db, "metadata", "q2") == R"({"answer":"x"})");
  CHECK(Column(db, "source", "q2") == file + ":3");

  // A template naming a column the file lacks: each row is rejected, earlier imports stay.
  const std::string other = dir.path() + "/more.csv";
  test::WriteFile(other, "id,text\nz1,hello\n");
  auto miss = ImportPromptFile(*store, opts, other, &log);
  REQUIRE(miss.ok());
  CHECK(miss->rejected_by_reason == std::map<std::string, std::int64_t>{{"missing_column", 1}});
  CHECK_THAT(log.Text(), Catch::Contains(other + ":2: question: column missing (template 'Solve: {question}')"));
  CHECK(Column(db, "messages", "q1") != "<missing>");

  const std::string dup = dir.path() + "/dup.csv";
  test::WriteFile(dup, "a,a\n1,2\n");
  auto bad = ImportPromptFile(*store, opts, dup, &log);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == dup + ":1: header: column name 'a' appears twice");

  ImportOptions no_template;
  no_template.set = "s";
  auto refused = ImportPromptFile(*store, no_template, other, &log);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("a CSV file needs --template"));
}

TEST_CASE("ImportOptions checks the template flags", "[prompts]") {
  ImportOptions o;
  o.set = "s";
  o.id_field = "id";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--id-field: needs --template"));
  o.template_text = "{a";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--template: unmatched '{'"));
  o.template_text = "{a}";
  CHECK(o.Validate().ok());
  o.text = true;
  CHECK_THAT(o.Validate().message(), Catch::Contains("not with --text"));
}
