// sha256: FIPS 180-4 test vectors and file hashing across block boundaries.
#include <gtest/gtest.h>

#include <cstdio>
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
