// SplitAssigner implementation.
#include "export/split_assigner.h"

#include "store/sha256.h"

namespace retort {

SplitAssigner::SplitAssigner(std::vector<SplitSpec> splits, std::uint64_t seed)
    : splits_(std::move(splits)), seed_(seed) {}

double SplitAssigner::Point(std::uint64_t seed, std::string_view prompt_key) {
  std::string in = std::to_string(seed);
  in.push_back('\n');
  in.append(prompt_key);
  unsigned char d[32];
  Sha256Digest(in, d);
  std::uint64_t v = 0;  // the first 16 hex digits of the digest, as a number
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return static_cast<double>(v >> 11) * 0x1.0p-53;  // 53 bits: exact in a double, < 1
}

size_t SplitAssigner::Assign(std::string_view prompt_key) {
  if (splits_.size() == 1) return 0;  // Point() < 1 always lands in the only split
  if (have_last_ && prompt_key == last_key_) return last_;
  const double x = Point(seed_, prompt_key);
  double acc = 0;
  size_t idx = splits_.size() - 1;  // rounding slack goes to the last split
  for (size_t i = 0; i < splits_.size(); ++i) {
    acc += splits_[i].fraction;
    if (x < acc) {
      idx = i;
      break;
    }
  }
  last_key_.assign(prompt_key);
  last_ = idx;
  have_last_ = true;
  return idx;
}

}  // namespace retort
