// Unit: EscapeLogField — a logged field can never start a line of its own (issue #12, item 9).
#include <catch2/catch.hpp>

#include "retort/log.h"

using namespace retort;

TEST_CASE("Issue 12: EscapeLogField escapes every control character and the backslash", "[core][security]") {
  CHECK(EscapeLogField("GET /v1/runs/r -> 200") == "GET /v1/runs/r -> 200");
  CHECK(EscapeLogField("x\nretort: error: forged") == "x\\nretort: error: forged");
  CHECK(EscapeLogField("a\rb\tc") == "a\\rb\\tc");
  CHECK(EscapeLogField(std::string("nul\0end", 7)) == "nul\\x00end");
  CHECK(EscapeLogField("\x1b[31mred\x7f") == "\\x1b[31mred\\x7f");
  CHECK(EscapeLogField("back\\slash") == "back\\\\slash");
  // C1 controls (U+0085 NEL, U+009B CSI) in UTF-8; other non-ASCII text is kept.
  CHECK(EscapeLogField("a\xC2\x85" "b\xC2\x9B" "c") == "a\\u0085b\\u009bc");
  CHECK(EscapeLogField("caf\xC3\xA9 \xE2\x80\xA8") == "caf\xC3\xA9 \xE2\x80\xA8");
  CHECK(EscapeLogField("\xC2") == "\xC2");
  // Nothing escaped contains a raw control byte.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (char c : EscapeLogField(all)) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
}
