// HDF5 shard writer and reader (C API).
#include "data/shard.h"

#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/durable_file.h"
#include "common/error.h"

namespace cg {
namespace {

#define CG_H5(call)                  \
  ([&] {                             \
    errno = 0;                       \
    auto _r = (call);                \
    if (_r < 0) h5_fail(#call, errno); \
    return _r;                       \
  }())

thread_local std::string cur_path;     // for error messages from CG_H5
thread_local bool cur_writing = false;  // write_shard: the advice is about the disk, not a damaged shard

[[noreturn]] void h5_fail(const char* call, int err) {
  const std::string reason = err ? fmt::format(": {} (errno {})", std::strerror(err), err) : std::string();
  if (cur_writing)  // cgprep's shards go to its staging folder, removed on failure: say what became of the folder
    CG_FAIL("cannot write shard {}: HDF5 call failed: {}{}; {}; nothing of this run was kept (an earlier run's shards "
            "in data.shards_dir are as they were)", cur_path, call, reason,
            io_advice(err, "set data.shards_dir to a folder with room, then run cgprep again"));
  CG_FAIL("HDF5 call failed: {} (file {}{}): a damaged or cut-short shard, or a full disk; rerun cgprep (into a "
          "data.shards_dir with free space)", call, cur_path, reason);
}

// Before any other HDF5 call: no error stack printed on failures (ours names the file and what to do), and no HDF5
// cleanup at exit, which closed a file whose flush had failed (a full disk) a second time and crashed.
void quiet_hdf5() {
  static const bool once = [] {
    H5dont_atexit();
    return true;
  }();
  (void)once;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread in thread-safe builds
}

// Closes an hid_t with the given function when it leaves scope.
struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  H5Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Handle() {
    if (id >= 0) close(id);
  }
  operator hid_t() const { return id; }
  H5Handle(const H5Handle&) = delete;
};

template <class T>
hid_t mem_type();
template <> hid_t mem_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t mem_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t mem_type<int8_t>() { return H5T_NATIVE_INT8; }
template <> hid_t mem_type<int16_t>() { return H5T_NATIVE_INT16; }
template <class T>
hid_t file_type();
template <> hid_t file_type<int32_t>() { return H5T_STD_I32LE; }
template <> hid_t file_type<int64_t>() { return H5T_STD_I64LE; }
template <> hid_t file_type<int8_t>() { return H5T_STD_I8LE; }
template <> hid_t file_type<int16_t>() { return H5T_STD_I16LE; }

template <class T>
void write_dataset(hid_t file, const char* name, const std::vector<T>& v) {
  hsize_t dims[1] = {hsize_t(v.size())}, maxdims[1] = {H5S_UNLIMITED};
  H5Handle space(CG_H5(H5Screate_simple(1, dims, maxdims)), H5Sclose);
  H5Handle dcpl(CG_H5(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
  hsize_t chunk[1] = {hsize_t(std::max<size_t>(1, std::min<size_t>(v.size(), (1 << 18) / sizeof(T))))};
  CG_H5(H5Pset_chunk(dcpl, 1, chunk));
  CG_H5(H5Pset_shuffle(dcpl));
  CG_H5(H5Pset_deflate(dcpl, 4));
  H5Handle ds(CG_H5(H5Dcreate2(file, name, file_type<T>(), space, H5P_DEFAULT, dcpl, H5P_DEFAULT)), H5Dclose);
  if (!v.empty()) CG_H5(H5Dwrite(ds, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
}

template <class T>
std::vector<T> read_dataset(hid_t file, const char* name) {
  CG_CHECK(H5Lexists(file, name, H5P_DEFAULT) > 0, "shard '{}' has no dataset '{}': rerun cgprep", cur_path, name);
  H5Handle ds(CG_H5(H5Dopen2(file, name, H5P_DEFAULT)), H5Dclose);
  H5Handle space(CG_H5(H5Dget_space(ds)), H5Sclose);
  CG_CHECK(H5Sget_simple_extent_ndims(space) == 1, "shard '{}': dataset '{}' is not 1-D", cur_path, name);
  hsize_t dims[1];
  CG_H5(H5Sget_simple_extent_dims(space, dims, nullptr));
  std::vector<T> v(dims[0]);
  if (!v.empty()) CG_H5(H5Dread(ds, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
  return v;
}

void write_attr(hid_t obj, const char* name, int64_t v) {
  H5Handle space(CG_H5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Handle a(CG_H5(H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  CG_H5(H5Awrite(a, H5T_NATIVE_INT64, &v));
}

// Variable-length UTF-8 string: h5py returns it as a Python str.
void write_attr(hid_t obj, const char* name, const std::string& v) {
  H5Handle type(CG_H5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CG_H5(H5Tset_size(type, H5T_VARIABLE));
  CG_H5(H5Tset_cset(type, H5T_CSET_UTF8));
  H5Handle space(CG_H5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Handle a(CG_H5(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  const char* p = v.c_str();
  CG_H5(H5Awrite(a, type, &p));
}

void read_attr(hid_t obj, const char* name, int64_t* v) {
  CG_CHECK(H5Aexists(obj, name) > 0, "shard '{}' lacks attribute '{}': rerun cgprep", cur_path, name);
  H5Handle a(CG_H5(H5Aopen(obj, name, H5P_DEFAULT)), H5Aclose);
  CG_H5(H5Aread(a, H5T_NATIVE_INT64, v));
}

void read_attr(hid_t obj, const char* name, std::string* v) {
  CG_CHECK(H5Aexists(obj, name) > 0, "shard '{}' lacks attribute '{}': rerun cgprep", cur_path, name);
  H5Handle a(CG_H5(H5Aopen(obj, name, H5P_DEFAULT)), H5Aclose);
  H5Handle type(CG_H5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CG_H5(H5Tset_size(type, H5T_VARIABLE));
  CG_H5(H5Tset_cset(type, H5T_CSET_UTF8));
  char* p = nullptr;
  CG_H5(H5Aread(a, type, &p));
  *v = p ? p : "";
  if (p) H5free_memory(p);
}

template <class F>
void for_each_attr(ShardMeta& m, F&& f) {
  f("format_version", m.format_version);
  f("split", m.split);
  f("shard_index", m.shard_index);
  f("num_shards", m.num_shards);
  f("tokenizer_sha256", m.tokenizer_sha256);
  f("vocab_size", m.vocab_size);
  f("bos_id", m.bos_id);
  f("eos_id", m.eos_id);
  f("settings", m.settings_json);
  f("source_path", m.source_path);
  f("source_sha256", m.source_sha256);
  f("rows_read", m.rows_read);
  f("rows_used", m.rows_used);
  f("rows_skipped", m.rows_skipped);
  f("skipped", m.skipped_json);
  f("samples", m.samples);
  f("tokens", m.tokens);
}

}  // namespace

void SampleSet::add(const std::vector<int32_t>& toks, int32_t prompt_len, int8_t task, int32_t row, int16_t copy) {
  tokens.insert(tokens.end(), toks.begin(), toks.end());
  offsets.push_back(int64_t(tokens.size()));
  prompt_lens.push_back(prompt_len);
  tasks.push_back(task);
  rows.push_back(row);
  copies.push_back(copy);
}

void SampleSet::append(const SampleSet& o) {
  const int64_t base = int64_t(tokens.size());
  tokens.insert(tokens.end(), o.tokens.begin(), o.tokens.end());
  for (size_t i = 1; i < o.offsets.size(); ++i) offsets.push_back(base + o.offsets[i]);
  prompt_lens.insert(prompt_lens.end(), o.prompt_lens.begin(), o.prompt_lens.end());
  tasks.insert(tasks.end(), o.tasks.begin(), o.tasks.end());
  rows.insert(rows.end(), o.rows.begin(), o.rows.end());
  copies.insert(copies.end(), o.copies.begin(), o.copies.end());
}

std::string shard_path(const std::string& dir, const std::string& split, int64_t index) {
  return fmt::format("{}/{}-{:05d}.h5", dir, split, index);
}

void write_shard(const std::string& path, const SampleSet& s, const ShardMeta& meta_in) {
  cur_path = path;
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  quiet_hdf5();
  cur_writing = true;
  struct Reading {  // back to read advice however this ends
    ~Reading() { cur_writing = false; }
  } reading;
  try {
    H5Handle file(CG_H5(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)), H5Fclose);
    write_dataset(file, "tokens", s.tokens);
    write_dataset(file, "offsets", s.offsets);
    write_dataset(file, "prompt_lens", s.prompt_lens);
    write_dataset(file, "tasks", s.tasks);
    write_dataset(file, "rows", s.rows);
    write_dataset(file, "copies", s.copies);
    ShardMeta meta = meta_in;
    meta.samples = int64_t(s.size());
    meta.tokens = int64_t(s.tokens.size());
    for_each_attr(meta, [&](const char* name, auto& v) { write_attr(file, name, v); });
    if (!meta.derived_properties.empty()) write_attr(file, "derived_properties", meta.derived_properties);
    if (!meta.source_columns.empty()) write_attr(file, "source_columns", meta.source_columns);
    if (!meta.columns_semantics.empty()) write_attr(file, "columns_semantics", meta.columns_semantics);
    if (!meta.property_counts.empty()) write_attr(file, "property_counts", meta.property_counts);
    CG_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
    const hid_t id = file.id;  // closed here, its result checked: the close writes what the flush left
    file.id = -1;
    CG_H5(H5Fclose(id));
    fsync_path(tmp, /*directory=*/false);  // its bytes on disk before its name: no renamed, cut-short shard
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::filesystem::rename(tmp, path, ec);
  CG_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
}

ShardMeta read_shard_meta(const std::string& path) {
  cur_path = path;
  CG_CHECK(std::filesystem::exists(path), "shard '{}' does not exist: run cgprep with this data.shards_dir", path);
  quiet_hdf5();
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CG_CHECK(id >= 0, "cannot open shard '{}': not an HDF5 file or cut short (an interrupted copy?); rerun cgprep", path);
  H5Handle file{id, H5Fclose};
  ShardMeta m;
  for_each_attr(m, [&](const char* name, auto& v) { read_attr(file, name, &v); });
  if (H5Aexists(file, "derived_properties") > 0) read_attr(file, "derived_properties", &m.derived_properties);
  if (H5Aexists(file, "source_columns") > 0) read_attr(file, "source_columns", &m.source_columns);
  if (H5Aexists(file, "columns_semantics") > 0) read_attr(file, "columns_semantics", &m.columns_semantics);
  if (H5Aexists(file, "property_counts") > 0) read_attr(file, "property_counts", &m.property_counts);
  CG_CHECK(m.format_version == kShardFormatVersion, "shard '{}' has format version {}, this build reads {}: rerun cgprep",
           path, m.format_version, kShardFormatVersion);
  return m;
}

SampleSet read_shard(const std::string& path, ShardMeta* meta) {
  ShardMeta m = read_shard_meta(path);
  cur_path = path;
  H5Handle file(CG_H5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose);
  SampleSet s;
  s.tokens = read_dataset<int32_t>(file, "tokens");
  s.offsets = read_dataset<int64_t>(file, "offsets");
  s.prompt_lens = read_dataset<int32_t>(file, "prompt_lens");
  s.tasks = read_dataset<int8_t>(file, "tasks");
  s.rows = read_dataset<int32_t>(file, "rows");
  s.copies = read_dataset<int16_t>(file, "copies");
  const size_t n = s.prompt_lens.size();
  CG_CHECK(s.offsets.size() == n + 1 && s.tasks.size() == n && s.rows.size() == n && s.copies.size() == n &&
               s.offsets.front() == 0 && s.offsets.back() == int64_t(s.tokens.size()),
           "shard '{}' is inconsistent (offsets/tokens/sample arrays disagree): rerun cgprep", path);
  for (size_t i = 0; i < n; ++i)
    CG_CHECK(s.offsets[i] <= s.offsets[i + 1] && s.prompt_lens[i] >= 0 && s.prompt_lens[i] <= s.length(i),
             "shard '{}': sample {} has bad offsets or prompt length: rerun cgprep", path, i);
  // Every id indexes the model's embedding: one past the tokenizer (a shard made by hand with h5py for another
  // tokenizer, or damaged) would fail deep inside the first step, so it is named here.
  CG_CHECK(m.vocab_size > 0, "shard '{}' has vocab_size {}: its tokenizer's size must be recorded (cgprep writes it; "
           "a shard made with h5py needs the attribute vocab_size)", path, m.vocab_size);
  for (size_t k = 0; k < s.tokens.size(); ++k) {
    const int32_t t = s.tokens[k];
    if (t >= 0 && t < m.vocab_size) continue;
    const size_t i = size_t(std::upper_bound(s.offsets.begin(), s.offsets.end(), int64_t(k)) - s.offsets.begin()) - 1;
    CG_FAIL("shard '{}': sample {} holds token id {}, outside the tokenizer's ids 0..{} (vocab_size {}): the shard "
            "was made with another tokenizer, or is damaged; rerun cgprep", path, i, t, m.vocab_size - 1,
            m.vocab_size);
  }
  if (meta) *meta = std::move(m);
  return s;
}

std::vector<std::string> list_shards(const std::string& dir, const std::string& split) {
  std::vector<std::string> out;
  for (int64_t i = 0;; ++i) {
    std::string p = shard_path(dir, split, i);
    if (!std::filesystem::exists(p)) break;
    out.push_back(p);
  }
  CG_CHECK(!out.empty(), "no '{}' shards in '{}' ({} missing): run cgprep with data.shards_dir={}", split, dir,
           shard_path(dir, split, 0), dir);
  return out;
}

}  // namespace cg
