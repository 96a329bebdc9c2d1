// cgtrain --plan: PlanInputs from the config tree, model::make_plan / format_plan for the numbers.
#include "trainer/train_plan.h"

#include <iostream>

#include "model/accounting.h"
#include "model/llama.h"
#include "trainer/train_model.h"

namespace cg {

std::string train_plan_text(const Config& cfg) {
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
  in.weight_bytes = int64_t(c10::elementSize(model::resolve_dtype(cfg.model.dtype, dev)));
  in.activation_checkpointing = cfg.model.activation_checkpointing;
  in.lora = cfg.lora.enabled;
  in.lora_r = cfg.lora.r;
  in.lora_targets = cfg.lora.targets;
  const model::Plan p = model::make_plan(in);
  std::string out = model::format_plan(in, p);
  if (cfg.parallel.dp <= 0)
    out += "\n(parallel.dp = 0 means world / tp at launch; the plan assumes dp 1: set parallel.dp=N to plan N)\n";
  return out;
}

void print_train_plan(const Config& cfg) { std::cout << train_plan_text(cfg) << std::flush; }

}  // namespace cg
