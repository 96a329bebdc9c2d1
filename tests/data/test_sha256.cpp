// sha256: FIPS 180-4 test vectors and file hashing across block boundaries.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "common/sha256.h"

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

// The memo: one digest per file while its size and modification time stay, read again once either changes.
TEST(Sha256, MemoHashesAFileOnceWhileItStaysTheSame) {
  namespace fs = std::filesystem;
  const std::string dir = testing::TempDir() + "/sha_memo", path = dir + "/adapter.bin";
  fs::create_directories(dir);
  const auto write = [&](const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; };
  const std::string abc_digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // FIPS 180-4
  write("abc");
  const auto t0 = fs::last_write_time(path);
  EXPECT_EQ(cg::sha256_file_memo(path), abc_digest);
  // Other bytes of the same size with the old time put back: the memo's digest, the file not read again (what
  // makes the second hash free), also under another spelling of the path.
  write("abd");
  fs::last_write_time(path, t0);
  EXPECT_EQ(cg::sha256_file_memo(path), abc_digest);
  EXPECT_EQ(cg::sha256_file_memo(dir + "//./adapter.bin"), abc_digest);
  EXPECT_EQ(cg::sha256_file(path), cg::sha256_hex("abd", 3));  // sha256_file itself keeps nothing
  // A new modification time, same size: read again.
  fs::last_write_time(path, t0 + std::chrono::seconds(5));
  EXPECT_EQ(cg::sha256_file_memo(path), cg::sha256_hex("abd", 3));
  // Another size, the time put back to the first: read again.
  write("abcd");
  fs::last_write_time(path, t0);
  EXPECT_EQ(cg::sha256_file_memo(path), cg::sha256_hex("abcd", 4));
  // Gone: the error of sha256_file, naming the path, not a digest kept from before.
  fs::remove_all(dir);
  EXPECT_THROW(cg::sha256_file_memo(path), cg::Error);
}
