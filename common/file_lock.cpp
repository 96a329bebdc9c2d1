#include "common/file_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
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

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

std::string this_boot_id() {
  std::string id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> id;
  return id;
}

// This process's record, written into the lock file it holds, where the file is empty or holds an earlier record
// (never over other bytes). A process that finds the lock held reads the file at any moment, and the lock is on this
// file, so a new record cannot be renamed into place: it is written over the old one in one pwrite, and the file is
// cut to its length after. In between, the file holds the new record followed by the old one's tail, which the reader
// leaves out (lock_holder_from_text reads the first line): it sees the whole old record or the whole new one, never
// an empty file where a record was (the old order, truncating first, showed one). Best effort: a full disk leaves the
// file empty, and a process that finds the lock held then only cannot name the holder.
void write_holder_record(int fd) {
  char head[4] = {};
  const ssize_t n = ::pread(fd, head, sizeof head, 0);
  if (n < 0 || (n > 0 && std::string(head, static_cast<size_t>(n)) != std::string("pid=").substr(0, size_t(n))))
    return;
  const std::string rec = "pid=" + std::to_string(::getpid()) + " host=" + this_host() + " boot=" + this_boot_id() +
                          "\n";
  const ssize_t written = ::pwrite(fd, rec.data(), rec.size(), 0);
  // Short (a full disk): what lies there may mix the two records, so none is left.
  (void)!::ftruncate(fd, written == static_cast<ssize_t>(rec.size()) ? static_cast<off_t>(rec.size()) : 0);
}

}  // namespace

bool LockHolder::alive_here() const {
  if (!known() || host != this_host() || boot_id.empty() || boot_id != this_boot_id()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

std::string LockHolder::describe() const {
  return known() ? "process " + std::to_string(pid) + " on host " + host : "";
}

LockHolder lock_holder_from_text(const std::string& text) {
  LockHolder h;
  const size_t end = text.find('\n');
  if (text.rfind("pid=", 0) != 0 || end == std::string::npos) return h;  // not a record, or one still being written
  std::istringstream line(text.substr(0, end));
  for (std::string w; line >> w;) {
    if (w.rfind("pid=", 0) == 0) h.pid = std::atol(w.c_str() + 4);
    if (w.rfind("host=", 0) == 0) h.host = w.substr(5);
    if (w.rfind("boot=", 0) == 0) h.boot_id = w.substr(5);
  }
  return h;
}

LockHolder read_lock_holder(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text(kMaxLockRecord, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return lock_holder_from_text(text);
}

LockHolder FileLock::holder() const { return read_lock_holder(path_); }

std::string FileLock::who_holds() const {
  const LockHolder h = holder();
  return h.known() ? h.describe() : "it";
}

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
    if (!held_) return;
    if (same_file(fd_, path)) {
      write_holder_record(fd_);
      return;
    }
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
