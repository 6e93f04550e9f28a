// The retort subcommands. Each Add*Command registers one subcommand on `app`; when that
// subcommand runs, its callback stores the process exit code in `rc`.
#pragma once

#include <CLI/CLI.hpp>

namespace retort::cli {

void AddSimCommand(CLI::App& app, int& rc);      // retort sim       (cmd_sim.cc)
void AddHarvestCommand(CLI::App& app, int& rc);  // retort harvest   (cmd_harvest.cc)
void AddStatusCommand(CLI::App& app, int& rc);   // retort status    (cmd_status.cc)
void AddImportCommand(CLI::App& app, int& rc);   // retort import    (cmd_import.cc)
void AddExportCommand(CLI::App& app, int& rc);   // retort export    (cmd_export.cc)
void AddServeCommand(CLI::App& app, int& rc);    // retort serve     (cmd_serve.cc)
void AddBatchFileCommand(CLI::App& app, int& rc);  // retort batch-file (cmd_batch_file.cc)

}  // namespace retort::cli
