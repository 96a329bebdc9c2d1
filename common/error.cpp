#include "common/error.h"

#include <cstring>

namespace cg {

void throw_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  throw Error(fmt::format("{}:{}: {}", base ? base + 1 : file, line, msg));
}

long divide(long n, long d, const char* what) {
  if (d <= 0 || n % d != 0)
    throw Error(fmt::format("{}: {} is not divisible by {}", what, n, d));
  return n / d;
}

}  // namespace cg
