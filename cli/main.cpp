// quill: the command-line tool. Logs and progress go to stderr; stdout carries only results
// (generated text, or JSON with --json). Any error ends with one clear line and a non-zero exit.
#include <cstdio>
#include <exception>
#include <map>

#include "cli/commands.hpp"
#include "cli/util.hpp"
#include "quill.h"

int main(int argc, char** argv) {
  CLI::App app{"quill: quantized LLM inference through OpenCL (NVIDIA GPUs, CPUs through PoCL)", "quill"};
  app.set_version_flag("--version", quill_version());
  app.require_subcommand(1);
  std::map<CLI::App*, quill::cli::Command> commands;
  auto add = [&](quill::cli::Command (*adder)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    quill::cli::Command command = adder(app);
    commands[app.get_subcommands({})[before]] = std::move(command);
  };
  add(quill::cli::add_devices_command);
  add(quill::cli::add_run_command);
  add(quill::cli::add_bench_command);
  add(quill::cli::add_perplexity_command);
  add(quill::cli::add_calibrate_command);
  add(quill::cli::add_quantize_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, command] : commands)
      if (sub->parsed()) return command();
  } catch (const std::exception& e) {
    quill::cli::print_error(e.what());
    return 1;
  }
  return 0;
}
