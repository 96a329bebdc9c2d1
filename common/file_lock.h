// FileLock: an exclusive flock(2) on a file, held for the object's lifetime. The kernel releases it when the process
// ends however it ends (kill -9 included), so a stale lock file never blocks a later run.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace cg {

// Who holds a lock: FileLock writes it into the lock file once it holds it ("pid=P host=H boot=B"), for a process that
// finds the lock held to name the holder, and to tell a live process on its own machine (waiting for it is pointless)
// from a lock a network filesystem keeps for a dead node (waiting may end it).
struct LockHolder {
  long pid = 0;
  std::string host, boot_id;  // gethostname; the kernel's boot id (a reboot makes every earlier pid dead)
  bool known() const { return pid > 0 && !host.empty(); }
  // Whether it is a running process of this machine since its last boot (so the lock is really held).
  bool alive_here() const;
  std::string describe() const;  // "process P on host H", or "" when not known
};

// The record in the lock file at `path` (not known where there is none: an empty file, an older version's).
LockHolder read_lock_holder(const std::string& path);
// The record at the start of a lock file's `text`: its first line, which starts with "pid=" and ends in a newline.
// Anything after that line (the tail of a longer earlier record, while the holder writes its own) is left out; a
// text without a whole first line (empty, another file's bytes, a record cut short) names no holder.
LockHolder lock_holder_from_text(const std::string& text);
// The most of a lock file read for its record (a host name is at most 255 bytes).
inline constexpr size_t kMaxLockRecord = 1024;

class FileLock {
 public:
  // Creates `path` (and its folder) if needed and tries to lock it: once, or, with `keep_waiting`, every 100 ms for
  // as long as it returns true while another process holds the lock. Throws when the file cannot be opened.
  explicit FileLock(const std::string& path, const std::function<bool()>& keep_waiting = nullptr);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  bool locked() const { return held_; }
  // errno of the last failed try: EWOULDBLOCK when another process holds the lock; anything else (ENOLCK, ENOSYS,
  // EOPNOTSUPP) when the filesystem has no flock (some Lustre and NFS mounts).
  int error() const { return error_; }
  bool held_elsewhere() const;
  // read_lock_holder of its file: while held_elsewhere, the present holder's record.
  LockHolder holder() const;
  // The holder for a refusal's "(WHO holds PATH)": "process P on host H", or "it" where the file names none.
  std::string who_holds() const;
  // True when this object created the file (it was not there before), not a user's file or an earlier run's.
  bool created() const { return created_; }
  // When the lock is let go (destruction), remove the file too, if this object created it and holds it: a launch
  // that gives up leaves no lock file where there was none. A process waiting on the removed file tries again on
  // the path (see the constructor), so two never hold "the" lock at once.
  void remove_file_at_release(bool remove) { remove_at_release_ = remove; }
  // The folders (absolute, outermost first) that this object made for the file it created and locked, none where it
  // found them: after a holder that gave up removed the folder it had made, the waiter makes it again, and a caller
  // that removes what it made when it gives up (MadeFolders::note_made) must count these as its own.
  const std::vector<std::string>& made_folders() const { return made_folders_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool held_ = false;
  bool created_ = false;
  bool remove_at_release_ = false;
  int error_ = 0;
  std::vector<std::string> made_folders_;
};

}  // namespace cg
