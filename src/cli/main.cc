// retort: command-line entry point. A thin shell over the retort_core library.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "cli/did_you_mean.h"

int main(int argc, char** argv) {
  // A peer closing a connection must be an error value, not a fatal signal; a file-size limit
  // (RLIMIT_FSIZE, a full quota) must make writes fail with EFBIG, which the store reports.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
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
  retort::cli::AddBatchFileCommand(app, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every other parse error is a usage error: exit code 2. A
    // misspelled command or option is named, with the closest known one.
    if (e.get_exit_code() == 0) return app.exit(e);
    if (std::optional<std::string> msg = retort::cli::ExplainUnknownArgument(app, {argv + 1, argv + argc})) {
      std::cerr << "retort: error: " << *msg << "\nRun with --help for more information.\n";
      return 2;
    }
    app.exit(e);
    return 2;
  }
  return rc;
}
