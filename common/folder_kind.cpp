#include "common/folder_kind.h"

#include <filesystem>
#include <utility>

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

OwnedBy owned_by_tool(const std::string& dir, std::string* mark) {
  std::error_code ec;
  for (const auto& [file, tool] :
       {std::pair{"cgprep_config.yaml", OwnedBy::kCgprep}, std::pair{"checkpoints", OwnedBy::kCgtrain}})
    if (std::filesystem::exists(std::filesystem::path(dir) / file, ec)) {
      if (mark) *mark = file;
      return tool;
    }
  return OwnedBy::kNone;
}

}  // namespace cg
