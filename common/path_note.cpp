#include "common/path_note.h"

#include <spdlog/fmt/fmt.h>

#include <filesystem>

namespace cg {

std::string relative_path_note(const std::string& path, const std::string& who) {
  if (!std::filesystem::path(path).is_relative()) return "";
  std::error_code ec;
  return fmt::format(" in {} (relative paths are read from the folder {} runs in)",
                     std::filesystem::current_path(ec).string(), who);
}

}  // namespace cg
