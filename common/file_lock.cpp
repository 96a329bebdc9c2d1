#include "common/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/error.h"

namespace cg {

FileLock::FileLock(const std::string& path, const std::function<bool()>& keep_waiting) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  CG_CHECK(fd_ >= 0, "cannot open lock file {}: {}", path, std::strerror(errno));
  while (!(held_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0)) {
    error_ = errno;
    if (error_ != EWOULDBLOCK && error_ != EINTR) break;  // no flock here: the caller decides
    if (!keep_waiting || !keep_waiting()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

bool FileLock::held_elsewhere() const { return !held_ && (error_ == EWOULDBLOCK || error_ == EINTR); }

}  // namespace cg
