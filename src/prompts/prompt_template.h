// PromptTemplate: --template / --system-template / --id-field turn a JSONL object or CSV row into a Prompt.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "prompts/prompt_line_parser.h"
#include "retort/status.h"

namespace retort {

// A parsed template: literal text with {field} placeholders; "{{" and "}}" are literal braces.
class PromptTemplate {
 public:
  // InvalidArgument naming `flag` for an unmatched '{' or '}', an empty "{}" or a field name
  // containing a brace.
  static Result<PromptTemplate> Parse(std::string_view text, const std::string& flag);

  const std::string& text() const { return text_; }
  // The field names referenced, in order of first appearance, without duplicates.
  const std::vector<std::string>& fields() const { return fields_; }

  // Renders with `value(name)` for each placeholder (`value` returns a string). REQUIRES: every
  // field has a value. False when the text would exceed max_bytes (a template may repeat a
  // large column); *out is then incomplete.
  template <typename Lookup>
  bool Render(Lookup value, size_t max_bytes, std::string* out) const {
    out->clear();
    for (const Part& p : parts_) {
      const std::string& piece = p.field ? value(p.text) : p.text;
      if (piece.size() > max_bytes - out->size()) return false;
      out->append(piece);
    }
    return true;
  }

 private:
  struct Part {
    bool field = false;
    std::string text;  // literal text, or the field name
  };
  std::string text_;
  std::vector<Part> parts_;
  std::vector<std::string> fields_;
};

// Everything that maps a row to a prompt. The user template is required; the system template
// and the id field are optional (empty).
struct RowTemplate {
  PromptTemplate user;
  std::string system_text;           // "" = no system message
  PromptTemplate system;             // parsed system_text
  std::string id_field;              // "" = key from the content hash
};

// Builds a RowTemplate from the flags. InvalidArgument naming the flag.
Result<RowTemplate> MakeRowTemplate(const std::string& user, const std::string& system, const std::string& id_field);

// Rendered prompt and system texts are bounded by this many bytes each (kLineTooLong beyond).
inline constexpr size_t kMaxRenderedBytes = 16 << 20;

// One JSONL line (a JSON object) through the templates: placeholders take the value of the
// object's top-level key — a string as it is, any other JSON value as its JSON text. The id
// field must be a non-empty string or a number. Every key not used by a template or as the id
// is kept as the prompt's metadata (absent when none is left). A referenced key the object
// lacks is kMissingColumn, naming the key and the template. Rendered text must not be empty.
// Pure function; thread-safe.
ParsedLine ParseTemplateJsonLine(const RowTemplate& t, std::string_view line);

// One CSV record (fields, with the header's column names) through the templates, as above;
// every value is a string. A record with another number of fields than the header is
// kInvalidCsv. REQUIRES: header names are unique.
ParsedLine ParseTemplateCsvRecord(const RowTemplate& t, const std::vector<std::string>& header,
                                  const std::vector<std::string>& fields);

}  // namespace retort
