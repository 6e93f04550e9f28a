// SplitThinkTag: moves a leading <think>...</think> block out of an answer into reasoning.
#pragma once

#include <string>

namespace retort {

// If `*content` starts (after optional whitespace) with "<think>" and contains a closing
// "</think>", sets `*reasoning` to the text between the tags (verbatim), replaces `*content`
// with the text after "</think>" minus leading whitespace, and returns true. Otherwise
// (no tag, or an unclosed tag) leaves both untouched and returns false.
bool SplitThinkTag(std::string* content, std::string* reasoning);

}  // namespace retort
