// SHA-256 digests as lowercase hex: tokenizer and source-file hashes in shards, checkpoint manifests.
#pragma once
#include <cstddef>
#include <string>

namespace cg {

// Hex digest (64 lowercase characters) of n bytes at data.
std::string sha256_hex(const void* data, size_t n);
// Hex digest of a file's bytes, streamed in 1 MiB blocks; throws cg::Error naming the path when it cannot be read.
std::string sha256_file(const std::string& path);
// sha256_file, each file read at most once per process while it stays the same: the digest is kept, keyed by the
// file's device and inode, size, and modification and change times in nanoseconds, and read again once any changes
// (a rewrite in place sets the change time even when the modification time is put back; one within the same tick
// of the file system's clock, a few ms, as the first hash is not seen). For files one run checks several times
// (cgsample's tokenizer and PEFT adapter: a 70B adapter is ~1 GB, seconds a hash); not for checks meant to catch
// bytes that changed in place (a checkpoint manifest's verification reads the file each time).
std::string sha256_file_memo(const std::string& path);

}  // namespace cg
