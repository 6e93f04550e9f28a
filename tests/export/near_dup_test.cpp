// Tests of shingling, MinHash, LSH banding, the near-dup index (accuracy against exact Jaccard) and decontamination.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "export/decontaminate.h"
#include "export/near_dup.h"
#include "export/near_dup_filter.h"
#include "export/text_shingles.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {

std::vector<std::uint64_t> Words(const std::string& s) {
  std::vector<std::uint64_t> w;
  AppendWordHashes(s, &w);
  return w;
}

std::vector<std::uint64_t> Shingles(const std::string& s) {
  std::vector<std::uint64_t> sh;
  AppendNGramHashes(Words(s), kNearDupShingleWords, true, &sh);
  return sh;
}

double ExactJaccard(const std::vector<std::uint64_t>& a, const std::vector<std::uint64_t>& b) {
  std::set<std::uint64_t> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  size_t inter = 0;
  for (std::uint64_t x : sa) inter += sb.count(x);
  const size_t uni = sa.size() + sb.size() - inter;
  return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

// Deterministic generator (no std::random distributions: their output differs between libraries).
struct Rng {
  std::uint64_t s;
  std::uint64_t Next() { return Mix64(s += 0x9e3779b97f4a7c15ULL); }
  std::uint64_t Below(std::uint64_t n) { return Next() % n; }
};

// P(X >= k) for X ~ Binomial(n, p).
double BinomialTail(int n, double p, int k) {
  double sum = 0;
  for (int i = k; i <= n; ++i)
    sum += std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) + i * std::log(p) +
                    (n - i) * std::log1p(-p));
  return std::min(1.0, sum);
}

}  // namespace

TEST_CASE("AppendWordHashes lowercases ASCII and splits on whitespace and punctuation", "[export][near_dup]") {
  CHECK(Words("Hello, WORLD!") == Words("hello world"));
  CHECK(Words("  a-b\tc\n") .size() == 3);
  CHECK(Words("").empty());
  CHECK(Words("héllo wörld").size() == 2);       // UTF-8 bytes belong to words
  CHECK(Words("héllo") != Words("hello"));
  CHECK(Words("ab") != Words("ba"));
}

TEST_CASE("AppendNGramHashes gives one hash per window, or the whole text when short", "[export][near_dup]") {
  const auto w = Words("a b c d e");
  std::vector<std::uint64_t> g;
  AppendNGramHashes(w, 3, false, &g);
  CHECK(g.size() == 3);
  g.clear();
  AppendNGramHashes(Words("a b"), 3, false, &g);
  CHECK(g.empty());
  AppendNGramHashes(Words("a b"), 3, true, &g);
  CHECK(g.size() == 1);
  // Order matters inside an n-gram.
  std::vector<std::uint64_t> x, y;
  AppendNGramHashes(Words("a b c"), 3, false, &x);
  AppendNGramHashes(Words("c b a"), 3, false, &y);
  CHECK(x != y);
}

TEST_CASE("PromptText joins the message contents", "[export][near_dup]") {
  CHECK(PromptText(R"([{"content":"Be terse.","role":"system"},{"content":"2+2?","role":"user"}])") ==
        "Be terse.\n2+2?");
  CHECK(PromptText("not json").empty());
}

TEST_CASE("MinHash estimates Jaccard similarity within its standard error", "[export][near_dup]") {
  MinHasher h;
  MinHashSignature a, b, e;
  std::vector<std::uint64_t> sa, sb;
  for (std::uint64_t i = 0; i < 300; ++i) sa.push_back(Mix64(i));
  for (std::uint64_t i = 100; i < 400; ++i) sb.push_back(Mix64(i));  // J = 200 / 400 = 0.5
  h.Sign(sa, &a);
  h.Sign(sb, &b);
  CHECK(MinHasher::Similarity(a, a) == 1.0);
  // sd = sqrt(0.25 / 128) = 0.044: 4 sd.
  CHECK(std::fabs(MinHasher::Similarity(a, b) - 0.5) < 0.18);
  h.Sign({}, &e);
  CHECK(e[0] == 0xffffffffu);
  MinHashSignature a2;
  MinHasher().Sign(sa, &a2);  // fixed seeds: the same in every process
  CHECK(a2 == a);
}

TEST_CASE("LshParams derive bands and rows from the threshold", "[export][near_dup]") {
  // Below ~0.7 the 10-band cap (memory) leaves the curve flatter: P(0.6) = 0.91, P(0.25) = 0.15 for t = 0.5.
  for (double t : {0.7, 0.8, 0.9, 0.95, 1.0}) {
    const LshParams p = LshParams::ForThreshold(t);
    INFO("t=" << t << " b=" << p.bands << " r=" << p.rows);
    CHECK(p.bands >= 1);
    CHECK(p.bands <= kMaxLshBands);
    CHECK(p.bands * p.rows <= kMinHashPerms);
    // Pairs 0.1 above the threshold are nearly always compared; at half of it rarely.
    CHECK(p.CandidateProbability(std::min(1.0, t + 0.1)) >= 0.95);
    CHECK(p.CandidateProbability(t / 2) <= 0.05);
  }
  const LshParams p8 = LshParams::ForThreshold(0.8);
  std::printf("LSH for threshold 0.8: %d bands x %d rows; P(candidate) at 0.5: %.3f, 0.7: %.3f, 0.8: %.3f, 0.9: %.4f\n",
              p8.bands, p8.rows, p8.CandidateProbability(0.5), p8.CandidateProbability(0.7),
              p8.CandidateProbability(0.8), p8.CandidateProbability(0.9));
}

TEST_CASE("NearDupIndex keeps the first of near-duplicates and spills signatures to its file", "[export][near_dup]") {
  test::TempDir dir;
  auto idx = NearDupIndex::Create(0.8, dir.path(), 10);  // small: forces Grow() and Flush()
  REQUIRE(idx.ok());
  MinHasher h;
  MinHashSignature sig;
  Rng rng{7};
  const int kDocs = 12000;  // > the 8192 signatures held in memory
  for (int i = 0; i < kDocs; ++i) {
    std::vector<std::uint64_t> sh;
    for (int j = 0; j < 50; ++j) sh.push_back(rng.Next());
    h.Sign(sh, &sig);
    auto r = (*idx)->CheckAndAdd(sig);
    REQUIRE(r.ok());
    CHECK_FALSE(*r);  // random sets: J ~ 0
    if (i == 5) {
      auto again = (*idx)->CheckAndAdd(sig);
      REQUIRE(again.ok());
      CHECK(*again);
    }
  }
  CHECK((*idx)->kept() == kDocs);
  CHECK(NearDupIndex::Create(0.8, dir.path() + "/missing", 10).status().code() == StatusCode::kIOError);
}

// The accuracy test of issue #15: planted near-duplicates at known similarities, LSH decision vs
// exact Jaccard of the same shingles.
//
// Bounds. Write J for a pair's exact Jaccard, m = 128 permutations, k = ceil(t m). Each
// permutation matches with probability J, independently, so the estimate's match count is
// Binomial(m, J). The pair is dropped when (A) some band of r rows matches entirely and (B) at
// least k of m positions match. A and B are both increasing in the independent match
// indicators, so by Harris' inequality P(drop) >= P(A) P(B), with P(A) = 1 - (1 - J^r)^b and
// P(B) = BinomialTail(m, J, k); and P(drop) <= P(B). Per bucket of J the observed drop rate is
// asserted against these bounds with 4 binomial standard deviations of slack for the pair count.
TEST_CASE("NearDupIndex agrees with exact Jaccard on planted near-duplicates", "[export][near_dup][accuracy]") {
  test::TempDir dir;
  const double t = 0.8;
  auto idx = NearDupIndex::Create(t, dir.path(), 4096);
  REQUIRE(idx.ok());
  const LshParams p = (*idx)->params();
  MinHasher h;
  MinHashSignature sig;
  Rng rng{2026};
  // Vocabulary large enough that unrelated documents share almost no 3-gram.
  auto word = [&rng] { return "w" + std::to_string(rng.Below(50000)); };
  const int kWords = 160;  // ~1 KB documents
  const int kBases = 400;
  std::vector<std::vector<std::string>> bases;
  for (int i = 0; i < kBases; ++i) {
    std::vector<std::string> doc;
    for (int j = 0; j < kWords; ++j) doc.push_back(word());
    std::string text;
    for (const std::string& w : doc) text += w + " ";
    h.Sign(Shingles(text), &sig);
    REQUIRE((*idx)->Add(sig).ok());
    bases.push_back(std::move(doc));
  }
  // Variants: replace `edits` random words (each changes up to 3 shingles), sweeping J ~ 0.3..1.
  struct Bucket {
    double lo, hi;
    int n = 0, dropped = 0;
    double p_lower = 0, p_upper = 0;  // sums of the per-pair bounds
  };
  std::vector<Bucket> buckets;
  for (double lo = 0.0; lo < 1.0; lo += 0.05) buckets.push_back(Bucket{lo, lo + 0.05});
  buckets.push_back(Bucket{1.0, 1.01});
  int tp = 0, fp = 0, fn = 0, tn = 0;
  const int km = kMinHashPerms, need = static_cast<int>(std::ceil(t * kMinHashPerms - 1e-9));
  for (int i = 0; i < 4000; ++i) {
    const std::vector<std::string>& base = bases[static_cast<size_t>(i % kBases)];
    std::vector<std::string> doc = base;
    const int edits = static_cast<int>(rng.Below(30));
    for (int e = 0; e < edits; ++e) doc[rng.Below(kWords)] = word();
    std::string bt, vt;
    for (const std::string& w : base) bt += w + " ";
    for (const std::string& w : doc) vt += w + " ";
    const double j = ExactJaccard(Shingles(bt), Shingles(vt));
    h.Sign(Shingles(vt), &sig);
    auto hit = (*idx)->Contains(sig);
    REQUIRE(hit.ok());
    const bool truth = j >= t;
    (*hit ? (truth ? tp : fp) : (truth ? fn : tn))++;
    for (Bucket& b : buckets)
      if (j >= b.lo && j < b.hi) {
        ++b.n;
        b.dropped += *hit;
        const double pb = j >= 1.0 ? 1.0 : BinomialTail(km, j, need);
        b.p_lower += p.CandidateProbability(j) * pb;
        b.p_upper += pb;
      }
  }
  const double precision = tp + fp ? static_cast<double>(tp) / (tp + fp) : 1.0;
  const double recall = tp + fn ? static_cast<double>(tp) / (tp + fn) : 1.0;
  std::printf("near-dup accuracy at threshold %.2f (%d permutations, %d bands x %d rows): "
              "precision %.3f, recall %.3f (tp %d, fp %d, fn %d, tn %d)\n",
              t, kMinHashPerms, p.bands, p.rows, precision, recall, tp, fp, fn, tn);
  std::printf("  J bucket     pairs  dropped  rate   bounds [lower, upper]\n");
  for (const Bucket& b : buckets) {
    if (b.n == 0) continue;
    const double rate = static_cast<double>(b.dropped) / b.n;
    const double lo = b.p_lower / b.n, hi = b.p_upper / b.n;
    const double slack = 4 * std::sqrt(std::max(0.25 / b.n, 1e-9));  // 4 sd of a rate over n pairs, worst case
    std::printf("  [%.2f,%.2f) %6d  %6d  %.3f  [%.3f, %.3f]\n", b.lo, b.hi, b.n, b.dropped, rate, lo, hi);
    INFO("bucket [" << b.lo << "," << b.hi << ") n=" << b.n << " rate=" << rate << " bounds " << lo << ".." << hi);
    CHECK(rate >= lo - slack);
    CHECK(rate <= hi + slack);
  }
  // Away from the threshold the decision is that of exact Jaccard: all identical pairs and (by
  // the bounds above: P >= 0.98 at J >= 0.9) nearly all pairs 0.1 above it are dropped, none 0.15 below.
  int far_hi = 0, far_hi_dropped = 0, far_lo_dropped = 0;
  for (const Bucket& b : buckets) {
    if (b.lo >= 0.9) far_hi += b.n, far_hi_dropped += b.dropped;
    if (b.hi <= 0.65) far_lo_dropped += b.dropped;
  }
  REQUIRE(far_hi > 100);
  CHECK(far_hi_dropped >= far_hi * 95 / 100);
  CHECK(far_lo_dropped == 0);
  CHECK(buckets.back().dropped == buckets.back().n);  // J = 1 always dropped
  // Overall: the estimate's noise (sd 0.035 at J = 0.8) blurs only a band around t.
  CHECK(precision >= 0.85);
  CHECK(recall >= 0.85);
}

TEST_CASE("NearDupFilter compares prompt, answer or both", "[export][near_dup]") {
  test::TempDir dir;
  const std::string p1 = R"([{"content":"tell me about the history of the roman empire please","role":"user"}])";
  const std::string p2 = R"([{"content":"write a haiku about autumn leaves falling slowly today","role":"user"}])";
  const std::string ans = "the roman empire began in 27 BC when augustus became the first emperor and lasted for "
                          "centuries in the west until 476";
  {
    auto f = NearDupFilter::Create(0.8, NearDupOn::kAnswer, dir.path(), 10);
    REQUIRE(f.ok());
    CHECK_FALSE(*(*f)->Check("a", p1, ans));
    CHECK(*(*f)->Check("b", p2, ans));  // same answer to another prompt
    CHECK((*f)->dropped() == 1);
  }
  {
    auto f = NearDupFilter::Create(0.8, NearDupOn::kPrompt, dir.path(), 10);
    REQUIRE(f.ok());
    CHECK_FALSE(*(*f)->Check("a", p1, ans));
    CHECK(*(*f)->Check("a", p1, "something else entirely"));  // second sample of the same prompt
    CHECK_FALSE(*(*f)->Check("b", p2, ans));
  }
  {
    auto f = NearDupFilter::Create(0.8, NearDupOn::kBoth, dir.path(), 10);
    REQUIRE(f.ok());
    CHECK_FALSE(*(*f)->Check("a", p1, ans));
    CHECK_FALSE(*(*f)->Check("b", p2, ans));  // the prompts differ
    CHECK(*(*f)->Check("c", p1, ans + "!"));  // punctuation only
  }
  CHECK(ParseNearDupOn("both").ok());
  CHECK_THAT(ParseNearDupOn("all").status().message(), Catch::Contains("--near-dup-on"));
}

TEST_CASE("ExportOptions::Validate checks the near-dup and decontamination flags", "[export][near_dup]") {
  ExportOptions o;
  o.run = "r";
  o.out_dir = "d";
  CHECK(o.Validate().ok());
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    o.near_dup = bad;
    CHECK_THAT(o.Validate().message(), Catch::Contains("--near-dup:"));
  }
  o.near_dup = 1.0;
  CHECK(o.Validate().ok());
  o.near_dup_on = "both";
  CHECK(o.Validate().ok());
  o.near_dup_on = "x";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--near-dup-on"));
  o.near_dup = 0;
  o.near_dup_on = "answer";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--near-dup-on: only with --near-dup"));
  o.near_dup_on.clear();
  o.decontaminate = {"eval", "eval"};
  CHECK_THAT(o.Validate().message(), Catch::Contains("--decontaminate: 'eval' given twice"));
  o.decontaminate = {"eval"};
  o.decontaminate_ngram = 0;
  CHECK_THAT(o.Validate().message(), Catch::Contains("--decontaminate-ngram"));
  o.decontaminate_ngram = 13;
  CHECK(o.Validate().ok());
  CHECK(o.ToJson().find("\"decontaminate_ngram\":13") != std::string::npos);
}

TEST_CASE("Decontaminator matches a shared n-gram and names an unknown set", "[export][decontaminate]") {
  test::TempDir dir;
  auto store = test::OpenStoreAt(dir.path() + "/c.db");
  auto eval = store->CreatePromptSet("eval");
  auto eval2 = store->CreatePromptSet("eval2");
  REQUIRE(eval.ok());
  REQUIRE(eval2.ok());
  std::vector<ImportOutcome> out;
  Prompt a = test::MakePrompt("e1", {{"user", "Natalia sold clips to 48 of her friends in April and then half as many in May"}});
  Prompt b = test::MakePrompt("e2", {{"user", "one two three four five"}});
  REQUIRE(store->InsertPrompts(*eval, {a}, {"f:1"}, &out).ok());
  REQUIRE(store->InsertPrompts(*eval2, {b}, {"f:1"}, &out).ok());
  auto d = Decontaminator::Load(*store, {"eval", "eval2"}, 8);
  REQUIRE(d.ok());
  CHECK((*d)->set_prompts() == std::vector<std::int64_t>{1, 1});
  // 8 consecutive words in common, case and punctuation aside.
  CHECK((*d)->Match("Question: natalia SOLD clips to 48 of her friends, in a market.") == 0);
  CHECK((*d)->Match("Natalia sold clips to 48 of her") == -1);  // 7 words
  CHECK((*d)->Match("one two three four five six seven eight") == -1);  // eval2's prompt is shorter than n
  auto d5 = Decontaminator::Load(*store, {"eval2"}, 5);
  REQUIRE(d5.ok());
  CHECK((*d5)->Match("count: one two three four five!") == 0);
  auto bad = Decontaminator::Load(*store, {"nope"}, 13);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.status().message(), Catch::Contains("--decontaminate: no prompt set named 'nope'"));
}
