// sha256: FIPS 180-4 test vectors and file hashing across block boundaries.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/sha256.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(cg::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(cg::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(cg::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(cg::sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileEqualsBuffer) {
  std::string data;
  for (int i = 0; i < 3000000; ++i) data.push_back(char(i * 7 + i / 13));  // spans several 1 MiB reads
  const std::string path = testing::TempDir() + "/sha_test.bin";
  std::ofstream(path, std::ios::binary).write(data.data(), std::streamsize(data.size()));
  EXPECT_EQ(cg::sha256_file(path), cg::sha256_hex(data.data(), data.size()));
  std::remove(path.c_str());
  EXPECT_THROW(cg::sha256_file(path), cg::Error);
}

namespace {

// Bytes this process has read through read(2) so far (/proc/self/io's rchar): a memo hit reads none of the file.
long long bytes_read_so_far() {
  std::ifstream io("/proc/self/io");
  std::string name;
  long long value = 0;
  while (io >> name >> value)
    if (name == "rchar:") return value;
  return -1;
}

// Puts back a file's modification time to the nanosecond, as `touch -d` or an unpacker would.
void set_mtime(const std::string& path, const timespec& mtime) {
  const timespec times[2] = {{0, UTIME_OMIT}, mtime};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Waits until the file system's clock has passed `after` (file times tick coarsely, a few ms on many kernels): a
// write before that could leave the change time equal, which no key of times can tell from no write.
void wait_past_file_clock(const std::string& dir, const timespec& after) {
  const std::string probe = dir + "/clock_probe";
  for (;;) {
    std::ofstream(probe) << "t";
    struct stat st {};
    ASSERT_EQ(::stat(probe.c_str(), &st), 0) << probe;
    if (st.st_ctim.tv_sec != after.tv_sec || st.st_ctim.tv_nsec != after.tv_nsec) break;
  }
  std::filesystem::remove(probe);
}

}  // namespace

// The memo: one digest per file while it stays the same, read again once its size, modification time or change
// time moves (a rewrite in place moves the change time even with the modification time put back).
TEST(Sha256, MemoHashesAFileOnceWhileItStaysTheSame) {
  namespace fs = std::filesystem;
  const std::string dir = testing::TempDir() + "/sha_memo", path = dir + "/adapter.bin";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto write = [&](const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; };
  const auto stat_of = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st;
  };
  const std::string big(4 << 20, 'x');  // 4 MiB: a read of it shows plainly in rchar
  write(big);
  fs::create_hard_link(path, dir + "/link.bin");  // before the first hash: a new link moves the change time
  const std::string big_digest = cg::sha256_hex(big.data(), big.size());
  EXPECT_EQ(cg::sha256_file_memo(path), big_digest);
  // Unchanged, under the same and other spellings of the path and a hard link: the memo's digest, the file not read.
  const long long before = bytes_read_so_far();
  EXPECT_EQ(cg::sha256_file_memo(path), big_digest);
  EXPECT_EQ(cg::sha256_file_memo(dir + "//./adapter.bin"), big_digest);
  EXPECT_EQ(cg::sha256_file_memo(dir + "/link.bin"), big_digest);
  if (before >= 0) EXPECT_LT(bytes_read_so_far() - before, 1 << 20);  // a kernel without /proc/self/io: not seen
  fs::remove(dir + "/link.bin");  // changes the inode's link count and so its change time
  // Other bytes of the same size, the modification time put back to the nanosecond: the new digest (the old key
  // of path, size and modification time kept the first).
  write("abc");
  const timespec t0 = stat_of().st_mtim;
  const std::string abc_digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // FIPS 180-4
  EXPECT_EQ(cg::sha256_file_memo(path), abc_digest);
  wait_past_file_clock(dir, stat_of().st_ctim);
  write("abd");
  set_mtime(path, t0);
  ASSERT_EQ(stat_of().st_size, 3);
  ASSERT_EQ(stat_of().st_mtim.tv_sec, t0.tv_sec);
  ASSERT_EQ(stat_of().st_mtim.tv_nsec, t0.tv_nsec);
  EXPECT_EQ(cg::sha256_file_memo(path), cg::sha256_hex("abd", 3));
  // Another size, the time put back to the first: read again.
  write("abcd");
  set_mtime(path, t0);
  EXPECT_EQ(cg::sha256_file_memo(path), cg::sha256_hex("abcd", 4));
  // Gone: the error of sha256_file, naming the path, not a digest kept from before.
  fs::remove_all(dir);
  EXPECT_THROW(cg::sha256_file_memo(path), cg::Error);
}
