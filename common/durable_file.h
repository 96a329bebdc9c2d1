// Files that survive a crash or a power loss: written next to their name, flushed to disk (fsync), renamed over it,
// and the folder flushed too, so a reader finds the old file or the new one, never a cut one.
#pragma once
#include <string>
#include <vector>

#include "common/error.h"

namespace cg {

// A file operation that failed (create, write, flush, close, rename): `failure` says which, on what path, with the OS
// reason and errno ("cannot write a/b: No space left on device (errno 28)"); what() adds io_advice(err). A caller
// with advice of its own (a checkpoint save: which folders may go; cgsample: which setting) builds its message from
// the two fields.
struct IoError : Error {
  IoError(const std::string& where, std::string failure, int err);  // where: "file.cpp:12"
  std::string failure;
  int err = 0;
};
[[noreturn]] void throw_io_error(const char* file, int line, int err, const std::string& what);
// CG_FAIL_IO(errno, "cannot write {}", path): throws IoError with ": <strerror> (errno N)" after the text.
#define CG_FAIL_IO(err, ...) ::cg::throw_io_error(__FILE__, __LINE__, err, fmt::format(__VA_ARGS__))

// ENOSPC or EDQUOT: no room left on the disk or in the quota. EFBIG is not one: a file size limit frees nothing.
bool disk_full(int err);
// What to do about a failed file operation: "the disk is full: free disk space or <elsewhere>" for disk_full; for a
// read-only file system, a file size limit (ulimit -f), no permission, a folder in a file's place (or a file in a
// folder's), a missing folder, what to fix, "or <elsewhere>"; otherwise <elsewhere> alone (the OS reason in the
// failure says what went wrong). An empty <elsewhere> (the output must stay where it is) is left out.
std::string io_advice(int err, const std::string& elsewhere = "write elsewhere");
// io_advice(err, "") followed by "; ", or "" when there is none: for a message whose own next clause says where the
// output must stay ("...: No space left on device (errno 28); the disk is full: free disk space; then run ...").
std::string io_advice_clause(int err);

// fsync of a file or (directory = true) a folder's entries; throws naming the path.
void fsync_path(const std::string& path, bool directory);

// Writes `path` (created or truncated) and flushes it to disk; throws IoError naming the file. For files inside a
// folder that is itself renamed into place (checkpoint step folders).
void write_file_durable(const std::string& path, const void* data, size_t n);
// The same without the flush: for many small files in a folder that is flushed or renamed into place later (CIFs).
void write_file(const std::string& path, const std::string& text);

// The whole file as bytes; throws naming the path (and `what`, e.g. "tokenizer") when it cannot be read.
std::string read_file(const std::string& path, const char* what = "file");

// Creates output folder `path` (and its parents), named by `what` (a config key or option, e.g. "sample.out_dir"),
// and checks that files can be created in it; else fails saying which setting to change and why (a file in the
// way, a read-only file system, no permission, a full disk). Tools call it before their long work.
void make_output_dir(const std::string& path, const std::string& what);
// What make_output_dir would find, without creating anything (dry runs): `path` or, where it does not exist yet, the
// nearest folder above it that does, must be a folder this process may write in. Fails as make_output_dir does.
void check_output_dir_creatable(const std::string& path, const std::string& what);

// The folders that create_directories(path) would make now, as the path spells them (absolute), outermost first.
std::vector<std::string> missing_folders(const std::string& path);

// A failed run leaves no folder where there was none: made before make_output_dir(path), it notes every folder that
// call will create on the way, as the path spells them (`a/b/../c` makes a, a/b and a/c: a/b is no parent of the
// result); on destruction, unless keep() was called, it removes `path` if it holds nothing but `ignorable` names (a
// lock file, say), and then the other folders it noted, newest first, each only while it is empty.
class MadeFolders {
 public:
  explicit MadeFolders(const std::string& path, std::vector<std::string> ignorable = {});
  ~MadeFolders();
  MadeFolders(const MadeFolders&) = delete;
  MadeFolders& operator=(const MadeFolders&) = delete;
  void keep() { kept_ = true; }
  // Counts `folders` (from missing_folders of a path up to `path`, e.g. FileLock::made_folders) as made by this
  // process too: a lock holder that gave up removed the folders seen at construction, and the waiter re-made them.
  void note_made(const std::vector<std::string>& folders);

 private:
  std::string dir_;
  std::vector<std::string> made_;  // the folders missing at construction, outermost first; none when all were there
  std::vector<std::string> ignorable_;
  bool kept_ = false;
};

// Replaces `path` with `text` as above (path.tmp -> fsync -> rename -> fsync of the folder). On failure (a full
// disk) the temporary file is removed, the old file stays, and the IoError names the file and says what to do.
void write_file_atomic(const std::string& path, const std::string& text);
// The same with a temporary name unique to this process (path + shared_tmp_suffix()): for a file that several
// processes may replace at once (a sweep's status files and summary, written by whichever Slurm array task gets
// there), where a shared path.tmp could be renamed by one process while another is still writing it.
void write_file_atomic_shared(const std::string& path, const std::string& text);
// ".tmp.<host>.<pid>": unique to this process among those of every machine that shares the folder (array tasks on
// other nodes, of a shared filesystem, may have the same pid; in containers with their own pid namespace, likely).
std::string shared_tmp_suffix();

}  // namespace cg
