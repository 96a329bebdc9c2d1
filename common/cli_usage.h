// A CLI11 formatter whose usage line is the tool's own: CLI11's says "[OPTIONS]", this one names every option
// (tests/scripts/test_help_without_mpi.sh checks that the usage line names each --option the help mentions).
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <utility>

namespace cg {

struct UsageLine : CLI::Formatter {
  std::string line;
  explicit UsageLine(std::string l) : line(std::move(l)) {}
  std::string make_usage(const CLI::App*, std::string) const override { return line + "\n"; }
};

}  // namespace cg
