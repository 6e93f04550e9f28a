// retort export: placeholder (replaced below in this branch).
#include "cli/commands.h"

namespace retort::cli {
void AddExportCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("export", "Export a run's responses as training shards");
  sub->callback([&rc] { rc = 2; });
}
}  // namespace retort::cli
