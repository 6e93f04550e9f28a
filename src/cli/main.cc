// retort: command-line entry point. A thin shell over the retort_core library.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"retort: build distillation corpora from a teacher model"};
  app.set_version_flag("--version", std::string("retort ") + RETORT_VERSION);
  app.require_subcommand(1);
  int rc = 0;
  retort::cli::AddHarvestCommand(app, rc);
  retort::cli::AddStatusCommand(app, rc);
  retort::cli::AddSimCommand(app, rc);
  retort::cli::AddServeCommand(app, rc);
  retort::cli::AddImportCommand(app, rc);
  retort::cli::AddExportCommand(app, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every other parse error is a usage error: exit code 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return rc;
}
