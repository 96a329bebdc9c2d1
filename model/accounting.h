// Accounting for `cgtrain --plan`: parameter counts, FLOPs per token, per-rank memory and per-step communication
// of a LLaMA run at a given tp x dp, micro-batch and sequence length. Estimates, with the formulas stated here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace cg::model {

// Full-model parameter counts (vocabulary unpadded). 7B = 6,738,415,616; 13B = 13,015,864,320; 70B = 68,976,648,192.
struct ParamCounts {
  int64_t embedding = 0;  // V d
  int64_t lm_head = 0;    // V d (untied)
  int64_t attention = 0;  // L (2 d^2 + 2 d kv_dim)          kv_dim = n_kv_heads * head_dim
  int64_t mlp = 0;        // L (3 d I)
  int64_t norms = 0;      // L (2 d) + d
  int64_t total = 0;
  int64_t matmul = 0;     // attention + mlp + lm_head: the weights every token multiplies (FLOPs count these)
};
ParamCounts count_parameters(const LlamaConfig& c);

// KV-cache bytes of one cached position of one sequence: 2 (keys, values) L n_kv_heads head_dim e.
// 7B (e 2): 524,288 (0.5 MiB); 70B (8 kv heads): 327,680.
int64_t kv_cache_bytes_per_position(const LlamaConfig& c, int64_t e);

struct PlanInputs {
  LlamaConfig model;
  int64_t tp = 1, dp = 1;
  int64_t micro_batch = 1;           // sequences per rank per micro-step (B)
  int64_t seq_len = 1024;            // T
  int64_t grad_accum = 1;
  int64_t weight_bytes = 2;          // per base weight element: bf16 2, fp32 4
  bool activation_checkpointing = false;
  bool lora = true;                  // false: full fine-tuning (every base weight trained)
  int64_t lora_r = 8;
  std::vector<std::string> lora_targets = {"q_proj", "v_proj"};  // or "all-linear"
  double device_memory_bytes = 80e9;  // one accelerator (80 GB H100/A100), or the host's memory on CPU
  bool gpu = true;                    // false (model.device=cpu): no CUDA context, every rank shares the host memory
};

// A CPU rank's own memory before any tensor, measured on configs/tiny.yaml (docs/performance.md, "CPU memory"):
// the shared libraries' resident pages (Debian's libtorch 1.13 and what it links, 132 MiB; OpenMPI's shared-memory
// segments add 3.5 MiB at tp 2), the heap's non-tensor objects (torch's operator registry, the tokenizer, the
// loader's samples: 42 MiB in all with 5000 rows a split) and thread stacks with OpenBLAS's buffer (7 MiB): 184.5 MiB,
// rounded up to 192 MiB.
constexpr double kCpuProcessBytes = 192.0 * (1 << 20);
// glibc's malloc keeps freed blocks in the heap (dist::keep_freed_heap_memory, so a step does not fault its
// activations in again); the free ones it holds beside the live tensors at the peak came to 22-51% of a step's
// activation, attention and logit bytes on the tiny model (micro-batch 1-4): a CPU rank counts half of those bytes.
constexpr double kCpuAllocatorKept = 0.5;

struct Plan {
  ParamCounts params;
  int64_t base_params_local = 0;     // base weights on one rank (vocabulary padded to a multiple of tp)
  int64_t lora_params_total = 0;
  int64_t lora_params_local = 0;
  int64_t trainable_local = 0;       // LoRA params, or base_params_local for full fine-tuning
  double tokens_per_step = 0;        // B T grad_accum dp
  // FLOPs per token, whole model: base matmuls x (4 with a frozen base: forward + input grads; 6 in full training)
  // + attention 12 L T d (QK^T and AV, forward 4 L T d, backward 8 L T d; causal masking not subtracted)
  // + LoRA 6 N_lora. flops_per_token_hw adds the recompute forward (2 N_matmul + 4 L T d) with checkpointing.
  double flops_per_token = 0, flops_per_token_hw = 0, flops_per_step = 0;
  // Per-rank memory in bytes.
  double weights = 0;                // base_params_local * weight_bytes
  double trainable_state = 0;        // LoRA: 16 B/param (fp32 param, grad, AdamW m, v); full: grad at weight_bytes + 8
  double activations = 0;            // see activation_bytes_per_token_layer; B T per micro-step
  double logits = 0;                 // B T V_local fp32 x 3 (logits, their gradient, CE softmax)
  double attention_probs = 0;        // CPU only: B x cpu_attention_probs_bytes_per_sequence_layer, x L (x 1 with
                                     // checkpointing: one layer recomputed at a time); a GPU's fused SDPA keeps none
  double overhead = 0;               // GPU: 2 GiB (CUDA context, NCCL buffers) + 10% of the above (slack);
                                     // CPU: kCpuProcessBytes, the rank's memory before its tensors
  double backward_grads = 0;         // CPU only: B T activation_bytes_per_token_layer, the gradients of the layer
                                     // that runs backward (on a GPU the 10% slack stands in for them)
  double allocator = 0;              // CPU only: kCpuAllocatorKept x (activations + attention_probs + logits)
  double total = 0;                  // one rank
  int64_t ranks_sharing = 1;         // ranks whose memory adds up against device_memory_bytes: 1 a GPU, tp dp on CPU
  double headroom = 0;               // device_memory_bytes - total * ranks_sharing
  bool fits = false;
  // Communication per optimizer step, bytes each rank sends (ring all-reduce of S bytes sends 2 (n-1)/n S).
  int64_t tp_allreduces_per_step = 0;  // activations (B, T, d): (2L + 1) forward + (2L + 1) backward [+ 2L recompute]
  double tp_bytes_per_step = 0;
  double dp_bytes_per_step = 0;        // trainable gradients (fp32), once per optimizer step
};

// Saved activations of one decoder layer per token on one tp rank, in bytes (activations at weight_bytes, no sequence
// parallelism, fused SDPA keeping no (T, T) matrix):
//   replicated: layer input, normed input, residual h, normed h: 4 d e  + RMSNorm fp32 copies 2 d 4
//   attention:  q, k, v after rope and the SDPA output: (2 d + 2 kv_dim) e / tp
//   MLP:        gate, up, silu(gate), silu(gate) * up: 4 I e / tp
// With activation checkpointing a layer keeps only its input (d e) and one layer's full set exists at a time.
double activation_bytes_per_token_layer(const LlamaConfig& c, int64_t tp, int64_t e);

// The softmax probabilities that training's block-causal attention on a CPU (causal_attention, model/attention.h)
// saves for its backward, per sequence and layer on one tp rank, in bytes: each of the H / tp heads keeps, for each
// query block i of `block` positions, its (len_i, t1_i) probabilities, t1_i the keys up to the block's last position:
// sum over blocks of len_i t1_i = T^2 / 2 + T block / 2 values where block divides T, at e bytes (the activations'
// dtype). Tiny flavor, T 512, block 32, fp32: 8 x 139,264 x 4 = 4,456,448 B. Not in activation_bytes_per_token_layer,
// which counts a fused SDPA (GPUs) that keeps no (T, T) matrix; it grows with T^2, not T.
double cpu_attention_probs_bytes_per_sequence_layer(const LlamaConfig& c, int64_t tp, int64_t T, int64_t e,
                                                   int64_t block);

Plan make_plan(const PlanInputs& in);

// Dense bf16 tensor-core peak (FLOP/s) of a GPU from the name its driver reports ("NVIDIA H100 80GB HBM3",
// "NVIDIA A100-SXM4-80GB"), from the vendors' data sheets; 0 when the name is not known (MFU is then not shown).
double gpu_peak_bf16_flops(const std::string& device_name);
// A human-readable report (the `cgtrain --plan` output), ending with whether it fits and by how much.
std::string format_plan(const PlanInputs& in, const Plan& p);

}  // namespace cg::model
