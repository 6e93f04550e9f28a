// CompressedFile implementation (zlib deflate with gzip wrapper, zstd streaming API, OpenSSL SHA-256).
#include "export/compressed_file.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "store/sha256.h"

namespace retort {

struct CompressedFile::Impl {
  std::string path;
  Compression c = Compression::kNone;
  std::FILE* f = nullptr;
  Sha256 sha;
  std::string in;             // pending uncompressed bytes (the caller's buffer)
  std::string work;           // the worker's buffer: owned by the worker while `busy`
  std::mutex mu;
  std::condition_variable cv;
  bool busy = false;          // guarded by mu: the worker is compressing `work`
  bool stop = false;          // guarded by mu
  Status worker_status;       // guarded by mu: first failure of the worker
  std::thread worker;
  std::vector<char> out;      // compressor output buffer
  z_stream z{};
  bool z_init = false;
  ZSTD_CCtx* zc = nullptr;
  bool finished = false;

  ~Impl() {
    if (z_init) deflateEnd(&z);
    if (zc) ZSTD_freeCCtx(zc);
    if (f) std::fclose(f);
  }
};

static constexpr size_t kInBuffer = 1 << 20;

const char* CompressedFile::Extension(Compression c) {
  switch (c) {
    case Compression::kNone: return ".jsonl";
    case Compression::kGzip: return ".jsonl.gz";
    case Compression::kZstd: return ".jsonl.zst";
  }
  return ".jsonl";
}

CompressedFile::CompressedFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->worker = std::thread([this] { WorkerLoop(); });
}

void CompressedFile::WorkerLoop() {
  Impl& m = *impl_;
  std::unique_lock lk(m.mu);
  for (;;) {
    m.cv.wait(lk, [&] { return m.busy || m.stop; });
    if (!m.busy) return;  // stop requested and nothing left
    lk.unlock();
    Status st = Pump(m.work, false);
    lk.lock();
    if (m.worker_status.ok()) m.worker_status = st;
    m.busy = false;
    m.cv.notify_all();
  }
}

Status CompressedFile::WaitIdle() {
  std::unique_lock lk(impl_->mu);
  impl_->cv.wait(lk, [&] { return !impl_->busy; });
  return impl_->worker_status;
}

CompressedFile::~CompressedFile() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    m.stop = true;
  }
  m.cv.notify_all();
  m.worker.join();  // after its current buffer, if any
}

Result<std::unique_ptr<CompressedFile>> CompressedFile::Create(const std::string& path, Compression c) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->c = c;
  impl->f = std::fopen(path.c_str(), "wb");
  if (!impl->f) return Status::IOError("cannot create '" + path + "': " + std::strerror(errno));
  impl->in.reserve(kInBuffer + (64 << 10));
  impl->work.reserve(kInBuffer + (64 << 10));
  if (c == Compression::kGzip) {
    // windowBits 15 + 16: gzip wrapper; zlib writes mtime 0 and no name: deterministic.
    if (deflateInit2(&impl->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return Status::Internal("deflateInit2 failed");
    impl->z_init = true;
    impl->out.resize(1 << 18);
  } else if (c == Compression::kZstd) {
    impl->zc = ZSTD_createCCtx();
    if (!impl->zc) return Status::Internal("ZSTD_createCCtx failed");
    ZSTD_CCtx_setParameter(impl->zc, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(impl->zc, ZSTD_c_checksumFlag, 1);
    impl->out.resize(ZSTD_CStreamOutSize());
  }
  return std::unique_ptr<CompressedFile>(new CompressedFile(std::move(impl)));
}

Status CompressedFile::Emit(const char* p, size_t n) {
  if (n == 0) return Status::OK();
  impl_->sha.Update(std::string_view(p, n));
  if (std::fwrite(p, 1, n, impl_->f) != n)
    return Status::IOError("write to '" + impl_->path + "' failed: " + std::strerror(errno));
  file_bytes_ += static_cast<std::int64_t>(n);
  return Status::OK();
}

// Compresses `in` (all of it); `end` finishes the stream. Runs on the worker, or on the
// caller once the worker is idle (Finish).
Status CompressedFile::Pump(std::string& in_buf, bool end) {
  Impl& m = *impl_;
  auto emit = [this](const char* p, size_t n) { return Emit(p, n); };
  if (m.c == Compression::kNone) {
    Status s = emit(in_buf.data(), in_buf.size());
    in_buf.clear();
    return s;
  }
  if (m.c == Compression::kGzip) {
    m.z.next_in = reinterpret_cast<Bytef*>(in_buf.data());
    m.z.avail_in = static_cast<uInt>(in_buf.size());
    for (;;) {
      m.z.next_out = reinterpret_cast<Bytef*>(m.out.data());
      m.z.avail_out = static_cast<uInt>(m.out.size());
      int rc = deflate(&m.z, end ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) return Status::Internal("deflate failed");
      RETORT_RETURN_IF_ERROR(emit(m.out.data(), m.out.size() - m.z.avail_out));
      if (end ? rc == Z_STREAM_END : (m.z.avail_in == 0 && m.z.avail_out != 0)) break;
    }
    in_buf.clear();
    return Status::OK();
  }
  ZSTD_inBuffer in{in_buf.data(), in_buf.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{m.out.data(), m.out.size(), 0};
    size_t rem = ZSTD_compressStream2(m.zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(rem)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(rem));
    RETORT_RETURN_IF_ERROR(emit(m.out.data(), out.pos));
    if (end ? rem == 0 : in.pos == in.size) break;
  }
  in_buf.clear();
  return Status::OK();
}

Status CompressedFile::Write(std::string_view data) {
  if (impl_->finished) return Status::Internal("CompressedFile::Write after Finish");
  uncompressed_bytes_ += static_cast<std::int64_t>(data.size());
  Impl& m = *impl_;
  m.in.append(data);
  if (m.in.size() < kInBuffer) return Status::OK();
  // Hand the full buffer to the worker once it is done with the previous one.
  RETORT_RETURN_IF_ERROR(WaitIdle());
  {
    std::lock_guard lk(m.mu);
    m.in.swap(m.work);
    m.busy = true;
  }
  m.cv.notify_all();
  return Status::OK();
}

Status CompressedFile::Finish() {
  if (impl_->finished) return Status::OK();
  impl_->finished = true;
  RETORT_RETURN_IF_ERROR(WaitIdle());
  RETORT_RETURN_IF_ERROR(Pump(impl_->in, true));
  std::FILE* f = impl_->f;
  impl_->f = nullptr;
  if (std::fflush(f) != 0 || std::fclose(f) != 0)
    return Status::IOError("closing '" + impl_->path + "' failed: " + std::strerror(errno));
  sha256_ = impl_->sha.HexDigest();
  return Status::OK();
}

}  // namespace retort
