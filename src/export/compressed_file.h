// CompressedFile: a streaming plain/gzip/zstd file writer with a running SHA-256 of the file bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "retort/exporter.h"

namespace retort {

// Output is deterministic: gzip without name or mtime (level 6), single-threaded zstd
// (level 3, frame checksum). Not thread-safe. Compression, hashing and writing run on a
// worker thread owned by the object, one 1 MiB buffer behind the caller (double buffering):
// the bytes and their order are exactly those of a single-threaded writer.
class CompressedFile {
 public:
  // Creates (truncating) `path`. IOError when it cannot be opened.
  static Result<std::unique_ptr<CompressedFile>> Create(const std::string& path, Compression c);
  ~CompressedFile();  // closes without finishing the stream if Finish() was not called

  // Appends uncompressed data. IOError on write/compression failure (possibly of data
  // appended by an earlier call, reported here or by Finish()).
  Status Write(std::string_view data);
  // Flushes, ends the stream and closes the file. Call once.
  Status Finish();

  std::int64_t file_bytes() const { return file_bytes_; }
  std::int64_t uncompressed_bytes() const { return uncompressed_bytes_; }
  // Lower-case hex SHA-256 of the file bytes. REQUIRES: Finish() returned OK.
  const std::string& sha256() const { return sha256_; }

  // ".jsonl", ".jsonl.gz" or ".jsonl.zst".
  static const char* Extension(Compression c);

 private:
  struct Impl;
  explicit CompressedFile(std::unique_ptr<Impl> impl);
  Status Emit(const char* p, size_t n);  // file bytes: hash + write
  Status Pump(std::string& in, bool end);  // compresses `in` (then clears it); `end` ends the stream
  Status WaitIdle();                        // waits for the worker's buffer; its Status
  void WorkerLoop();

  std::unique_ptr<Impl> impl_;
  std::int64_t file_bytes_ = 0, uncompressed_bytes_ = 0;
  std::string sha256_;
};

}  // namespace retort
