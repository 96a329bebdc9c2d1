// Safetensors files: memory-mapped reading (whole tensors, or a row/column block of one without materialising it)
// and writing. Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the raw little-endian data.
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

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

// Write tensors (any dtype, any device; copied to CPU contiguous) in the given order, with string metadata.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace cg::model
