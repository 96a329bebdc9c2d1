#include "common/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace cg {

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  CG_CHECK(fd >= 0, "cannot open {} to flush it to disk: {}", path, std::strerror(errno));
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    CG_FAIL("flushing {} to disk failed: {}; free disk space or write elsewhere", path, std::strerror(err));
  }
  ::close(fd);
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* what, int err) {
    ::unlink(tmp.c_str());
    CG_FAIL("{} {}: {}; free disk space or write elsewhere ({} is unchanged)", what, path, std::strerror(err), path);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create the temporary file for", errno);
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int err = errno;
      ::close(fd);
      fail("cannot write", err);
    }
    p += w;
    n -= size_t(w);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot flush", err);
  }
  if (::close(fd) != 0) fail("cannot close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename the temporary file over", errno);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true);
}

}  // namespace cg
