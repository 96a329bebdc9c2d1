#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/json_int.h"

namespace cg::model {

at::ScalarType safetensors_scalar_type(const std::string& d) {
  static const std::map<std::string, at::ScalarType> m = {
      {"BF16", at::kBFloat16}, {"F16", at::kHalf},  {"F32", at::kFloat}, {"F64", at::kDouble}, {"I64", at::kLong},
      {"I32", at::kInt},       {"I16", at::kShort}, {"I8", at::kChar},   {"U8", at::kByte},    {"BOOL", at::kBool}};
  auto it = m.find(d);
  CG_CHECK(it != m.end(), "safetensors dtype {} is not supported (BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL)", d);
  return it->second;
}

std::string safetensors_dtype(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return "BF16";
    case at::kHalf: return "F16";
    case at::kFloat: return "F32";
    case at::kDouble: return "F64";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: CG_FAIL("dtype {} cannot be written to safetensors", c10::toString(t));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  CG_CHECK(fd >= 0, "cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ > 0) {
    void* p = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    CG_CHECK(p != MAP_FAILED, "cannot mmap {}: {}", path, std::strerror(errno));
    map_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  try {
    static const std::string kLfs = "version https://git-lfs";
    CG_CHECK(!(map_size_ >= kLfs.size() && std::memcmp(map_, kLfs.data(), kLfs.size()) == 0),
             "{} is a Git LFS pointer file, not the tensors: fetch the real file (git lfs pull, or download it "
             "with huggingface-cli)", path);
    CG_CHECK(map_size_ >= 8, "{} is truncated: {} bytes, not even the 8-byte header length", path, map_size_);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];  // little endian
    CG_CHECK(n <= map_size_ - 8, "{} is truncated: header says {} bytes of JSON but the file has {} bytes", path, n,
             map_size_);
    data_ = map_ + 8 + n;
    const uint64_t data_size = map_size_ - 8 - n;
    nlohmann::json h;
    std::set<std::string> names;  // the header's top-level keys: JSON lets a name repeat, and the last would win
    std::string repeated;
    const nlohmann::json::parser_callback_t note_names = [&](int depth, nlohmann::json::parse_event_t event,
                                                             nlohmann::json& parsed) {
      if (depth == 1 && event == nlohmann::json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second &&
          repeated.empty())
        repeated = parsed.get<std::string>();
      return true;
    };
    try {
      h = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(map_ + 8), n), note_names);
    } catch (const std::exception& e) {
      CG_FAIL("{}: header is not valid JSON ({})", path, e.what());
    }
    CG_CHECK(repeated.empty(), "{}: the header lists tensor {} twice; the file is damaged or badly written", path,
             repeated);
    CG_CHECK(h.is_object(), "{}: the header is not a JSON object of tensors", path);
    for (auto it = h.begin(); it != h.end(); ++it) {
      if (it.key() == "__metadata__") {
        CG_CHECK(it->is_object(), "{}: __metadata__ is not a JSON object", path);
        for (auto m = it->begin(); m != it->end(); ++m) {
          CG_CHECK(m->is_string(), "{}: __metadata__ entry {} is not a string", path, m.key());
          metadata_[m.key()] = m->get<std::string>();
        }
        continue;
      }
      TensorInfo t;
      std::vector<uint64_t> off;
      // Every shape entry and offset an integer that fits: nlohmann would convert 1e30 (undefined), 2.5 or -1.
      const nlohmann::json& e = *it;
      bool ok = e.is_object() && e.contains("dtype") && e.at("dtype").is_string() && e.contains("shape") &&
                e.at("shape").is_array() && e.contains("data_offsets") && e.at("data_offsets").is_array();
      if (ok) {
        t.dtype = e.at("dtype").get<std::string>();
        for (const auto& d : e.at("shape")) ok = json_int64(d, &t.shape.emplace_back()) && ok;
        for (const auto& o : e.at("data_offsets")) ok = json_uint64(o, &off.emplace_back()) && ok;
      }
      CG_CHECK(ok, "{}: header entry of tensor {} is malformed: it needs dtype (string), shape (list of integers) "
               "and data_offsets (two integers >= 0); got {}", path, it.key(), e.dump());
      try {
        t.scalar_type = safetensors_scalar_type(t.dtype);
      } catch (const Error& e) {
        CG_FAIL("{}: tensor {}: {}", path, it.key(), message_of(e));
      }
      CG_CHECK(off.size() == 2 && off[0] <= off[1], "{}: tensor {} has bad data_offsets", path, it.key());
      t.begin = off[0], t.end = off[1];
      uint64_t bytes = c10::elementSize(t.scalar_type);  // element size times the dims, checked for overflow
      for (auto s : t.shape)
        CG_CHECK(s >= 0 && !__builtin_mul_overflow(bytes, static_cast<uint64_t>(s), &bytes),
                 "{}: tensor {} has an impossible shape {}", path, it.key(), c10::str(at::IntArrayRef(t.shape)));
      CG_CHECK(t.end - t.begin == bytes,
               "{}: tensor {} has {} bytes but shape {} of {} needs {}", path, it.key(), t.end - t.begin,
               c10::str(at::IntArrayRef(t.shape)), t.dtype, bytes);
      CG_CHECK(t.end <= data_size, "{} is truncated: tensor {} needs data bytes [{}, {}) but the file has {}", path,
               it.key(), t.begin, t.end, data_size);
      infos_[it.key()] = std::move(t);
    }
    // The data must be indexed whole, tensor after tensor: no overlaps (two tensors reading the same bytes) and no
    // holes, as the format requires and its reference reader checks.
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> spans;
    for (const auto& [name, t] : infos_) spans.push_back({{t.begin, t.end}, name});
    std::sort(spans.begin(), spans.end());
    uint64_t at = 0;
    for (const auto& [span, name] : spans) {
      CG_CHECK(span.first == at, "{}: tensor {} starts at data byte {} where {} (its data overlaps another tensor's or "
               "leaves a hole): the file is damaged or was not written by a safetensors writer", path, name,
               span.first, at == 0 ? "the data starts (0)" : fmt::format("the previous tensor ends ({})", at));
      at = span.second;
    }
    CG_CHECK(at == data_size, "{}: {} bytes after the last tensor's data: the file is damaged", path, data_size - at);
  } catch (...) {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

std::vector<std::string> SafetensorsFile::keys() const {
  std::vector<std::string> k;
  for (const auto& [name, _] : infos_) k.push_back(name);
  return k;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = infos_.find(name);
  CG_CHECK(it != infos_.end(), "{} has no tensor {}", path_, name);
  return it->second;
}

at::Tensor SafetensorsFile::read(const std::string& name) const {
  const auto& t = info(name);
  auto out = at::empty(t.shape, at::TensorOptions().dtype(t.scalar_type));
  // An empty tensor has no storage (data_ptr() is null): memcpy from or to null is undefined even for 0 bytes.
  if (t.end > t.begin) std::memcpy(out.data_ptr(), data_ + t.begin, t.end - t.begin);
  return out;
}

at::Tensor SafetensorsFile::read_slice(const std::string& name, int64_t dim, int64_t start, int64_t len) const {
  const auto& t = info(name);
  const int64_t nd = static_cast<int64_t>(t.shape.size());
  CG_CHECK(dim >= 0 && dim < nd, "{}: slice dim {} of a {}-D tensor", name, dim, nd);
  CG_CHECK(start >= 0 && len >= 0 && start + len <= t.shape[dim], "{}: slice [{}, {}) of dim {} is outside size {}",
           name, start, start + len, dim, t.shape[dim]);
  int64_t outer = 1, inner = static_cast<int64_t>(c10::elementSize(t.scalar_type));
  for (int64_t i = 0; i < dim; ++i) outer *= t.shape[i];
  for (int64_t i = dim + 1; i < nd; ++i) inner *= t.shape[i];
  auto shape = t.shape;
  shape[dim] = len;
  auto out = at::empty(shape, at::TensorOptions().dtype(t.scalar_type));
  if (out.numel() == 0) return out;  // no storage to copy into (see read())
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  const uint8_t* src = data_ + t.begin;
  const int64_t chunk = len * inner, stride = t.shape[dim] * inner;  // bytes
  for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * chunk, src + o * stride + start * inner, chunk);
  return out;
}

double SafetensorsFile::element(const std::string& name, int64_t flat) const {
  const auto& t = info(name);
  const int64_t size = static_cast<int64_t>(c10::elementSize(t.scalar_type));
  CG_CHECK(flat >= 0 && uint64_t(flat + 1) * uint64_t(size) <= t.end - t.begin, "{}: element {} is outside its {} "
           "bytes", name, flat, t.end - t.begin);
  CG_CHECK(at::isFloatingType(t.scalar_type), "{}: element() reads floating-point tensors, this one is {}", name,
           t.dtype);
  // from_blob over one element of the read-only mapping; item() copies it out before anything could write.
  const at::Tensor one = at::from_blob(const_cast<uint8_t*>(data_ + t.begin + uint64_t(flat) * uint64_t(size)), {1},
                                       at::TensorOptions().dtype(t.scalar_type));
  return one.item<double>();
}

void SafetensorsFile::drop_pages(const std::string& name) const {
  const auto& t = info(name);
  if (!map_ || t.end == t.begin) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_ + t.begin) & ~(page - 1);
  const uintptr_t hi = std::min(reinterpret_cast<uintptr_t>(data_ + t.end + page - 1) & ~(page - 1),
                                reinterpret_cast<uintptr_t>(map_ + map_size_ + page - 1) & ~(page - 1));
  // Advice only: a failure leaves the pages resident, nothing else.
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

uint64_t TensorEntry::bytes() const {
  uint64_t n = c10::elementSize(dtype);
  for (auto s : shape) n *= static_cast<uint64_t>(s);
  return n;
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorEntry> plan,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tmp_(path + ".tmp"), plan_(std::move(plan)) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();  // "{}" when empty: readers reject "null"
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& e : plan_) {
    CG_CHECK(!h.contains(e.name), "write_safetensors {}: tensor {} given twice", path, e.name);
    const uint64_t bytes = e.bytes();
    h[e.name] = {{"dtype", safetensors_dtype(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data section 8-byte aligned, as HF writes it
  file_bytes_ = 8 + header.size() + offset;
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) CG_FAIL_IO(errno, "cannot create {}", tmp_);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);
  put(len, 8);
  put(header.data(), header.size());
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) {  // not finished: never leave a partial file behind
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void SafetensorsWriter::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  CG_FAIL_IO(err, "{} {} failed after {} of {} bytes (the partial file was removed)", what, path_, written_,
             file_bytes_);
}

void SafetensorsWriter::put(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd_, c, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("writing", w < 0 ? errno : EIO);
    c += w, n -= static_cast<size_t>(w), written_ += static_cast<uint64_t>(w);
  }
}

void SafetensorsWriter::write(const std::string& name, const at::Tensor& t0) {
  CG_CHECK(fd_ >= 0, "{}: write after finish or a failed write", path_);
  CG_CHECK(next_ < plan_.size(), "{}: tensor {} is beyond the {} planned", path_, name, plan_.size());
  const TensorEntry& e = plan_[next_];
  CG_CHECK(name == e.name, "{}: got tensor {} where the plan has {} (write them in plan order)", path_, name, e.name);
  CG_CHECK(t0.scalar_type() == e.dtype && t0.sizes().vec() == e.shape, "{}: tensor {} is {} {} but the plan says {} {}",
           path_, name, c10::toString(t0.scalar_type()), c10::str(t0.sizes()), c10::toString(e.dtype),
           c10::str(at::IntArrayRef(e.shape)));
  const at::Tensor t = t0.detach().to(at::kCPU).contiguous();
  if (e.bytes() > 0) put(t.data_ptr(), e.bytes());
  ++next_;
}

void SafetensorsWriter::finish() {
  CG_CHECK(fd_ >= 0, "{}: finish twice or after a failed write", path_);
  CG_CHECK(next_ == plan_.size(), "{}: finish after {} of {} planned tensors (next: {})", path_, next_, plan_.size(),
           plan_[next_].name);
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {  // on disk before it takes its name: a power loss never leaves a named, cut file
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_.c_str());
    CG_FAIL_IO(err, "flushing {} to disk failed (the partial file was removed)", tmp_);
  }
  if (::close(fd) != 0) {  // NFS and friends report a full disk here
    const int err = errno;
    ::unlink(tmp_.c_str());
    CG_FAIL_IO(err, "closing {} failed (the partial file was removed)", tmp_);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    CG_FAIL("cannot rename {} to {}: {}", tmp_, path_, std::strerror(err));
  }
  const std::string parent = std::filesystem::path(path_).parent_path().string();
  fsync_path(parent.empty() ? "." : parent, true);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorEntry> plan;
  for (const auto& [name, t] : tensors) plan.push_back({name, t.scalar_type(), t.sizes().vec()});
  SafetensorsWriter w(path, std::move(plan), metadata);
  for (const auto& [name, t] : tensors) w.write(name, t);
  w.finish();
}

}  // namespace cg::model
