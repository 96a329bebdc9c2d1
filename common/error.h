// Errors that tell the user what to change: cg::Error carries file:line and a formatted message.
#pragma once
#include <spdlog/fmt/fmt.h>

#include <stdexcept>
#include <string>

namespace cg {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A failed call of this process into MPI, NCCL or CUDA (CG_CHECK_MPI and its kin, dist/check.h): its own trouble,
// not its input's, so every_rank_alike (common/input_error.h) lets it pass and its rank says it at once, not after
// run_main's wait.
struct CallError : Error {
  using Error::Error;
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);

// e's message without the "file:line: " that throw_error puts first: for an error rethrown with more context.
std::string message_of(const Error& e);

// divide(n, d): n / d, or an error that names both numbers and what they are.
long divide(long n, long d, const char* what);

}  // namespace cg

// CG_CHECK(cond, "fmt {}", args...): throw cg::Error("file:line: message") when cond is false.
#define CG_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) ::cg::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)

#define CG_FAIL(...) ::cg::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__))
