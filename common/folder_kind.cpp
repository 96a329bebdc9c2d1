#include "common/folder_kind.h"

#include <filesystem>
#include <utility>

#include "common/error.h"

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

void check_no_unfinished_export(const std::string& dir, const std::string& what) {
  std::error_code ec;
  const std::filesystem::path moving = std::filesystem::path(dir) / kExportMovingDir;
  CG_CHECK(!std::filesystem::exists(moving, ec), "{} {} holds {}: cgexport was stopped (killed?) while it moved a "
           "finished export into it, so its files are part the earlier export's, part the new one's; run that "
           "cgexport command again (any cgexport into {} finishes the move first)", what, dir, moving.string(), dir);
}

std::string unfinished_export_note(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path staging = std::filesystem::path(dir) / kExportStagingDir;
  if (!std::filesystem::exists(staging, ec)) return "";
  return " (it holds " + staging.string() + ": a cgexport into it is still running, or was stopped before its export "
         "was complete; wait for it to finish, or run that cgexport command again)";
}

}  // namespace cg
