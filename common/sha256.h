// SHA-256 digests as lowercase hex: tokenizer and source-file hashes in shards, checkpoint manifests.
#pragma once
#include <cstddef>
#include <string>

namespace cg {

// Hex digest (64 lowercase characters) of n bytes at data.
std::string sha256_hex(const void* data, size_t n);
// Hex digest of a file's bytes, streamed in 1 MiB blocks; throws cg::Error naming the path when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace cg
