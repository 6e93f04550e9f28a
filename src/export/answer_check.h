// AnswerCheck: finds the final answer in a response and compares it with a reference (--verify math / exact).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace retort {

// Why a record is or is not verified. Names are frozen: they key the manifest's
// "verify.rejected" object and `retort status --verify`.
enum class Verdict {
  kVerified,
  kNoReference,      // "no_reference": the prompt has no reference answer (math, exact)
  kNoAnswer,         // "no_answer": no final answer found in the response (math)
  kWrongAnswer,      // "wrong_answer": the answer differs from the reference (math, exact)
  kCommandFailed,    // "command_failed": exec: exit status not 0, killed by a signal or not started
  kTimedOut,         // "timed_out": exec: still running at --verify-timeout (killed)
  kNotJson,          // "not_json": json-schema: the answer does not parse as JSON
  kSchemaViolation,  // "schema_violation": json-schema: valid JSON that the schema rejects
};
inline constexpr int kVerdictCount = 8;
const char* VerdictName(Verdict v);

// The final answer of a response, in this order of preference:
//   1. the argument of the last `\boxed{...}` or `\fbox{...}` (nested braces kept balanced;
//      `\boxed 5` without braces takes the next word);
//   2. the text after the last "answer is" / "answer:" (any case, e.g. "The final answer is
//      $42$.", "**Answer:** 7"), up to the end of that line, without a trailing period and
//      markdown `*`;
//   3. the last number in the text (`-1,234.5`, `3/4`).
// nullopt when there is none of these.
std::optional<std::string> ExtractMathAnswer(std::string_view text);

// Canonical text of a math answer: math delimiters ($, \( \), \[ \]), `\left`/`\right`,
// spacing commands, `\text{}`/`\mathrm{}` wrappers, whitespace, a trailing period, a leading
// "x =" and thousands separators are removed; `\dfrac`/`\tfrac`/`\frac{a}{b}` become `a/b`; a
// number loses trailing fractional zeros ("42.0" -> "42").
std::string NormalizeMathAnswer(std::string_view s);

// True when `answer` and `reference` are the same after NormalizeMathAnswer, or both are numbers
// (integers, decimals or simple fractions a/b, optionally followed by a unit such as "cm" or
// "dollars") of equal value (relative tolerance 1e-9): "0.5" == "\frac{1}{2}", "$1,000" == "1000".
bool MathAnswersEqual(std::string_view answer, std::string_view reference);

// --verify math on one response: kVerified, kNoAnswer or kWrongAnswer.
Verdict VerifyMath(std::string_view response, std::string_view reference);

// --verify exact: the whole response and the reference compared after trimming and collapsing
// every whitespace run to one space: kVerified or kWrongAnswer.
Verdict VerifyExact(std::string_view response, std::string_view reference);

}  // namespace retort
