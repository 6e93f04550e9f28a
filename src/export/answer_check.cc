// AnswerCheck implementation: answer extraction, normalisation and numeric comparison.
#include "export/answer_check.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace retort {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kVerified: return "verified";
    case Verdict::kNoReference: return "no_reference";
    case Verdict::kNoAnswer: return "no_answer";
    case Verdict::kWrongAnswer: return "wrong_answer";
    case Verdict::kCommandFailed: return "command_failed";
    case Verdict::kTimedOut: return "timed_out";
    case Verdict::kNotJson: return "not_json";
    case Verdict::kSchemaViolation: return "schema_violation";
  }
  return "wrong_answer";
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The balanced {...} group starting at s[open] == '{': its contents, or nullopt when unbalanced.
// *end is set past the closing brace.
std::optional<std::string_view> BraceGroup(std::string_view s, size_t open, size_t* end) {
  if (open >= s.size() || s[open] != '{') return std::nullopt;
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {  // \{ and \} do not count
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) {
      *end = i + 1;
      return s.substr(open + 1, i - open - 1);
    }
  }
  return std::nullopt;
}

std::optional<std::string> LastBoxed(std::string_view text) {
  size_t best = std::string_view::npos, best_len = 0;
  for (const std::string_view cmd : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t p = text.rfind(cmd);
    if (p != std::string_view::npos && (best == std::string_view::npos || p > best)) {
      best = p;
      best_len = cmd.size();
    }
  }
  // Try the last occurrence first; an unbalanced one falls back to the one before it.
  while (best != std::string_view::npos) {
    size_t i = best + best_len;
    while (i < text.size() && IsSpace(text[i]) && text[i] != '\n') ++i;
    size_t end = 0;
    if (i < text.size() && text[i] == '{') {
      if (std::optional<std::string_view> g = BraceGroup(text, i, &end)) return std::string(Trim(*g));
    } else if (i > best + best_len && i < text.size()) {  // "\boxed 5": the next word
      size_t j = i;
      while (j < text.size() && !IsSpace(text[j]) && text[j] != '$') ++j;
      if (j > i) return std::string(text.substr(i, j - i));
    }
    if (best == 0) break;
    const size_t b1 = text.rfind("\\boxed", best - 1), b2 = text.rfind("\\fbox", best - 1);
    best = b1 == std::string_view::npos ? b2 : b2 == std::string_view::npos ? b1 : std::max(b1, b2);
    best_len = best == b1 ? 6 : 5;
  }
  return std::nullopt;
}

std::optional<std::string> AnswerIsPattern(std::string_view text) {
  const std::string low = Lower(text);
  size_t best = std::string::npos, skip = 0;
  for (const std::string_view pat : {std::string_view("answer is"), std::string_view("answer:")}) {
    size_t p = low.rfind(pat);
    if (p != std::string::npos && (best == std::string::npos || p > best)) {
      best = p;
      skip = pat.size();
    }
  }
  if (best == std::string::npos) return std::nullopt;
  size_t i = best + skip;
  size_t eol = text.find('\n', i);
  std::string_view rest = text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
  auto strip = [](std::string_view s) {
    for (bool changed = true; changed;) {
      changed = false;
      s = Trim(s);
      while (!s.empty() && (s.front() == '*' || s.front() == ':')) s.remove_prefix(1), changed = true;
      while (!s.empty() && (s.back() == '*' || s.back() == '.' || s.back() == '!')) s.remove_suffix(1), changed = true;
    }
    return s;
  };
  rest = strip(rest);
  // A sentence after the answer ("42. So we are done") is not part of it.
  if (size_t p = rest.find(". "); p != std::string_view::npos) rest = strip(rest.substr(0, p));
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

// Length of the number starting at s[i] (-?digits with thousands commas, optional .digits,
// optional /digits), or 0.
size_t NumberAt(std::string_view s, size_t i) {
  size_t j = i;
  if (j < s.size() && s[j] == '-') ++j;
  const size_t digits_start = j;
  while (j < s.size()) {
    if (IsDigit(s[j])) {
      ++j;
    } else if (s[j] == ',' && j > digits_start && j + 3 < s.size() && IsDigit(s[j + 1]) && IsDigit(s[j + 2]) && IsDigit(s[j + 3]) &&
               (j + 4 >= s.size() || !IsDigit(s[j + 4]))) {
      j += 4;
    } else {
      break;
    }
  }
  if (j == digits_start) return 0;
  if (j + 1 < s.size() && s[j] == '.' && IsDigit(s[j + 1])) {
    ++j;
    while (j < s.size() && IsDigit(s[j])) ++j;
  }
  if (j + 1 < s.size() && s[j] == '/' && IsDigit(s[j + 1])) {
    ++j;
    while (j < s.size() && IsDigit(s[j])) ++j;
  }
  return j - i;
}

std::optional<std::string> LastNumber(std::string_view text) {
  std::optional<std::string> last;
  size_t i = 0;
  while (i < text.size()) {
    const bool starts = IsDigit(text[i]) || (text[i] == '-' && i + 1 < text.size() && IsDigit(text[i + 1]));
    const bool inside_word = i > 0 && (IsDigit(text[i - 1]) || IsAlpha(text[i - 1]) || text[i - 1] == '.');
    if (starts && !inside_word) {
      const size_t n = NumberAt(text, i);
      if (n > 0) {
        last = std::string(text.substr(i, n));
        i += n;
        continue;
      }
    }
    ++i;
  }
  return last;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

// `\frac{a}{b}` -> `(a)/(b)`, shortened to `a/b` when both are plain; `\frac12` -> `1/2`.
std::string RewriteFracs(std::string s) {
  for (size_t guard = 0; guard < 64; ++guard) {
    const size_t p = s.find("\\frac");
    if (p == std::string::npos) break;
    size_t i = p + 5, e1 = 0, e2 = 0;
    std::string a, b;
    if (i < s.size() && s[i] == '{') {
      std::optional<std::string_view> g = BraceGroup(s, i, &e1);
      if (!g) break;
      a = std::string(*g);
    } else if (i < s.size()) {
      a = std::string(1, s[i]);
      e1 = i + 1;
    } else {
      break;
    }
    if (e1 < s.size() && s[e1] == '{') {
      std::optional<std::string_view> g = BraceGroup(s, e1, &e2);
      if (!g) break;
      b = std::string(*g);
    } else if (e1 < s.size()) {
      b = std::string(1, s[e1]);
      e2 = e1 + 1;
    } else {
      break;
    }
    auto plain = [](const std::string& x) {
      size_t k = 0;
      if (k < x.size() && x[k] == '-') ++k;
      if (k == x.size()) return false;
      for (; k < x.size(); ++k)
        if (!IsDigit(x[k]) && x[k] != '.' && !IsAlpha(x[k])) return false;
      return true;
    };
    const std::string fa = plain(a) ? a : "(" + a + ")", fb = plain(b) ? b : "(" + b + ")";
    s.replace(p, e2 - p, fa + "/" + fb);
  }
  return s;
}

// `\text{cm}` -> `cm` (and \mathrm, \textbf, \mbox).
std::string UnwrapText(std::string s) {
  for (const std::string_view cmd : {std::string_view("\\text"), std::string_view("\\mathrm"),
                                     std::string_view("\\textbf"), std::string_view("\\mbox")}) {
    for (size_t guard = 0; guard < 64; ++guard) {
      size_t p = s.find(cmd);
      if (p == std::string::npos) break;
      size_t end = 0;
      std::optional<std::string_view> g = BraceGroup(s, p + cmd.size(), &end);
      if (!g) break;
      s.replace(p, end - p, std::string(*g));
    }
  }
  return s;
}

// Value of a number with an optional unit after it: "1000", "-2.50", "3/4", "12cm". nullopt
// when `s` is not of that shape. `s` is normalised (no spaces, no thousands separators).
std::optional<double> NumericValue(std::string_view s) {
  const size_t n = NumberAt(s, 0);
  if (n == 0) return std::nullopt;
  std::string_view num = s.substr(0, n), unit = s.substr(n);
  for (char c : unit)  // a unit is letters (and ^2, °, %): no digits after the number otherwise
    if (!(IsAlpha(c) || c == '%' || c == '^' || c == '2' || c == '3' || static_cast<unsigned char>(c) >= 0x80))
      return std::nullopt;
  if (!unit.empty() && !(IsAlpha(unit[0]) || unit[0] == '%' || static_cast<unsigned char>(unit[0]) >= 0x80))
    return std::nullopt;
  std::string digits;
  for (char c : num)
    if (c != ',') digits += c;
  const size_t slash = digits.find('/');
  const double a = std::strtod(digits.substr(0, slash).c_str(), nullptr);
  if (slash == std::string::npos) return a;
  const double b = std::strtod(digits.substr(slash + 1).c_str(), nullptr);
  if (b == 0) return std::nullopt;
  return a / b;
}

}  // namespace

std::optional<std::string> ExtractMathAnswer(std::string_view text) {
  if (std::optional<std::string> b = LastBoxed(text)) return b;
  if (std::optional<std::string> a = AnswerIsPattern(text)) return a;
  return LastNumber(text);
}

std::string NormalizeMathAnswer(std::string_view in) {
  std::string s(Trim(in));
  for (const std::string_view d : {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\displaystyle"})
    ReplaceAll(s, d, "");
  ReplaceAll(s, "\\dfrac", "\\frac");
  ReplaceAll(s, "\\tfrac", "\\frac");
  ReplaceAll(s, "\\(", "");
  ReplaceAll(s, "\\)", "");
  ReplaceAll(s, "\\[", "");
  ReplaceAll(s, "\\]", "");
  ReplaceAll(s, "\\$", "");
  ReplaceAll(s, "\\%", "%");
  ReplaceAll(s, "^\\circ", "°");
  ReplaceAll(s, "^{\\circ}", "°");
  s = UnwrapText(std::move(s));
  std::string t;
  for (char c : s)
    if (!IsSpace(c) && c != '$') t += c;
  s = RewriteFracs(std::move(t));
  while (!s.empty() && s.back() == '.') s.pop_back();
  // "x=5" -> "5" (one variable name before a single '=').
  if (size_t eq = s.find('='); eq != std::string::npos && s.find('=', eq + 1) == std::string::npos && eq > 0) {
    bool name = true;
    for (size_t k = 0; k < eq; ++k) name = name && (IsAlpha(s[k]) || (k > 0 && (IsDigit(s[k]) || s[k] == '_')));
    if (name) s = s.substr(eq + 1);
  }
  // Thousands separators: "1,234,567" -> "1234567".
  std::string u;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',' && i > 0 && IsDigit(s[i - 1]) && i + 3 < s.size() && IsDigit(s[i + 1]) &&
        IsDigit(s[i + 2]) && IsDigit(s[i + 3]) && (i + 4 >= s.size() || !IsDigit(s[i + 4])))
      continue;
    u += s[i];
  }
  s = std::move(u);
  // "42.000" -> "42", "2.50" -> "2.5" (only when the whole answer is a decimal number).
  const size_t n = NumberAt(s, 0);
  if (n == s.size() && s.find('.') != std::string::npos && s.find('/') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    if (s == "-0") s = "0";
  }
  return s;
}

bool MathAnswersEqual(std::string_view answer, std::string_view reference) {
  const std::string a = NormalizeMathAnswer(answer), r = NormalizeMathAnswer(reference);
  if (a.empty() || r.empty()) return false;
  if (a == r) return true;
  const std::optional<double> x = NumericValue(a), y = NumericValue(r);
  if (!x || !y) return false;
  return std::fabs(*x - *y) <= 1e-9 * std::max(1.0, std::max(std::fabs(*x), std::fabs(*y)));
}

Verdict VerifyMath(std::string_view response, std::string_view reference) {
  const std::optional<std::string> ans = ExtractMathAnswer(response);
  if (!ans || NormalizeMathAnswer(*ans).empty()) return Verdict::kNoAnswer;
  return MathAnswersEqual(*ans, reference) ? Verdict::kVerified : Verdict::kWrongAnswer;
}

Verdict VerifyExact(std::string_view response, std::string_view reference) {
  auto collapse = [](std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : Trim(s)) {
      if (IsSpace(c)) {
        space = true;
        continue;
      }
      if (space) out += ' ';
      space = false;
      out += c;
    }
    return out;
  };
  return collapse(response) == collapse(reference) ? Verdict::kVerified : Verdict::kWrongAnswer;
}

}  // namespace retort
