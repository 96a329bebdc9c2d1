// Safetensors files: memory-mapped reading (whole tensors, or a row/column block of one without materialising it)
// and writing, whole (write_safetensors) or streamed one tensor at a time (SafetensorsWriter). Format: u64
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cg::model {

struct TensorInfo {
  std::string dtype;            // "BF16" | "F16" | "F32" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL"
  at::ScalarType scalar_type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

// "BF16" <-> at::kBFloat16 etc.; errors name the unsupported type.
at::ScalarType safetensors_scalar_type(const std::string& dtype);
std::string safetensors_dtype(at::ScalarType t);

class SafetensorsFile {
 public:
  // mmap the file and parse its header; a truncated or malformed file is an error naming the path and the tensor.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& name) const { return infos_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU tensor in the file's dtype, copied out of the mapping.
  at::Tensor read(const std::string& name) const;
  // Indices [start, start + len) of dimension `dim`, all of the others: for a 2-D weight, dim 0 is a row block
  // (one contiguous copy), dim 1 a column block (one strided copy per row). Only the slice is copied.
  at::Tensor read_slice(const std::string& name, int64_t dim, int64_t start, int64_t len) const;
  // Element `flat` (row-major) of a floating-point tensor as a double (exact for every dtype read here): touches one
  // page of the mapping, not the tensor.
  double element(const std::string& name, int64_t flat) const;
  // Hands the mapped pages of `name` back to the kernel (madvise DONTNEED): a reader streaming a big file calls it
  // after read() so the process's resident set does not grow to the file's size. The tensor stays readable (its
  // pages fault in again from the file); pages shared with a neighbouring tensor are dropped too, which is harmless.
  void drop_pages(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

// One tensor of a file's plan: all the header needs before any data exists.
struct TensorEntry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t bytes() const;  // numel * element size
};

// Writes a safetensors file one tensor at a time. The header (offsets included) is fixed by the plan at construction;
// write() then takes the tensors in plan order, each checked against its entry, so only one tensor need exist at a
// time. Bytes go to "<path>.tmp", renamed to path by finish(): path exists only when complete. A failed write (full
// disk: ENOSPC, EFBIG) throws naming the file and the errno text and removes the temp file; so does destroying the
// writer before finish().
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorEntry> plan,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next tensor of the plan (any device, any layout; copied to CPU contiguous): name, dtype and shape must match.
  void write(const std::string& name, const at::Tensor& t);
  // Every planned tensor written: close and rename into place.
  void finish();
  const std::string& path() const { return path_; }
  uint64_t file_bytes() const { return file_bytes_; }  // the complete file's size

 private:
  void put(const void* p, size_t n);
  [[noreturn]] void fail(const std::string& what, int err);
  std::string path_, tmp_;
  std::vector<TensorEntry> plan_;
  size_t next_ = 0;
  int fd_ = -1;
  uint64_t file_bytes_ = 0, written_ = 0;
};

// Write tensors (any dtype, any device; copied to CPU contiguous) in the given order, with string metadata: a
// SafetensorsWriter over all of them (same temp-file and error behaviour).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace cg::model
