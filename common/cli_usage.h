// CLI11 in the project's words (cgexport, cgsweep): a usage line that names every option, value checks whose errors
// say what was given and what the option takes, and a parse whose errors end with "run TOOL --help", as cgtrain's
// and cgsample's do (tests/scripts/test_help_without_mpi.sh checks that the usage line names each --option the help
// mentions).
#pragma once
#include <CLI/CLI.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/input_error.h"

namespace cg {

struct UsageLine : CLI::Formatter {
  std::string line;
  explicit UsageLine(std::string l) : line(std::move(l)) {}
  std::string make_usage(const CLI::App*, std::string) const override { return line + "\n"; }
};

// A value that must be one of `allowed`: "int7 is not one of fp32, bf16, fp16". The help shows {fp32,bf16,fp16}.
inline CLI::Validator one_of(std::vector<std::string> allowed) {
  const std::string list = fmt::format("{}", fmt::join(allowed, ", "));
  return CLI::Validator(
      [allowed, list](std::string& v) {
        return std::count(allowed.begin(), allowed.end(), v) ? std::string() : v + " is not one of " + list;
      },
      fmt::format("{{{}}}", fmt::join(allowed, ",")));
}

// A value that must be a whole number, at least `min` (CLI11 would say "Could not convert"); `what` says what to give:
// "abc is not a whole number; give a checkpoint step".
inline CLI::Validator whole_number(const std::string& what, long long min = LLONG_MIN) {
  return CLI::Validator(
      [what, min](std::string& v) {
        char* end = nullptr;
        errno = 0;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || errno != 0)
          return fmt::format("{} is not a whole number; give {}", v.empty() ? "''" : v, what);
        return n < min ? fmt::format("{} is below {}; give {}", v, min, what) : std::string();
      },
      "");
}

// app.parse with its errors said as the project says them, naming `tool`: what was given, what the option takes
// (one_of, whole_number), "run TOOL --help". Throws cg::InputError; false after --help (printed), else true.
inline bool parse_options(CLI::App& app, int argc, char** argv, const std::string& tool) {
  app.allow_extras();  // unknown words are named below, as parse_cli names them
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::ArgumentMismatch& e) {  // "--step: 1 required INT missing": an option at the end, no value
    const std::string what = e.what();
    throw InputError(fmt::format("{}: {} needs a value; run {} --help", tool, what.substr(0, what.find(':')), tool));
  } catch (const CLI::RequiredError& e) {  // "--out is required"
    throw InputError(fmt::format("{}: {}; run {} --help", tool, e.what(), tool));
  } catch (const CLI::ParseError& e) {  // ValidationError: "--dtype: int7 is not one of fp32, bf16, fp16"
    throw InputError(fmt::format("{}: {}; run {} --help", tool, e.what(), tool));
  }
  for (const std::string& w : app.remaining())
    throw InputError(fmt::format("{}: {} {}; run {} --help", tool,
                                 w.rfind("-", 0) == 0 ? "unknown option" : "unexpected argument", w, tool));
  return true;
}

}  // namespace cg
