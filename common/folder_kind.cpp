#include "common/folder_kind.h"

#include <filesystem>

namespace cg {

bool is_peft_adapter_folder(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / "adapter_config.json", ec);
}

bool is_cgtrain_folder(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path d(dir);
  return std::filesystem::exists(d / "manifest.json", ec) || std::filesystem::is_directory(d / "checkpoints", ec);
}

}  // namespace cg
