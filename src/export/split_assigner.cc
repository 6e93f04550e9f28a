// SplitAssigner implementation.
#include "export/split_assigner.h"

#include "store/sha256.h"

namespace retort {

SplitAssigner::SplitAssigner(std::vector<SplitSpec> splits, std::uint64_t seed)
    : splits_(std::move(splits)), seed_(seed) {}

double SplitAssigner::Point(std::uint64_t seed, const std::string& prompt_key) {
  const std::string hex = Sha256Hex(std::to_string(seed) + "\n" + prompt_key);
  std::uint64_t v = std::stoull(hex.substr(0, 16), nullptr, 16);
  return static_cast<double>(v >> 11) * 0x1.0p-53;  // 53 bits: exact in a double, < 1
}

size_t SplitAssigner::Assign(const std::string& prompt_key) {
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
  last_key_ = prompt_key;
  last_ = idx;
  have_last_ = true;
  return idx;
}

}  // namespace retort
