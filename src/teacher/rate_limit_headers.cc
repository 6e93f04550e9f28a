// Parsing of provider rate-limit and retry headers: durations, RFC 3339, HTTP-dates.
#include "teacher/rate_limit_headers.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace retort {
namespace {

constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kMaxDelayNs = kMaxHeaderDelayMs * kNsPerMs;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Nanoseconds per unit of a Go duration unit, or 0 when unknown.
std::int64_t UnitNs(std::string_view u) {
  if (u == "h") return 3'600'000'000'000LL;
  if (u == "m") return 60'000'000'000LL;
  if (u == "s") return 1'000'000'000LL;
  if (u == "ms") return 1'000'000LL;
  if (u == "us" || u == "\xC2\xB5s" || u == "\xCE\xBCs") return 1'000LL;
  if (u == "ns") return 1LL;
  return 0;
}

// Strict non-negative decimal integer: digits only, no sign, no overflow.
std::optional<std::int64_t> ParseNonNegInt(std::string_view s) {
  s = TrimOws(s);
  if (s.empty() || !IsDigit(s.front())) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Strict non-negative finite float (digits, '.', exponent); no sign, no inf/nan.
std::optional<double> ParseNonNegFloat(std::string_view s) {
  s = TrimOws(s);
  if (s.empty() || !(IsDigit(s.front()) || s.front() == '.')) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

// Rounds a non-negative number of milliseconds up to whole ms; nullopt when absurd.
std::optional<Millis> CeilMs(double ms) {
  if (!(ms >= 0) || ms > static_cast<double>(kMaxHeaderDelayMs)) return std::nullopt;
  return static_cast<Millis>(std::ceil(ms));
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned DaysInMonth(std::int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at s[*pos], advancing. -1 on failure.
int Digits(std::string_view s, std::size_t* pos, std::size_t n) {
  if (*pos + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (!IsDigit(c)) return -1;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  return v;
}

bool Expect(std::string_view s, std::size_t* pos, std::string_view lit) {
  if (s.substr(*pos, lit.size()) != lit) return false;
  *pos += lit.size();
  return true;
}

// Validated civil time -> Unix ms. nullopt when a field is out of range.
std::optional<Millis> CivilToMs(std::int64_t y, int mo, int d, int h, int mi, int sec) {
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  if (d > static_cast<int>(DaysInMonth(y, static_cast<unsigned>(mo)))) return std::nullopt;
  std::int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi) * 60'000LL + sec * 1000LL;
}

int MonthIndex(std::string_view m) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (m == kMonths[i]) return i + 1;
  return 0;
}

bool IsShortDay(std::string_view d) {
  for (const char* n : {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
    if (d == n) return true;
  return false;
}

bool IsLongDay(std::string_view d) {
  for (const char* n : {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"})
    if (d == n) return true;
  return false;
}

// "HH:MM:SS" at s[*pos].
bool TimeOfDay(std::string_view s, std::size_t* pos, int* h, int* mi, int* sec) {
  *h = Digits(s, pos, 2);
  if (*h < 0 || !Expect(s, pos, ":")) return false;
  *mi = Digits(s, pos, 2);
  if (*mi < 0 || !Expect(s, pos, ":")) return false;
  *sec = Digits(s, pos, 2);
  return *sec >= 0;
}

// Parses a limit (> 0) or remaining (>= 0) header into `out` when valid.
void ReadCount(const HeaderList& h, std::string_view name, bool is_limit, std::optional<std::int64_t>* out) {
  const std::string* v = FindHeader(h, name);
  if (v == nullptr) return;
  std::optional<std::int64_t> n = ParseNonNegInt(*v);
  if (!n || (is_limit && *n == 0)) return;
  *out = n;
}

void ReadDuration(const HeaderList& h, std::string_view name, std::optional<Millis>* out) {
  const std::string* v = FindHeader(h, name);
  if (v != nullptr) *out = ParseDurationMs(*v);
}

void ReadInstant(const HeaderList& h, std::string_view name, Millis now, std::optional<Millis>* out) {
  const std::string* v = FindHeader(h, name);
  if (v == nullptr) return;
  std::optional<Millis> t = ParseRfc3339Ms(TrimOws(*v));
  if (!t) return;
  Millis delta = *t > now ? *t - now : 0;
  if (delta > kMaxHeaderDelayMs) return;
  *out = delta;
}

}  // namespace

bool RateLimitSnapshot::any() const {
  return limit_requests || remaining_requests || reset_requests_ms || limit_tokens || remaining_tokens ||
         reset_tokens_ms || limit_input_tokens || remaining_input_tokens || reset_input_tokens_ms ||
         limit_output_tokens || remaining_output_tokens || reset_output_tokens_ms;
}

const std::string* FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::optional<Millis> ParseDurationMs(std::string_view s) {
  s = TrimOws(s);
  if (s.empty()) return std::nullopt;
  unsigned __int128 total_ns = 0;
  std::size_t pos = 0;
  bool first = true;
  while (pos < s.size()) {
    std::size_t int_begin = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    std::string_view int_digits = s.substr(int_begin, pos - int_begin);
    std::string_view frac_digits;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t frac_begin = ++pos;
      while (pos < s.size() && IsDigit(s[pos])) ++pos;
      frac_digits = s.substr(frac_begin, pos - frac_begin);
    }
    if (int_digits.empty() && frac_digits.empty()) return std::nullopt;  // sign, junk, "."
    std::size_t unit_begin = pos;
    while (pos < s.size() && !IsDigit(s[pos]) && s[pos] != '.') ++pos;
    std::string_view unit = s.substr(unit_begin, pos - unit_begin);
    std::int64_t unit_ns = 0;
    if (unit.empty()) {
      if (!first || pos != s.size()) return std::nullopt;  // only a lone bare number is seconds
      unit_ns = 1'000'000'000LL;
    } else {
      unit_ns = UnitNs(unit);
      if (unit_ns == 0) return std::nullopt;
    }
    // Integer part: any value beyond the cap is absurd, so cap digits early.
    unsigned __int128 int_val = 0;
    for (char c : int_digits) {
      int_val = int_val * 10 + static_cast<unsigned>(c - '0');
      if (int_val * static_cast<unsigned __int128>(unit_ns) > static_cast<unsigned __int128>(kMaxDelayNs))
        return std::nullopt;
    }
    total_ns += int_val * static_cast<unsigned __int128>(unit_ns);
    // Fraction: first 18 digits exactly (rounded up), any non-zero remainder adds 1 ns.
    unsigned __int128 frac_val = 0, scale = 1;
    bool extra = false;
    for (std::size_t i = 0; i < frac_digits.size(); ++i) {
      if (i < 18) {
        frac_val = frac_val * 10 + static_cast<unsigned>(frac_digits[i] - '0');
        scale *= 10;
      } else if (frac_digits[i] != '0') {
        extra = true;
      }
    }
    unsigned __int128 num = frac_val * static_cast<unsigned __int128>(unit_ns);
    total_ns += (num + scale - 1) / scale + (extra ? 1 : 0);
    if (total_ns > static_cast<unsigned __int128>(kMaxDelayNs)) return std::nullopt;
    first = false;
  }
  return static_cast<Millis>((total_ns + kNsPerMs - 1) / kNsPerMs);
}

std::optional<Millis> ParseRfc3339Ms(std::string_view s) {
  std::size_t pos = 0;
  int y = Digits(s, &pos, 4);
  if (y < 0 || !Expect(s, &pos, "-")) return std::nullopt;
  int mo = Digits(s, &pos, 2);
  if (mo < 0 || !Expect(s, &pos, "-")) return std::nullopt;
  int d = Digits(s, &pos, 2);
  if (d < 0 || pos >= s.size()) return std::nullopt;
  char sep = s[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  int h = 0, mi = 0, sec = 0;
  if (!TimeOfDay(s, &pos, &h, &mi, &sec)) return std::nullopt;
  int frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t begin = pos;
    while (pos < s.size() && IsDigit(s[pos])) {
      if (pos - begin < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++pos;
    }
    std::size_t n = pos - begin;
    if (n == 0) return std::nullopt;
    for (std::size_t i = n; i < 3; ++i) frac_ms *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  std::int64_t offset_min = 0;
  char z = s[pos++];
  if (z == 'Z' || z == 'z') {
    // UTC
  } else if (z == '+' || z == '-') {
    int oh = Digits(s, &pos, 2);
    if (oh < 0 || oh > 23 || !Expect(s, &pos, ":")) return std::nullopt;
    int om = Digits(s, &pos, 2);
    if (om < 0 || om > 59) return std::nullopt;
    offset_min = (z == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::optional<Millis> base = CivilToMs(y, mo, d, h, mi, sec);
  if (!base) return std::nullopt;
  return *base + frac_ms - offset_min * 60'000;
}

std::optional<Millis> ParseHttpDateMs(std::string_view s) {
  s = TrimOws(s);
  std::size_t comma = s.find(',');
  int h = 0, mi = 0, sec = 0;
  if (comma == 3 && IsShortDay(s.substr(0, 3))) {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    std::size_t pos = 4;
    if (!Expect(s, &pos, " ")) return std::nullopt;
    int d = Digits(s, &pos, 2);
    if (d < 0 || !Expect(s, &pos, " ")) return std::nullopt;
    int mo = MonthIndex(s.substr(pos, 3));
    pos += 3;
    if (mo == 0 || !Expect(s, &pos, " ")) return std::nullopt;
    int y = Digits(s, &pos, 4);
    if (y < 0 || !Expect(s, &pos, " ") || !TimeOfDay(s, &pos, &h, &mi, &sec)) return std::nullopt;
    if (!Expect(s, &pos, " GMT") || pos != s.size()) return std::nullopt;
    return CivilToMs(y, mo, d, h, mi, sec);
  }
  if (comma != std::string_view::npos && IsLongDay(s.substr(0, comma))) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    std::size_t pos = comma + 1;
    if (!Expect(s, &pos, " ")) return std::nullopt;
    int d = Digits(s, &pos, 2);
    if (d < 0 || !Expect(s, &pos, "-")) return std::nullopt;
    int mo = MonthIndex(s.substr(pos, 3));
    pos += 3;
    if (mo == 0 || !Expect(s, &pos, "-")) return std::nullopt;
    int yy = Digits(s, &pos, 2);
    if (yy < 0 || !Expect(s, &pos, " ") || !TimeOfDay(s, &pos, &h, &mi, &sec)) return std::nullopt;
    if (!Expect(s, &pos, " GMT") || pos != s.size()) return std::nullopt;
    return CivilToMs(yy < 70 ? 2000 + yy : 1900 + yy, mo, d, h, mi, sec);
  }
  if (comma == std::string_view::npos && s.size() == 24 && IsShortDay(s.substr(0, 3))) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    std::size_t pos = 3;
    if (!Expect(s, &pos, " ")) return std::nullopt;
    int mo = MonthIndex(s.substr(pos, 3));
    pos += 3;
    if (mo == 0 || !Expect(s, &pos, " ")) return std::nullopt;
    int d = 0;
    if (s[pos] == ' ') {
      ++pos;
      d = Digits(s, &pos, 1);
    } else {
      d = Digits(s, &pos, 2);
    }
    if (d < 0 || !Expect(s, &pos, " ") || !TimeOfDay(s, &pos, &h, &mi, &sec)) return std::nullopt;
    if (!Expect(s, &pos, " ")) return std::nullopt;
    int y = Digits(s, &pos, 4);
    if (y < 0 || pos != s.size()) return std::nullopt;
    return CivilToMs(y, mo, d, h, mi, sec);
  }
  return std::nullopt;
}

std::optional<Millis> ParseRetryAfterMs(const HeaderList& headers, Millis wall_now_ms) {
  if (const std::string* v = FindHeader(headers, "retry-after-ms")) {
    if (std::optional<double> ms = ParseNonNegFloat(*v)) {
      if (std::optional<Millis> r = CeilMs(*ms)) return r;
    }
  }
  const std::string* v = FindHeader(headers, "retry-after");
  if (v == nullptr) return std::nullopt;
  if (std::optional<double> secs = ParseNonNegFloat(*v)) return CeilMs(*secs * 1000.0);
  if (std::optional<Millis> date = ParseHttpDateMs(*v)) {
    Millis delta = *date > wall_now_ms ? *date - wall_now_ms : 0;
    if (delta > kMaxHeaderDelayMs) return std::nullopt;
    return delta;
  }
  return std::nullopt;
}

RateLimitSnapshot ParseOpenAIRateLimitHeaders(const HeaderList& h) {
  RateLimitSnapshot s;
  ReadCount(h, "x-ratelimit-limit-requests", true, &s.limit_requests);
  ReadCount(h, "x-ratelimit-remaining-requests", false, &s.remaining_requests);
  ReadDuration(h, "x-ratelimit-reset-requests", &s.reset_requests_ms);
  ReadCount(h, "x-ratelimit-limit-tokens", true, &s.limit_tokens);
  ReadCount(h, "x-ratelimit-remaining-tokens", false, &s.remaining_tokens);
  ReadDuration(h, "x-ratelimit-reset-tokens", &s.reset_tokens_ms);
  return s;
}

RateLimitSnapshot ParseAnthropicRateLimitHeaders(const HeaderList& h, Millis now) {
  RateLimitSnapshot s;
  ReadCount(h, "anthropic-ratelimit-requests-limit", true, &s.limit_requests);
  ReadCount(h, "anthropic-ratelimit-requests-remaining", false, &s.remaining_requests);
  ReadInstant(h, "anthropic-ratelimit-requests-reset", now, &s.reset_requests_ms);
  ReadCount(h, "anthropic-ratelimit-tokens-limit", true, &s.limit_tokens);
  ReadCount(h, "anthropic-ratelimit-tokens-remaining", false, &s.remaining_tokens);
  ReadInstant(h, "anthropic-ratelimit-tokens-reset", now, &s.reset_tokens_ms);
  ReadCount(h, "anthropic-ratelimit-input-tokens-limit", true, &s.limit_input_tokens);
  ReadCount(h, "anthropic-ratelimit-input-tokens-remaining", false, &s.remaining_input_tokens);
  ReadInstant(h, "anthropic-ratelimit-input-tokens-reset", now, &s.reset_input_tokens_ms);
  ReadCount(h, "anthropic-ratelimit-output-tokens-limit", true, &s.limit_output_tokens);
  ReadCount(h, "anthropic-ratelimit-output-tokens-remaining", false, &s.remaining_output_tokens);
  ReadInstant(h, "anthropic-ratelimit-output-tokens-reset", now, &s.reset_output_tokens_ms);
  return s;
}

}  // namespace retort
