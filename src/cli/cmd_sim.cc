// retort sim: placeholder until the simulator lands.
#include "cli/commands.h"

namespace retort::cli {
void AddSimCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("sim", "Run the built-in teacher simulator (OpenAI- and Anthropic-compatible)");
  sub->callback([&rc] { rc = 2; });
}
}  // namespace retort::cli
