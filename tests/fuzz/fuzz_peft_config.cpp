// Fuzz harness: a PEFT adapter's adapter_config.json (lora/peft.h), from adapters downloaded off the Hub. The input
// is written as the config next to a fixed, valid adapter_model.safetensors (2 layers of q_proj and v_proj, rank 2;
// the safetensors reader has its own harness). Checks: only cg::Error escapes; an accepted adapter has the file's
// rank, all its factors, target modules and a finite scale (targets that name no tensor are refused later, by
// the model loading the factors).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "lora/peft.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

std::string adapter_dir() {
  static const cg::test::ScratchPath folder("cg_fuzz_peft_" + std::to_string(::getpid()));
  const std::string dir = folder.path.string();
  std::map<std::string, at::Tensor> f;
  for (int layer : {0, 1})
    for (const char* m : {"q_proj", "v_proj"}) {
      const std::string base = "model.layers." + std::to_string(layer) + ".self_attn." + m;
      f[base + ".lora_A.weight"] = at::ones({2, 4});
      f[base + ".lora_B.weight"] = at::ones({4, 2});
    }
  cg::lora::PeftConfig c;
  c.r = 2;
  c.lora_alpha = 4;
  c.target_modules = {"q_proj", "v_proj"};
  cg::lora::write_peft_adapter(dir, c, f);
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = adapter_dir();
  {
    std::ofstream out(dir + "/adapter_config.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  cg::lora::PeftAdapter a;
  if (!cg::fuzz::accepts([&] { a = cg::lora::read_peft_adapter(dir); })) return 0;
  if (a.config.r != 2) cg::fuzz::finding("accepted with r = " + std::to_string(a.config.r) + " for rank-2 factors");
  if (a.factors.size() != 8) cg::fuzz::finding("accepted with " + std::to_string(a.factors.size()) + " factors");
  if (a.config.target_modules.empty()) cg::fuzz::finding("accepted without target modules");
  const double scale = a.config.scale();
  if (!std::isfinite(scale)) cg::fuzz::finding("accepted with a non-finite scale " + std::to_string(scale));
  return 0;
}
