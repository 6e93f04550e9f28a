// NearDupIndex implementation.
#include "export/near_dup.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "export/text_shingles.h"

namespace retort {

namespace {

// ∫_lo^hi f(s) ds by the trapezoid rule.
template <typename F>
double Integrate(F f, double lo, double hi) {
  constexpr int kSteps = 200;
  if (hi <= lo) return 0;
  const double h = (hi - lo) / kSteps;
  double sum = (f(lo) + f(hi)) / 2;
  for (int i = 1; i < kSteps; ++i) sum += f(lo + i * h);
  return sum * h;
}

// Signatures buffered in memory before they are written to the temporary file.
constexpr size_t kPendingMax = 8192;  // 4 MiB

}  // namespace

double LshParams::CandidateProbability(double s) const {
  return 1.0 - std::pow(1.0 - std::pow(s, rows), bands);
}

LshParams LshParams::ForThreshold(double threshold) {
  LshParams best;
  best.threshold = threshold;
  double best_err = 1e300;
  for (int b = 1; b <= kMaxLshBands; ++b) {
    for (int r = 1; b * r <= kMinHashPerms; ++r) {
      LshParams p;
      p.threshold = threshold;
      p.bands = b;
      p.rows = r;
      const double fp = Integrate([&p](double s) { return p.CandidateProbability(s); }, 0.0, threshold);
      const double fn = Integrate([&p](double s) { return 1.0 - p.CandidateProbability(s); }, threshold, 1.0);
      const double err = 0.2 * fp + 0.8 * fn;
      if (err < best_err - 1e-12) {
        best_err = err;
        best = p;
      }
    }
  }
  return best;
}

MinHasher::MinHasher() {
  std::uint64_t state = 0x5265746f72744d48ULL;  // fixed: signatures are the same in every run
  for (int i = 0; i < kMinHashPerms; ++i) {
    state += 0x9e3779b97f4a7c15ULL;
    const std::uint64_t r = Mix64(state);
    a_[i] = static_cast<std::uint32_t>(r) | 1;
    b_[i] = static_cast<std::uint32_t>(r >> 32);
  }
}

namespace {
// h_i(x) = a_i x + b_i mod 2^32 (a_i odd: a permutation of the 32-bit values) over a 32-bit hash
// of the shingle. 32-bit lanes so that the loop vectorises (AVX2 where the CPU has it).
// __restrict: without it -O2 (GCC's very-cheap cost model) would need alias checks and stays scalar.
// An AVX2 clone chosen by an ifunc resolver at load time; not under ThreadSanitizer, whose
// instrumented resolver runs before the TSan runtime is up and crashes every start.
#if defined(__SANITIZE_THREAD__)
#define RETORT_SIGN_CLONES
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RETORT_SIGN_CLONES
#else
#define RETORT_SIGN_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#else
#define RETORT_SIGN_CLONES __attribute__((target_clones("avx2", "default")))
#endif
RETORT_SIGN_CLONES void SignLoop(const std::uint64_t* __restrict sh, size_t n,
                                                                const std::uint32_t* __restrict a,
                                                                const std::uint32_t* __restrict b,
                                                                std::uint32_t* __restrict out) {
  for (size_t k = 0; k < n; ++k) {
    const std::uint32_t x = static_cast<std::uint32_t>(sh[k] ^ (sh[k] >> 32));
    for (int i = 0; i < kMinHashPerms; ++i) {
      const std::uint32_t v = a[i] * x + b[i];
      out[i] = v < out[i] ? v : out[i];
    }
  }
}
}  // namespace

void MinHasher::Sign(const std::vector<std::uint64_t>& shingles, MinHashSignature* sig) const {
  sig->fill(0xffffffffu);
  SignLoop(shingles.data(), shingles.size(), a_.data(), b_.data(), sig->data());
}

double MinHasher::Similarity(const MinHashSignature& a, const MinHashSignature& b) {
  int eq = 0;
  for (int i = 0; i < kMinHashPerms; ++i) eq += a[i] == b[i];
  return static_cast<double>(eq) / kMinHashPerms;
}

Result<std::unique_ptr<NearDupIndex>> NearDupIndex::Create(double threshold, const std::string& spill_dir,
                                                           std::int64_t expected) {
  std::string path = (spill_dir.empty() ? std::string(".") : spill_dir) + "/.retort-near-dup-XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) return Status::IOError("--near-dup: cannot create a temporary file in '" + spill_dir + "': " +
                                     std::strerror(errno));
  ::unlink(path.c_str());  // freed when closed, also after a crash
  return std::unique_ptr<NearDupIndex>(new NearDupIndex(LshParams::ForThreshold(threshold), fd, expected));
}

NearDupIndex::NearDupIndex(const LshParams& p, int fd, std::int64_t expected) : params_(p), fd_(fd) {
  const std::uint64_t n = static_cast<std::uint64_t>(std::max<std::int64_t>(expected, 1024));
  slots_.assign(n * static_cast<std::uint64_t>(params_.bands) * 10 / 7 + 1, 0);  // load <= 0.7
  pending_.reserve(std::min<size_t>(kPendingMax, n));
}

NearDupIndex::~NearDupIndex() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t NearDupIndex::BandHash(const MinHashSignature& sig, int band) const {
  std::uint64_t h = Mix64(0x42616e64ULL + static_cast<std::uint64_t>(band));
  const int r = params_.rows;
  for (int i = band * r; i < band * r + r; ++i) h = Mix64(h ^ sig[i]) + 0x9e3779b97f4a7c15ULL;
  return Mix64(h);
}

static std::uint64_t SlotOf(std::uint64_t h, size_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);  // high bits choose the slot
}

void NearDupIndex::InsertSlot(std::uint64_t band_hash, std::uint32_t id) {
  const size_t n = slots_.size();
  std::uint64_t pos = SlotOf(band_hash, n);
  while (slots_[pos] != 0) pos = pos + 1 == n ? 0 : pos + 1;
  slots_[pos] = (band_hash << 32) | (static_cast<std::uint64_t>(id) + 1);  // low bits as fingerprint
  ++used_;
}

Status NearDupIndex::Flush() {
  if (pending_.empty()) return Status::OK();
  const size_t bytes = pending_.size() * sizeof(MinHashSignature);
  const off_t off = static_cast<off_t>(flushed_) * static_cast<off_t>(sizeof(MinHashSignature));
  const char* p = reinterpret_cast<const char*>(pending_.data());
  size_t done = 0;
  while (done < bytes) {
    ssize_t w = ::pwrite(fd_, p + done, bytes - done, off + static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::IOError(std::string("--near-dup: cannot write the temporary file: ") + std::strerror(errno));
    done += static_cast<size_t>(w);
  }
  flushed_ += static_cast<std::uint32_t>(pending_.size());
  pending_.clear();
  return Status::OK();
}

Status NearDupIndex::ReadSignature(std::uint32_t id, MinHashSignature* out) {
  if (id >= flushed_) {
    *out = pending_[id - flushed_];
    return Status::OK();
  }
  const off_t off = static_cast<off_t>(id) * static_cast<off_t>(sizeof(MinHashSignature));
  char* p = reinterpret_cast<char*>(out->data());
  size_t done = 0;
  while (done < sizeof(MinHashSignature)) {
    ssize_t r = ::pread(fd_, p + done, sizeof(MinHashSignature) - done, off + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IOError(std::string("--near-dup: cannot read the temporary file: ") + std::strerror(errno));
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

void NearDupIndex::Grow() {
  // Only fingerprints are stored, so the entries are rebuilt from the kept signatures.
  slots_.assign(slots_.size() * 2, 0);
  used_ = 0;
  for (std::uint32_t id = 0; id < count_; ++id) {
    if (!ReadSignature(id, &scratch_).ok()) continue;  // a read error also shows in Contains()
    for (int b = 0; b < params_.bands; ++b) InsertSlot(BandHash(scratch_, b), id);
  }
}

Result<bool> NearDupIndex::Contains(const MinHashSignature& sig) {
  Result<std::int64_t> id = Find(sig);
  if (!id.ok()) return id.status();
  return *id >= 0;
}

Result<std::int64_t> NearDupIndex::Find(const MinHashSignature& sig) {
  // matches / kMinHashPerms >= threshold, in integers.
  const int need = static_cast<int>(std::ceil(params_.threshold * kMinHashPerms - 1e-9));
  const size_t n = slots_.size();
  std::uint32_t checked[4 * kMaxLshBands];
  size_t nchecked = 0;
  for (int b = 0; b < params_.bands; ++b) {
    const std::uint64_t h = BandHash(sig, b);
    const std::uint64_t fp = h << 32;
    for (std::uint64_t pos = SlotOf(h, n); slots_[pos] != 0; pos = pos + 1 == n ? 0 : pos + 1) {
      const std::uint64_t s = slots_[pos];
      if ((s & 0xffffffff00000000ULL) != fp) continue;
      const std::uint32_t id = static_cast<std::uint32_t>(s) - 1;
      if (std::find(checked, checked + nchecked, id) != checked + nchecked) continue;
      if (nchecked < sizeof checked / sizeof checked[0]) checked[nchecked++] = id;
      RETORT_RETURN_IF_ERROR(ReadSignature(id, &scratch_));
      int eq = 0;
      for (int i = 0; i < kMinHashPerms; ++i) eq += scratch_[i] == sig[i];
      if (eq >= need) return static_cast<std::int64_t>(id);
    }
  }
  return std::int64_t{-1};
}

Status NearDupIndex::Add(const MinHashSignature& sig) {
  if ((used_ + static_cast<std::uint64_t>(params_.bands)) * 10 > slots_.size() * 7) Grow();
  const std::uint32_t id = count_++;
  pending_.push_back(sig);
  for (int b = 0; b < params_.bands; ++b) InsertSlot(BandHash(sig, b), id);
  if (pending_.size() >= kPendingMax) return Flush();
  return Status::OK();
}

Result<bool> NearDupIndex::CheckAndAdd(const MinHashSignature& sig) {
  Result<bool> hit = Contains(sig);
  if (!hit.ok() || *hit) return hit;
  RETORT_RETURN_IF_ERROR(Add(sig));
  return false;
}

}  // namespace retort
