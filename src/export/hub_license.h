// HubLicense: licence ids of the Hugging Face Hub's dataset-card `license:` field.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace retort {

// The Hub's licence id for `given` when it names one of the Hub's licences, matched without
// regard to case ("MIT" -> "mit", "CC-BY-4.0" -> "cc-by-4.0", "Apache-2.0" -> "apache-2.0");
// nullopt for anything else (the card then says `license: other`). "other" and "unknown" are
// not returned as ids: they are what the card writes when no real id is known. Pure function.
std::optional<std::string> HubLicenseId(std::string_view given);

}  // namespace retort
