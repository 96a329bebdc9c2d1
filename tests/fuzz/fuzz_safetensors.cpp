// Fuzz harness: the safetensors reader (model/safetensors.h), which maps base checkpoints and adapters downloaded
// from anywhere. The input is written to a file and opened. Checks: no crash, no sanitizer report (the mapping is
// read only where the header's offsets, checked against the file size, point); only cg::Error escapes; every tensor
// of an accepted file reads whole and as a row block, with the header's shape.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <ATen/ATen.h>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cg::test::ScratchPath file("cg_fuzz_safetensors_" + std::to_string(::getpid()) + ".safetensors");
  const std::string path = file.path.string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  cg::fuzz::accepts([&] {
    cg::model::SafetensorsFile f(path);
    for (const std::string& key : f.keys()) {
      const cg::model::TensorInfo& info = f.info(key);
      const at::Tensor t = f.read(key);
      if (t.sizes().vec() != info.shape) cg::fuzz::finding("tensor " + key + " read with another shape");
      if (!info.shape.empty() && info.shape[0] > 0) {
        const at::Tensor rows = f.read_slice(key, 0, 0, 1);
        if (rows.size(0) != 1) cg::fuzz::finding("row block of " + key + " has the wrong size");
      }
    }
  });
  return 0;
}
