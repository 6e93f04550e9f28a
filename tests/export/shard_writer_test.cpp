#include <catch2/catch.hpp>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>

#include "export/shard_writer.h"
#include "store/sha256.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {
std::string Gunzip(const std::string& data) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[4096];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  return out;
}
std::string Unzstd(const std::string& data) {
  ZSTD_DStream* d = ZSTD_createDStream();
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::string out;
  char buf[4096];
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf, sizeof buf, 0};
    size_t rc = ZSTD_decompressStream(d, &o, &in);
    REQUIRE_FALSE(ZSTD_isError(rc));
    out.append(buf, o.pos);
  }
  ZSTD_freeDStream(d);
  return out;
}
std::string Records(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(100, 'x') + "\"}\n";
  return s;
}
}  // namespace

TEST_CASE("ShardWriter caps records per shard and names shards N-of-M", "[export]") {
  test::TempDir dir;
  ShardWriter w(dir.path(), "data/", "train", Compression::kNone, 4, 0);
  for (int i = 0; i < 10; ++i) REQUIRE(w.Write(Records(i, i + 1)).ok());
  auto shards = w.Finish();
  REQUIRE(shards.ok());
  REQUIRE(shards->size() == 3);
  CHECK((*shards)[0].file == "data/train-00000-of-00003.jsonl");
  CHECK((*shards)[2].file == "data/train-00002-of-00003.jsonl");
  CHECK((*shards)[0].records == 4);
  CHECK((*shards)[2].records == 2);
  const std::string last = test::ReadFile(dir.path() + "/train-00002-of-00003.jsonl");
  CHECK(last == Records(8, 10));
  CHECK((*shards)[2].sha256 == Sha256Hex(last));
  CHECK((*shards)[2].bytes == static_cast<std::int64_t>(last.size()));
  // No temporary files are left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 3);
}

TEST_CASE("ShardWriter caps bytes and an oversized record gets its own shard", "[export]") {
  test::TempDir dir;
  const std::int64_t rec = static_cast<std::int64_t>(Records(0, 1).size());
  ShardWriter w(dir.path(), "", "train", Compression::kNone, 0, rec * 2);
  REQUIRE(w.Write(Records(0, 1)).ok());
  REQUIRE(w.Write(Records(1, 2)).ok());
  REQUIRE(w.Write(Records(2, 3)).ok());
  REQUIRE(w.Write(std::string(rec * 3, 'y') + "\n").ok());
  auto shards = w.Finish();
  REQUIRE(shards.ok());
  REQUIRE(shards->size() == 3);
  CHECK((*shards)[0].records == 2);
  CHECK((*shards)[1].records == 1);
  CHECK((*shards)[2].records == 1);
  for (const ShardInfo& s : *shards) CHECK((s.uncompressed_bytes <= rec * 2 || s.records == 1));
}

TEST_CASE("ShardWriter gzip and zstd shards decompress to the records, checksums of file bytes", "[export]") {
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    test::TempDir dir;
    ShardWriter w(dir.path(), "data/", "validation", c, 0, 0);
    const std::string all = Records(0, 20000);  // > 1 MiB: crosses the internal buffer
    size_t pos = 0;
    while (pos < all.size()) {
      size_t nl = all.find('\n', pos);
      REQUIRE(w.Write(std::string_view(all).substr(pos, nl + 1 - pos)).ok());
      pos = nl + 1;
    }
    auto shards = w.Finish();
    REQUIRE(shards.ok());
    REQUIRE(shards->size() == 1);
    const std::string ext = c == Compression::kGzip ? ".jsonl.gz" : ".jsonl.zst";
    CHECK((*shards)[0].file == "data/validation-00000-of-00001" + ext);
    const std::string bytes = test::ReadFile(dir.path() + "/validation-00000-of-00001" + ext);
    CHECK((*shards)[0].sha256 == Sha256Hex(bytes));
    CHECK((*shards)[0].bytes == static_cast<std::int64_t>(bytes.size()));
    CHECK(bytes.size() < all.size() / 4);
    CHECK((c == Compression::kGzip ? Gunzip(bytes) : Unzstd(bytes)) == all);
    CHECK((*shards)[0].uncompressed_bytes == static_cast<std::int64_t>(all.size()));
  }
}

TEST_CASE("ShardWriter with no records writes no file", "[export]") {
  test::TempDir dir;
  ShardWriter w(dir.path(), "data/", "test", Compression::kZstd, 10, 0);
  auto shards = w.Finish();
  REQUIRE(shards.ok());
  CHECK(shards->empty());
  CHECK(std::filesystem::is_empty(dir.path()));
}
