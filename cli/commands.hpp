// The subcommands of the `quill` command-line tool; each registers itself on the CLI11 app and
// returns the function that runs it (exit status).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace quill::cli {

using Command = std::function<int()>;

Command add_devices_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_perplexity_command(CLI::App& app);
Command add_calibrate_command(CLI::App& app);
Command add_quantize_command(CLI::App& app);

}  // namespace quill::cli
