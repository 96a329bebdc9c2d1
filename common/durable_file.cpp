#include "common/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace cg {

IoError::IoError(const std::string& where, std::string failure_, int err_)
    : Error(fmt::format("{}: {}; {}", where, failure_, io_advice(err_))), failure(std::move(failure_)), err(err_) {}

void throw_io_error(const char* file, int line, int err, const std::string& what) {
  const char* base = std::strrchr(file, '/');
  throw IoError(fmt::format("{}:{}", base ? base + 1 : file, line),
                fmt::format("{}: {} (errno {})", what, std::strerror(err), err), err);
}

bool disk_full(int err) { return err == ENOSPC || err == EDQUOT; }

std::string io_advice(int err, const std::string& elsewhere) {
  const std::string or_elsewhere = elsewhere.empty() ? "" : " or " + elsewhere;
  if (disk_full(err)) return "the disk is full: free disk space" + or_elsewhere;
  if (err == EFBIG)
    return "the file is larger than the file system or this process's file size limit (ulimit -f) allows: raise "
           "that limit" + or_elsewhere;
  if (err == EROFS) return "the file system is read-only: remount it writable" + or_elsewhere;
  if (err == EACCES || err == EPERM) return "no permission: fix the folder's permissions" + or_elsewhere;
  if (err == EISDIR || err == ENOTDIR || err == EEXIST)
    return "a folder is where a file should be, or a file where a folder should be: move it" + or_elsewhere;
  if (err == ENOENT) return "its folder does not exist: create it" + or_elsewhere;
  return elsewhere;
}

std::string io_advice_clause(int err) {
  const std::string advice = io_advice(err, "");
  return advice.empty() ? "" : advice + "; ";
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) CG_FAIL_IO(errno, "cannot open {} to flush it to disk", path);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    CG_FAIL_IO(err, "flushing {} to disk failed", path);
  }
  ::close(fd);
}

std::string read_file(const std::string& path, const char* what) {
  std::error_code ec;
  CG_CHECK(!std::filesystem::is_directory(path, ec), "cannot read {} {}: it is a folder, not a file; put the file "
           "there in its place", what, path);
  std::ifstream in(path, std::ios::binary);
  CG_CHECK(in.good(), "cannot read {} {}: {}", what, path, std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  CG_CHECK(!in.bad(), "reading {} {} failed", what, path);
  return ss.str();
}

namespace {

// Writes path (created or truncated), flushed to disk when `flush`; throws IoError naming the file.
void write_whole(const std::string& path, const void* data, size_t n, bool flush) {
  auto fail = [&](const char* what, int err) { CG_FAIL_IO(err, "{} {}", what, path); };
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", errno);
  const char* p = static_cast<const char*>(data);
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
  if (flush && ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot flush to disk", err);
  }
  if (::close(fd) != 0) fail("cannot close", errno);  // NFS reports a full disk here
}

}  // namespace

void write_file_durable(const std::string& path, const void* data, size_t n) { write_whole(path, data, n, true); }

void write_file(const std::string& path, const std::string& text) {
  write_whole(path, text.data(), text.size(), false);
}

void make_output_dir(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CG_CHECK(!fs::exists(path, ec) || fs::is_directory(path, ec), "{} = {} is a file, not a folder: choose a folder",
           what, path);
  CG_CHECK(fs::exists(path, ec) || !fs::is_symlink(path, ec), "{} = {} is a link to {}, which does not exist: create "
           "that folder, or choose another", what, path, fs::read_symlink(path, ec).string());
  // The fix depends on the errno (io_advice): a full disk or quota wants space, a read-only file system a remount, a
  // file on the way a move; any of them is also fixed by another folder.
  const std::string elsewhere = fmt::format("set {} to another folder", what);
  fs::create_directories(path, ec);
  CG_CHECK(!ec, "{} = {}: cannot create the folder: {} (errno {}); {}", what, path, ec.message(), ec.value(),
           io_advice(ec.value(), elsewhere));
  const std::string probe = path + "/.cg_write_probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = errno;
  CG_CHECK(fd >= 0, "{} = {}: cannot create files in it: {} (errno {}); {}", what, path, std::strerror(err), err,
           io_advice(err, elsewhere));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::vector<std::string> missing_folders(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // As spelled, not lexically normalised: through a link, `link/../c` is c beside the link's target (the kernel's
  // reading, create_directories'), not c beside the link.
  const fs::path spelled = fs::absolute(path, ec);
  // create_directories makes each missing prefix of the path as spelled, `..` steps included: the folders it makes
  // are those prefixes (a `.` or `..` step names a folder made or found before it, never a new one).
  std::vector<std::string> missing;
  fs::path at;
  for (const fs::path& part : spelled) {
    at /= part;
    if (part.empty() || part == "." || part == ".." || at == at.root_path()) continue;
    if (!fs::exists(at, ec)) missing.push_back(at.string());
  }
  return missing;
}

MadeFolders::MadeFolders(const std::string& path, std::vector<std::string> ignorable)
    : made_(missing_folders(path)), ignorable_(std::move(ignorable)) {
  std::error_code ec;
  dir_ = std::filesystem::absolute(path, ec).string();
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();  // "out/": the folder "out"
}

void MadeFolders::note_made(const std::vector<std::string>& folders) {
  for (const std::string& f : folders)
    if (std::find(made_.begin(), made_.end(), f) == made_.end()) made_.push_back(f);
  // All are prefixes of one spelled path, so the shorter was made first (the destructor removes newest first).
  std::stable_sort(made_.begin(), made_.end(), [](const std::string& a, const std::string& b) {
    return a.size() < b.size();
  });
}

MadeFolders::~MadeFolders() {
  namespace fs = std::filesystem;
  if (kept_ || made_.empty()) return;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (std::find(ignorable_.begin(), ignorable_.end(), it->path().filename().string()) == ignorable_.end()) return;
  // Only the ignorable files of a folder this launch made: in one that was there, they may be a user's.
  if (std::find_if(made_.begin(), made_.end(), [&](const std::string& m) {
        return fs::path(m).lexically_normal() == fs::path(dir_).lexically_normal();
      }) != made_.end())
    for (const std::string& name : ignorable_) fs::remove(fs::path(dir_) / name, ec);
  // fs::remove takes only an empty folder: one that holds anything (a file put there since) stays, and so do the
  // folders above it.
  for (auto it = made_.rbegin(); it != made_.rend(); ++it)
    if (fs::is_directory(*it, ec) && fs::is_empty(*it, ec)) fs::remove(*it, ec);
}

void check_output_dir_creatable(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::absolute(path, ec).lexically_normal();
  if (!target.has_filename() && target.has_parent_path() && target != target.root_path()) target = target.parent_path();
  fs::path at = target;
  while (!fs::exists(at, ec) && at.has_parent_path() && at != at.root_path()) at = at.parent_path();
  CG_CHECK(fs::is_directory(at, ec), "{} = {}: {} is a file, not a folder: choose a folder", what, path, at.string());
  const std::string in = at == target ? "" : " (in " + at.string() + ", where it would be created)";
  const int err = ::access(at.c_str(), W_OK | X_OK) == 0 ? 0 : errno;
  CG_CHECK(err == 0, "{} = {}: cannot create files{}: {} (errno {}); {}", what, path, in, std::strerror(err), err,
           io_advice(err, fmt::format("set {} to another folder", what)));
}

namespace {

void replace_through(const std::string& tmp, const std::string& path, const std::string& text) {
  try {
    write_file_durable(tmp, text.data(), text.size());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CG_FAIL_IO(err, "cannot rename {} over {} ({} is unchanged)", tmp, path, path);
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) { replace_through(path + ".tmp", path, text); }

std::string shared_tmp_suffix() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string name(host);
  for (char& c : name)  // a file name's part: no '/'
    if (c == '/') c = '_';
  return ".tmp." + name + "." + std::to_string(::getpid());
}

void write_file_atomic_shared(const std::string& path, const std::string& text) {
  replace_through(path + shared_tmp_suffix(), path, text);
}

}  // namespace cg
