#include "common/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/durable_file.h"
#include "common/error.h"

namespace cg {

namespace {

// Whether `fd` is still the file at `path`: a holder that gave up may have removed it (remove_file_at_release) after
// this process opened it; a lock on that orphan would guard nothing.
bool same_file(int fd, const std::string& path) {
  struct stat open_st {}, path_st {};
  return ::fstat(fd, &open_st) == 0 && ::stat(path.c_str(), &path_st) == 0 && open_st.st_dev == path_st.st_dev &&
         open_st.st_ino == path_st.st_ino;
}

}  // namespace

FileLock::FileLock(const std::string& path, const std::function<bool()>& keep_waiting) : path_(path) {
  const std::filesystem::path p(path);
  for (;;) {
    // In the loop: a holder that gave up may have removed the folder too (cgtrain's run folder it had made).
    made_folders_.clear();
    if (p.has_parent_path()) {
      made_folders_ = missing_folders(p.parent_path().string());
      std::filesystem::create_directories(p.parent_path());
    }
    // O_EXCL first, to know whether the file is this object's (removable) or was there (a user's, an earlier run's).
    fd_ = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
    created_ = fd_ >= 0;
    // Folders are this object's only with the file it created: a process that opened another's file in a folder it
    // saw missing too (both raced to make it) claims none of it.
    if (!created_) made_folders_.clear();
    if (fd_ < 0 && errno == EEXIST) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0 && errno == ENOENT) continue;  // removed between the two opens
    }
    CG_CHECK(fd_ >= 0, "cannot open lock file {}: {}; make its folder writable, or choose another", path,
             std::strerror(errno));
    while (!(held_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0)) {
      error_ = errno;
      if (error_ != EWOULDBLOCK && error_ != EINTR) break;  // no flock here: the caller decides
      if (!keep_waiting || !keep_waiting()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!held_ || same_file(fd_, path)) return;
    ::close(fd_);  // the holder removed the file as it let go: lock the one at the path now
    fd_ = -1;
    held_ = false;
  }
}

FileLock::~FileLock() {
  // Removed while still held, and only if it is still this file: a process that waits on it then finds it gone.
  if (remove_at_release_ && created_ && held_ && same_file(fd_, path_)) ::unlink(path_.c_str());
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

bool FileLock::held_elsewhere() const { return !held_ && (error_ == EWOULDBLOCK || error_ == EINTR); }

}  // namespace cg
