// RateGovernor: paces requests to one teacher endpoint under its (configured or learned) request
// and token limits, so that no short window gets more than its share of a per-minute limit.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "retort/clock.h"
#include "retort/corpus.h"
#include "retort/status.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

// What a request is expected to cost, in tokens, before it is sent.
struct TokenCost {
  std::int64_t prompt = 0;      // prompt (input) tokens, as estimated by the caller
  std::int64_t completion = 0;  // completion (output) tokens reserved: max_tokens x n
};

// How the endpoint counts a request's completion against the combined token limit (tpm).
enum class CompletionCharge {
  // What was reserved at request time (max_tokens) stands: OpenAI documents that its token
  // limit counts max_tokens when the request arrives.
  kReserved,
  // Corrected to the completion tokens reported in `usage` (Anthropic's token buckets).
  kActual,
};

// Tuning of a RateGovernor. Defaults suit a hosted API whose limits are learned from headers.
struct GovernorOptions {
  // Requests per minute the endpoint allows. 0 = unknown: learned from the limit headers of the
  // first response (see RateGovernor); a dimension no header announces is not rate limited.
  double rpm = 0;
  // Combined tokens per minute (prompt + completion, see tpm_completion). 0 = learned.
  double tpm = 0;
  // Input tokens per minute (Anthropic's ITPM; counts prompt tokens). 0 = learned.
  double itpm = 0;
  // Output tokens per minute (Anthropic's OTPM): a grant charges the completion estimate
  // (max_tokens, scaled as RateGovernor says) and the usage of the response corrects it.
  // 0 = learned.
  double otpm = 0;
  // How the combined token limit counts completions (OpenAI: kReserved; Anthropic: kActual).
  CompletionCharge tpm_completion = CompletionCharge::kReserved;
  // Grants are paced at this fraction of each limit (0 < f <= 1); with the window log's guard
  // it leaves room for the jitter between a grant and its arrival; see RateGovernor.
  double pace_fraction = 0.99;
  // The short window no sequence of grants overfills: within any window_ms (any alignment),
  // grants carry at most limit x window_ms / 60 s of each capped dimension (but always at least
  // one request; see RateGovernor). OpenAI enforces per-minute limits over windows this short.
  Millis window_ms = 1000;
  // Each 429 multiplies the effective rates by this factor (0 < f < 1), but the 429s of one
  // event (a burst, see OnRateLimited) never take them below min_event_factor (0 < f <= 1) of
  // what they were when it began. A lone 429 from a window boundary that caught a late request
  // costs 2 % for a second; a burst from a limit well below the pace brings the rates down fast.
  double decrease_factor = 0.98;
  double min_event_factor = 0.7;
  // Additive increase: per second without a 429 (and not paused), the effective rate regains
  // this fraction of the limit, up to the limit.
  double increase_per_second = 0.02;
  // Cap on a single Retry-After pause (a longer server hint is shortened to this).
  Millis max_pause_ms = 15 * 60 * 1000;
  // Slow start while the probe has not answered (nor, streamed, sent its headers): after each
  // probe_wait_ms the requests in flight may double (1, 2, 4, ...). A non-streamed probe to a
  // slow teacher (answers of a minute) would otherwise idle every other request that long, at
  // every start and resume; doubling keeps what goes out before any limit is known small
  // against a quick endpoint. The first response of any of them ends the learning.
  Millis probe_wait_ms = 2000;

  // InvalidArgument naming the field when a value is out of range (negative or non-finite
  // limits, pace_fraction outside (0,1], window_ms <= 0, decrease_factor outside (0,1),
  // min_event_factor outside (0,1], increase_per_second < 0, max_pause_ms <= 0,
  // probe_wait_ms <= 0).
  Status Validate() const;
};

// Answer of RateGovernor::TryAcquire; a granted one is handed back when the request is reported.
struct GovernorGrant {
  bool granted = false;
  // When not granted: the earliest monotonic time (Clock::NowMs) worth asking again; always > now.
  // 0 when granted.
  Millis retry_at_ms = 0;
  // When granted: this is the probe sent to learn the limits. Callers refused meanwhile were
  // told to come back later; once the probe is reported they may ask again at once.
  bool probe = false;
  // When granted: identifies the grant, and what it was charged: the caller's estimate, each
  // part scaled by the ratio of reported to estimated tokens seen so far (see RateGovernor).
  std::uint64_t ticket = 0;
  TokenCost estimate;
  double prompt_charged = 0;
  double completion_charged = 0;
};

// A snapshot of a RateGovernor's state, for metrics and `status` output.
struct GovernorStats {
  // Current effective rates per minute (the limit, lowered by 429s; grants go at pace_fraction
  // of it); 0 = not rate limited (or not yet known).
  double rpm_effective = 0;
  double tpm_effective = 0;
  double itpm_effective = 0;
  double otpm_effective = 0;
  std::int64_t rate_limit_events = 0;       // distinct 429 events (a burst counts once)
  std::int64_t rate_limited_responses = 0;  // every 429 response reported
  Millis paused_until_ms = 0;               // > now while every caller is paused by a 429
  bool probing = false;                     // learning limits: one request at a time until the first response
  double prompt_ratio = 1.0;                // reported / estimated prompt tokens (last ~50 reports)
  double completion_ratio = 1.0;            // reported completion tokens / max_tokens (likewise)
  // What the latest adopted headers say is left, minus what was granted since (nullopt when
  // no header budget is in force).
  std::optional<std::int64_t> header_remaining_requests;
  std::optional<std::int64_t> header_remaining_tokens;
  std::optional<std::int64_t> header_remaining_input_tokens;
  std::optional<std::int64_t> header_remaining_output_tokens;
};

// Decides when the next request to one endpoint may be sent.
//
// Dimensions: requests (1 per grant), combined tokens (prompt + completion), input tokens
// (prompt) and output tokens (completion). Each is limited when configured, or once a response
// announces its limit; the others only count.
//
// Pacing (per limited dimension, at r = pace_fraction x effective rate): virtual scheduling
// (GCRA). A grant is allowed at the dimension's theoretical time `tat`, which it then moves by
// its cost / r: tat = max(tat, now - kCatchUpMs) + cost / r. So traffic starts from an empty
// bucket, grants are evenly spaced however many callers wait, and after a pause (429, probe,
// idle time) the next grants resume at the paced interval: nothing accumulates beyond
// kCatchUpMs (5 ms), which only makes up for callers waking late (thread wake-up); the clock's
// 1 ms resolution adds up to 1 ms more (a grant at ms n stands for [n, n + 1)).
// For the requests dimension, m + 1 grants thus span at least m / r - 6 ms, so any window of
// T ms holds at most ceil((T + 6) x r) of them: with r = 0.99 x limit and T = 1 s that is
// ceil(0.996 x limit / 60), never more than the per-second share of a limit divisible by 60.
// In addition, a log of the grants of the last window_ms + kWindowGuardMs caps each dimension
// whose charge is final when the request is sent (requests, input tokens, combined tokens
// counted with max_tokens) at limit x window_ms / 60 s (an empty window always admits one
// request, however large). This matters for tokens, where one request may be a sizable part of
// a second's share and the pacing bound gains a request's worth. The cap is the full share, not
// pace_fraction of it: with whole requests, 0.99 x 10 per second would allow only 9 (and where
// the share is not whole, 700 rpm = 11.67/s, a second holds 11: the most any client can send
// to an endpoint that enforces it over every 1 s window; likewise floor(share / cost) requests
// when each costs a sizable part of a second's token share).
// Jitter: requests reach the endpoint a little after their grant, not all equally late. The
// window log's 10 ms guard means any 1010 ms of grants carry at most the 1 s share, so the
// endpoint's 1 s windows see no more than the share as long as no request arrives 10 ms later
// than one granted after it. The pace of 0.99 matches it: evenly paced, share + 1 requests
// span 1000 / 0.99 = 1010 ms, so the cap seldom has to step in, and the long run costs 1 %:
// N requests take N / (0.99 x limit), which leaves room for start-up and the last responses
// within 1.03 x the ideal time N / limit.
// Output tokens (and combined tokens counted as used), which usage corrects after the fact,
// follow Anthropic's token bucket: paced, not capped (an endpoint reserving max_tokens would
// hold a sizable part of a second's share per request in flight, which a short-window cap
// would turn into a throttle).
// Together: an endpoint that enforces a per-minute limit over any window of >= 1 s (sliding
// or fixed), or as a token bucket holding up to a minute, receives no more than its limit.
//
// Estimates: a grant charges the caller's prompt estimate times the ratio of reported to
// estimated prompt tokens over the last ~50 reports, and for output tokens max_tokens times the
// ratio of reported completion tokens to max_tokens (until the first usage: all of max_tokens).
// The combined dimension counts the completion as max_tokens when the endpoint does
// (CompletionCharge::kReserved, OpenAI) and as the output charge otherwise. The usage of the
// response corrects every token dimension, in the pacing and in the window log (requests are
// never corrected: the bound above holds as is). Credit that would take the pacing more than
// kCatchUpMs back is banked (up to 100 ms) and spent on the next grants, shortening each
// interval by half at most: so corrections stay unbiased (output lengths vary a lot around
// their mean) without a burst. Output is charged at what is expected, not reserved at
// max_tokens: paced without a burst, a full reservation per request in flight would hold back
// the next grant until the response gave it back, one request at a time (an endpoint that
// reserves max_tokens, as Anthropic's bucket holding a minute does, has room for those).
// Headers: rate-limit headers only ever restrict further (see OnResponse).
// Learning: with rpm unknown, or no token limit configured, one probe request is granted; the
// limits its response's headers announce then apply exactly as configured ones would, while the
// header budget from the same response keeps grants within what the endpoint says remains.
// A streamed probe is answered by its headers (OnProbeHead), not by its last byte. While no
// answer has come, more requests go in a slow start: after k x probe_wait_ms, 2^k - 1 besides
// the probe; the first response of any of them ends the learning as the probe's would.
// 429s: every caller is paused until the server's hint; each 429 multiplies the rates by
// decrease_factor (one burst by min_event_factor at most), and time without 429 adds them back
// linearly (AIMD).
//
// Pure logic: no I/O, no threads, time only from the injected Clock. Safe for concurrent use.
class RateGovernor {
 public:
  // Lateness a grant may make up for (see the class comment).
  static constexpr Millis kCatchUpMs = 5;
  // The window log holds grants this much longer than window_ms (see the class comment).
  static constexpr Millis kWindowGuardMs = 10;
  // Most credit from usage corrections a dimension carries to its next grants.
  static constexpr double kMaxCreditMs = 100;

  // REQUIRES: opts.Validate().ok() (out-of-range values are clamped to sane ones);
  // `clock` outlives the governor.
  RateGovernor(GovernorOptions opts, Clock* clock);

  RateGovernor(const RateGovernor&) = delete;
  RateGovernor& operator=(const RateGovernor&) = delete;

  // Charges one request and `estimate` (negative parts count as 0) now and returns it granted,
  // or charges nothing and returns {false, t} with t > now the earliest time worth asking again.
  // Every grant must later be reported exactly once: OnResponse, OnRateLimited or OnFailure.
  GovernorGrant TryAcquire(TokenCost estimate);

  // A granted request got a response (any non-429 status that reached the endpoint).
  // `usage` (-1 = not reported) corrects what the grant was charged. `limits` are that
  // response's headers: they end probing, set the limit of any dimension not configured, and
  // may replace that dimension's header budget. Per dimension (requests, tokens, input tokens,
  // output tokens) a budget is (remaining, reset instant = now + reset, or now + 60 s without a
  // reset). Until the reset instant a grant needs the budget minus what was granted since to
  // cover it; when the snapshot also gives the limit, the budget refills linearly to the limit
  // by the reset instant (OpenAI and Anthropic both use token buckets).
  // Responses arrive out of order, so a new snapshot replaces the budget only when the old
  // one has expired, when it reports no more than the budget currently allows, or when its
  // reset is > 1 s later (a new window); otherwise it is stale and ignored.
  // Returns true when the correction lets callers refused earlier go sooner than they were
  // told (the caller should wake them so they ask again).
  bool OnResponse(const GovernorGrant& grant, const TokenUsage& usage, const RateLimitSnapshot& limits);

  // The probe's response has begun with a 2xx status and these headers, and its body is still
  // to come (a stream, which may take minutes): the limits they announce apply now, as in
  // OnResponse, and probing ends here instead of when the whole answer is in, so the callers
  // held back by the probe need not wait for it. OnResponse or OnFailure still follows for the
  // grant. Does nothing for a grant that is not the outstanding probe. Returns true when it
  // ended probing (the caller should wake the callers refused meanwhile).
  bool OnProbeHead(const GovernorGrant& grant, const RateLimitSnapshot& limits);

  // A granted request got a retryable 429. Its charges are refunded (the caller re-queues
  // it). Pauses every caller until now + retry_after_ms (capped at max_pause_ms; without a
  // hint 1 s, doubling for consecutive hint-less events up to 60 s). A 429 arriving while paused
  // (or within 1 s after the pause of its event ended) belongs to the same event: it may extend
  // the pause to its own hint, but starts no new one. Every 429 multiplies the effective rates
  // by decrease_factor, never below min_event_factor of the rates its event began with (nor
  // below 1 rpm, nor below 1% of a token limit).
  // `limits` as in OnResponse.
  void OnRateLimited(const GovernorGrant& grant, std::optional<Millis> retry_after_ms,
                     const RateLimitSnapshot& limits);

  // A granted request failed without usage information (connection error, timeout, 5xx):
  // the charges are kept (conservative). Ends an outstanding probe so another may be sent.
  void OnFailure(const GovernorGrant& grant);

  // The current state (effective rates, pause, header budgets).
  GovernorStats Stats() const;

 private:
  enum Dim { kRequests = 0, kTokens = 1, kInput = 2, kOutput = 3, kDims = 4 };
  using Costs = std::array<double, kDims>;

  // A budget announced by rate-limit headers for one dimension.
  struct HeaderBudget {
    bool active = false;
    double remaining = 0;                // what the header said was left at `observed_ms`
    std::optional<double> limit;         // the window's full size, if the header said
    Millis observed_ms = 0;
    Millis reset_at_ms = 0;              // after this instant the budget no longer constrains
    double used = 0;                     // granted since `observed_ms`
  };
  // One paced dimension.
  struct Dimension {
    bool configured = false;  // the limit came from the options (headers never change it)
    bool limited = false;     // a configured or learned per-minute limit applies
    double limit = 0;         // per minute
    double rate = 0;          // effective per minute, in [min_rate, limit]
    double tat = 0;           // theoretical time of the next grant (ms, Clock::NowMs scale)
    double window_sum = 0;    // charged by the grants in window_
    double event_rate = 0;    // `rate` when the current 429 event began
    double credit = 0;        // ms of pacing that usage gave back beyond kCatchUpMs (see CorrectLocked)
    HeaderBudget header;
  };
  // Reported over estimated tokens: a ratio of decaying sums (the last ~50 reports), so that
  // estimates scaled by it are unbiased (a mean of per-request ratios is not). 1 until a report.
  struct Ratio {
    double actual = 0, estimate = 0;
    void Add(double reported, double estimated);
    double value() const;
  };
  // A grant of the last window_ms, oldest first (tickets increase along the deque).
  struct WindowEntry {
    Millis at;
    std::uint64_t ticket;
    Costs cost;
  };

  Costs ChargesOf(const GovernorGrant& g) const;

  void AdvanceLocked(Millis now);
  double IntervalPerUnitMs(const Dimension& d) const;
  double WindowCap(const Dimension& d) const;
  bool WindowCapped(int dim) const;
  static Millis TatReadyAt(const Dimension& d);
  Millis WindowReadyAt(int dim, double cost, Millis now) const;
  Millis ReadyAtLocked(const Costs& cost, Millis now);
  void LimitLocked(Dimension& d, double per_minute, Millis now);
  void LearnLocked(const RateLimitSnapshot& limits, Millis now);
  void UpdateHeadersLocked(const RateLimitSnapshot& limits, Millis now);
  // Adds `delta` to a grant's charges (pacing, window log, header budgets). Credit never
  // takes a dimension's tat below now - kCatchUpMs; with `bank`, what would is kept in
  // Dimension::credit (up to kMaxCreditMs) for the next grants.
  void CorrectLocked(std::uint64_t ticket, const Costs& delta, Millis now, bool bank);
  static double HeaderAvailable(const HeaderBudget& b, Millis now);
  static Millis HeaderReadyAt(const HeaderBudget& b, double need, Millis now);
  static void AdoptBudget(HeaderBudget& b, std::int64_t remaining, std::optional<std::int64_t> limit,
                          std::optional<Millis> reset_ms, Millis now);

  const GovernorOptions opts_;
  Clock* const clock_;

  mutable std::mutex mu_;
  // Everything below is guarded by mu_.
  std::array<Dimension, kDims> dims_;
  std::deque<WindowEntry> window_;
  std::uint64_t next_ticket_ = 1;
  Ratio prompt_ratio_;
  Ratio completion_ratio_;
  Millis latest_hint_ms_ = 0;   // latest retry time handed to a refused caller (0 = none pending)
  Millis last_ms_ = 0;          // last time the rates were advanced
  bool probing_ = false;
  bool probe_outstanding_ = false;
  Millis probe_granted_ms_ = 0;       // when the outstanding probe was granted
  std::int64_t probe_side_grants_ = 0;  // granted beside it (slow start; see probe_wait_ms)
  Millis paused_until_ms_ = 0;
  bool event_active_ = false;   // a 429 event happened (its window is below)
  Millis event_initial_end_ms_ = 0;  // end of the pause set when the current event began
  Millis no_hint_step_ms_ = 0;  // last hint-less pause length (0 = next one is 1 s)
  std::int64_t rate_limit_events_ = 0;
  std::int64_t rate_limited_responses_ = 0;
};

}  // namespace retort
