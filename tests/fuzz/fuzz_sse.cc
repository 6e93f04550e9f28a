// Fuzz target: SseParser fed in random splits must produce exactly the events of a one-piece feed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_split.h"
#include "teacher/sse_parser.h"

namespace {

struct Ev {
  std::string event, data, id;
  bool operator==(const Ev&) const = default;
};

std::vector<Ev> Run(const std::vector<std::string_view>& pieces) {
  retort::SseParser p;
  std::vector<Ev> out;
  auto on_event = [&](const retort::SseEvent& e) { out.push_back({e.event, e.data, e.id}); };
  for (std::string_view piece : pieces) p.Feed(piece, on_event);
  p.Finish(on_event);
  // After Finish the parser must behave like a fresh one.
  std::size_t before = out.size();
  p.Feed("data: x\n\n", on_event);
  retort::fuzz::Require(out.size() == before + 1 && out.back().data == "x" && out.back().id.empty(),
                        "parser not reset by Finish");
  out.pop_back();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  const std::uint32_t seed = retort::fuzz::SeedOf(stream);
  std::vector<Ev> whole = Run(retort::fuzz::SplitPieces(stream, 0));
  std::vector<Ev> split = Run(retort::fuzz::SplitPieces(stream, seed));
  retort::fuzz::Require(whole == split, "split feed gave different events than one-piece feed");
  if (stream.size() <= 4096) {  // one Feed call per byte: the hardest split, kept cheap
    std::vector<std::string_view> ones;
    for (std::size_t i = 0; i < stream.size(); ++i) ones.push_back(stream.substr(i, 1));
    retort::fuzz::Require(whole == Run(ones), "byte-by-byte feed gave different events than one-piece feed");
  }
  for (const Ev& e : whole) {
    retort::fuzz::Require(e.event.find_first_of("\r\n") == std::string::npos, "newline in event type");
    retort::fuzz::Require(e.data.find('\r') == std::string::npos, "CR in event data");
    retort::fuzz::Require(e.id.find('\0') == std::string::npos, "NUL in event id");
  }
  return 0;
}
