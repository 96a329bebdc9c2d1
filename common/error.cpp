#include "common/error.h"

#include <cstring>

namespace cg {

void throw_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  throw Error(fmt::format("{}:{}: {}", base ? base + 1 : file, line, msg));
}

std::string message_of(const Error& e) {
  const std::string m = e.what();
  const size_t colon = m.find(':'), space = m.find(' ');
  if (colon == std::string::npos || colon == 0 || (space != std::string::npos && space < colon)) return m;
  size_t i = colon + 1, digits = 0;
  while (i < m.size() && m[i] >= '0' && m[i] <= '9') ++i, ++digits;
  return digits > 0 && m.compare(i, 2, ": ") == 0 ? m.substr(i + 2) : m;
}

long divide(long n, long d, const char* what) {
  if (d <= 0 || n % d != 0)
    throw Error(fmt::format("{}: {} is not divisible by {}", what, n, d));
  return n / d;
}

}  // namespace cg
