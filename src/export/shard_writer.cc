// ShardWriter implementation.
#include "export/shard_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace retort {

ShardWriter::ShardWriter(std::string data_dir, std::string rel_prefix, std::string split, Compression c,
                         std::int64_t max_records, std::int64_t max_bytes)
    : dir_(std::move(data_dir)),
      prefix_(std::move(rel_prefix)),
      split_(std::move(split)),
      c_(c),
      max_records_(max_records),
      max_bytes_(max_bytes) {}

ShardWriter::~ShardWriter() = default;

std::string ShardWriter::TempPath(size_t index) const {
  return dir_ + "/." + split_ + "-" + std::to_string(index) + ".partial";
}

Status ShardWriter::CloseCurrent() {
  if (!cur_) return Status::OK();
  RETORT_RETURN_IF_ERROR(cur_->Finish());
  ShardInfo s;
  s.file = TempPath(done_.size());
  s.records = cur_records_;
  s.bytes = cur_->file_bytes();
  s.uncompressed_bytes = cur_->uncompressed_bytes();
  s.sha256 = cur_->sha256();
  done_.push_back(std::move(s));
  cur_.reset();
  cur_records_ = cur_bytes_ = 0;
  return Status::OK();
}

Status ShardWriter::Write(std::string_view record) {
  const auto len = static_cast<std::int64_t>(record.size());
  if (cur_ && cur_records_ > 0 &&
      ((max_records_ > 0 && cur_records_ >= max_records_) || (max_bytes_ > 0 && cur_bytes_ + len > max_bytes_)))
    RETORT_RETURN_IF_ERROR(CloseCurrent());
  if (!cur_) {
    Result<std::unique_ptr<CompressedFile>> f = CompressedFile::Create(TempPath(done_.size()), c_);
    if (!f.ok()) return f.status();
    cur_ = std::move(*f);
  }
  RETORT_RETURN_IF_ERROR(cur_->Write(record));
  ++cur_records_;
  ++total_records_;
  cur_bytes_ += len;
  return Status::OK();
}

static std::string Pad5(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05zu", n);
  return buf;
}

Result<std::vector<ShardInfo>> ShardWriter::Finish() {
  RETORT_RETURN_IF_ERROR(CloseCurrent());
  const size_t n = done_.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string name = split_ + "-" + Pad5(i) + "-of-" + Pad5(n) + CompressedFile::Extension(c_);
    const std::string to = dir_ + "/" + name;
    if (std::rename(done_[i].file.c_str(), to.c_str()) != 0)
      return Status::IOError("rename to '" + to + "' failed: " + std::strerror(errno));
    done_[i].file = prefix_ + name;
  }
  return done_;
}

}  // namespace retort
