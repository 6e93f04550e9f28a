#include <catch2/catch.hpp>

#include "export/answer_check.h"

using namespace retort;

namespace {
struct Case {
  const char* response;
  const char* reference;
  Verdict want;
};
}  // namespace

TEST_CASE("VerifyMath: real-world answer formats", "[export][verify]") {
  const Case cases[] = {
      {"So the total is \\boxed{42}.", "42", Verdict::kVerified},
      {"First \\boxed{3}, then correcting: \\boxed{5}", "5", Verdict::kVerified},  // last box wins
      {"First \\boxed{3}, then correcting: \\boxed{5}", "3", Verdict::kWrongAnswer},
      {"$\\boxed{\\frac{1}{2}}$", "0.5", Verdict::kVerified},                       // nested braces, fraction
      {"\\boxed{\\dfrac{3}{4}}", "3/4", Verdict::kVerified},
      {"\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", Verdict::kVerified},  // braces two deep
      {"\\boxed{\\frac12}", "1/2", Verdict::kVerified},
      {"\\boxed{-7}", "-7", Verdict::kVerified},                                  // negative
      {"\\boxed{-7}", "7", Verdict::kWrongAnswer},
      {"\\boxed{3.50}", "3.5", Verdict::kVerified},                              // decimal, trailing zero
      {"\\boxed{18.0}", "18", Verdict::kVerified},                               // trailing .0
      {"\\boxed{\\$1,000}", "1000", Verdict::kVerified},                          // $ and thousands separator
      {"The answer is $1,234,567$.", "1234567", Verdict::kVerified},
      {"\\boxed{12 \\text{ cm}}", "12", Verdict::kVerified},                      // units
      {"\\boxed{12\\text{ cm}^2}", "12", Verdict::kVerified},
      {"It weighs 5 kg in total, so the answer is 5 kg", "5", Verdict::kVerified},
      {"The answer is 42.", "42", Verdict::kVerified},
      {"The answer is 42. Hope that helps!", "42", Verdict::kVerified},
      {"**Final Answer:** 17", "17", Verdict::kVerified},
      {"answer: x = 9", "9", Verdict::kVerified},
      {"Adding 3 and 4 we get 7", "7", Verdict::kVerified},                       // last number
      {"3 apples plus 4 apples make 8 apples", "7", Verdict::kWrongAnswer},
      {"We need -2.5 degrees", "-5/2", Verdict::kVerified},
      {"I don't know.", "4", Verdict::kNoAnswer},
      {"", "4", Verdict::kNoAnswer},
      {"\\boxed{}", "4", Verdict::kNoAnswer},
      {"\\boxed{x^2+1}", "x^2 + 1", Verdict::kVerified},                          // non-numeric, whitespace
      {"\\boxed{(1,2)}", "(1, 2)", Verdict::kVerified},                           // tuple, not thousands
      {"\\boxed{1,2}", "12", Verdict::kWrongAnswer},
      {"\\boxed{2/3}", "0.6667", Verdict::kWrongAnswer},                          // no loose rounding
      {"\\boxed{50\\%}", "50%", Verdict::kVerified},
      {"\\boxed{6}, or is it \\boxed{4", "6", Verdict::kVerified},  // unbalanced: the one before
  };
  for (const Case& c : cases) {
    INFO("response: " << c.response << "  reference: " << c.reference);
    CHECK(VerdictName(VerifyMath(c.response, c.reference)) == std::string(VerdictName(c.want)));
  }
}

TEST_CASE("ExtractMathAnswer prefers boxed, then 'answer is', then the last number", "[export][verify]") {
  CHECK(ExtractMathAnswer("The answer is 3 but \\boxed{4}") == "4");
  CHECK(ExtractMathAnswer("1 2 3. The answer is 9, clearly") == "9, clearly");
  CHECK(ExtractMathAnswer("values 10 and 20") == "20");
  CHECK(ExtractMathAnswer("total 1,250 items") == "1,250");
  CHECK(ExtractMathAnswer("no digits here") == std::nullopt);
  CHECK(NormalizeMathAnswer(" \\left( 1, 2 \\right) ") == "(1,2)");
  CHECK(NormalizeMathAnswer("$\\frac{a+1}{b}$") == "(a+1)/b");
  CHECK(NormalizeMathAnswer("-0.0") == "0");
}

TEST_CASE("VerifyExact compares whitespace-normalised text", "[export][verify]") {
  CHECK(VerifyExact("  Paris \n", "Paris") == Verdict::kVerified);
  CHECK(VerifyExact("New   York", "New York") == Verdict::kVerified);
  CHECK(VerifyExact("paris", "Paris") == Verdict::kWrongAnswer);
}
