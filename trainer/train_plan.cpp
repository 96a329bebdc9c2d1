// cgtrain --plan: PlanInputs from the config tree, model::make_plan / format_plan for the numbers.
#include "trainer/train_plan.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "dist/nccl_comm.h"
#include "model/accounting.h"
#include "model/llama.h"
#include "trainer/train_model.h"

namespace cg {

PlanDevice plan_device(const Config& cfg, double device_gb) {
  PlanDevice d;
  if (device_gb > 0) {
    d.bytes = device_gb * 1e9;
    d.what = fmt::format("{:g} GB (--device-gb)", device_gb);
  } else if (cfg.model.device == "cpu") {
    d.bytes = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    d.what = fmt::format("this host's {:.1f} GB (model.device=cpu; --device-gb=N plans another)", d.bytes / 1e9);
  } else if (dist::cuda_device_count() > 0 && dist::cuda_device_memory_bytes(0) > 0) {
    d.bytes = dist::cuda_device_memory_bytes(0);
    d.what = fmt::format("GPU 0, {}, {:.1f} GB (--device-gb=N plans another)", dist::cuda_device_name(0),
                         d.bytes / 1e9);
  }
  return d;
}

namespace {

// Where the shapes came from, in one line: train_llama_config reads model.hf_dir's config.json when the folder is
// there and falls back on model.flavor's preset when it does not exist, as with a shipped config whose hf_dir is a
// path on the cluster not downloaded here yet: a plan of the preset must say so, and one of the checkpoint's own name
// its file. (A file there, or a folder without config.json, was refused by train_llama_config.)
std::string shape_source(const Config& cfg) {
  const std::string& hf_dir = cfg.model.hf_dir;
  if (hf_dir.empty()) return fmt::format("shapes: model.flavor={} preset (no model.hf_dir)", cfg.model.flavor);
  std::error_code ec;
  if (!std::filesystem::is_directory(hf_dir, ec))
    return fmt::format("shapes: model.flavor={} preset (model.hf_dir {} does not exist here, so the plan uses "
                       "model.flavor={}; point model.hf_dir at the downloaded checkpoint to plan its config.json)",
                       cfg.model.flavor, hf_dir, cfg.model.flavor);
  return fmt::format("shapes: {}/config.json (model.hf_dir)", hf_dir);
}

}  // namespace

std::string train_plan_text(const Config& cfg, const PlanDevice& device, bool* fits) {
  model::PlanInputs in;
  // The tokenizer is not read here: a trained one has data.tokenizer_vocab_size pieces, a given one the model's.
  const int64_t vocab = cfg.data.tokenizer == "train" ? cfg.data.tokenizer_vocab_size : 0;
  in.model = train_llama_config(cfg, vocab);
  in.tp = cfg.parallel.tp;
  in.dp = cfg.parallel.dp > 0 ? cfg.parallel.dp : 1;
  in.micro_batch = cfg.train.micro_batch;
  in.seq_len = cfg.train.seq_len;
  in.grad_accum = cfg.train.grad_accum;
  const at::Device dev = cfg.model.device == "cpu" ? at::Device(at::kCPU) : at::Device(at::kCUDA, 0);
  const at::ScalarType dtype = model::resolve_dtype(cfg.model.dtype, dev);
  check_full_param_base(cfg, dtype);  // what the launch would refuse, planned as a mistake (exit 2), not as fitting
  in.weight_bytes = int64_t(c10::elementSize(dtype));
  in.activation_checkpointing = cfg.model.activation_checkpointing;
  in.lora = cfg.lora.enabled;
  in.lora_r = cfg.lora.r;
  in.lora_targets = cfg.lora.targets;
  in.device_memory_bytes = device.bytes;
  in.gpu = cfg.model.device != "cpu";
  const model::Plan p = model::make_plan(in);
  if (fits) *fits = p.fits;
  std::string out = "device memory: " + device.what + "\n" + shape_source(cfg) + "\n" + model::format_plan(in, p);
  if (cfg.parallel.dp <= 0)
    out += "\n(parallel.dp = 0 means world / tp at launch; the plan assumes dp 1: set parallel.dp=N to plan N)\n";
  return out;
}

bool print_train_plan(const Config& cfg, const PlanDevice& device) {
  bool fits = false;
  std::cout << train_plan_text(cfg, device, &fits) << std::flush;
  return fits;
}

}  // namespace cg
