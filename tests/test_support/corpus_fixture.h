// Test helper: a temp corpus database with a prompt set, and helpers to read results back.
#pragma once

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "retort/store.h"
#include "store/corpus_json.h"
#include "test_support/temp_dir.h"

namespace retort::test {

// Creates `n` prompts "prompt i: tell me about topic i" in set `set`, keys "p00000".., through the Store API.
inline void AddPrompts(Store& store, const std::string& set, int n, int first = 0) {
  auto set_id = store.CreatePromptSet(set);
  REQUIRE(set_id.ok());
  std::vector<Prompt> ps;
  std::vector<std::string> src;
  for (int i = first; i < first + n; ++i) {
    Prompt p;
    p.messages = {Message{"system", "You are terse."}, Message{"user", "prompt " + std::to_string(i) +
                                                                     ": tell me about topic " + std::to_string(i)}};
    p.content_hash = ContentHash(p.messages);
    char key[16];
    std::snprintf(key, sizeof key, "p%05d", i);
    p.key = key;
    ps.push_back(std::move(p));
    src.push_back("test:" + std::to_string(i + 1));
  }
  std::vector<ImportOutcome> out;
  REQUIRE(store.InsertPrompts(*set_id, ps, src, &out).ok());
}

inline std::unique_ptr<Store> OpenStoreAt(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace retort::test
