// LoraAdapter: the trainable low-rank path added to one frozen linear, sharded like its base layer.
//
// Legend: r = LoRA rank, in/out = the base layer's full features, *_local = this tp rank's share.
//   delta(x) = scale · B · A · dropout(x), scale = alpha / r (rsLoRA: alpha / √r)
//   column-parallel base (W split on out):  A replicated (r, in),        B split (out_local, r)
//       delta(x) = scale · B_local · copy_to_tp(A · dropout(x))            x: (.., in) replicated
//   row-parallel base (W split on in):      A split (r, in_local),       B replicated (out, r)
//       delta(x) = scale · B · reduce_from_tp(A_local · dropout(x_local))  x_local: (.., in_local)
// A is Kaiming-uniform (a = √5, as nn.Linear / PEFT), drawn FULL from a generator seeded by (seed, hf_name) and then
// sliced, so the full A is the same whatever tp; B starts at zero, so the step-0 model equals the base model.
// LoRA parameters are fp32 master weights; the path computes in x's dtype (bf16 on GPUs) with the factors cast to
// it, as autocast would: bf16 activations are never copied to fp32 (a ~4x smaller memory footprint and traffic per
// target than an fp32 detour, which for LoRA on every linear layer is a large share of a 7B step). The dropout's
// 1 / (1 - p) and scale fold into the small factors instead of scaling activations:
// delta(x) = (mask ⊙ x) (A / (1 - p))ᵀ (scale B)ᵀ.
// Dropout masks are drawn at full width from one shared generator (same seed on every tp rank of a dp replica) and
// sliced like x, so every tp degree sees the same mask and replicated A stays identical across tp ranks. On the CPU
// the mask is keep_mask's; on a GPU torch's fused dropout kernel draws it (another stream than the CPU's), with the
// 1 / (1 - p) applied to x there.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "dist/comm.h"

namespace cg::lora {

// How the base layer's weight W (out, in) is split over tp.
enum class Split { None, Column, Row };
const char* split_name(Split s);

struct LoraSpec {
  int64_t r = 8;
  double alpha = 32;
  double dropout = 0.0;
  bool rslora = false;  // scale alpha / sqrt(r) instead of alpha / r
  uint64_t seed = 0;    // A's init: one generator per module, seeded by (seed, hf_name)
};

// alpha / r, or alpha / sqrt(r) with rsLoRA.
double lora_scale(const LoraSpec& spec);

// Shared dropout generator for all adapters of one model (nullptr: dropout uses torch's default generator).
using DropoutGen = std::shared_ptr<at::Generator>;
// A generator of its own for `device` (CPU or that CUDA device), seeded with `seed`: torch's default generators
// are left to everything else.
DropoutGen make_dropout_gen(uint64_t seed, const c10::Device& device);

// A bool mask of `shape` on `device`, each element true with probability `keep`, drawn from gen (nullptr: torch's
// default generator). On CPU every 64-bit draw of the generator gives four elements (16-bit lanes, keep rounded to a
// multiple of 2^-16): 4.5 ms -> ~1 ms for a (8, 512, 256) mask, where bernoulli_ draws once per element. On GPUs it
// is bernoulli_. Deterministic given the generator's state (which activation checkpointing saves and replays).
at::Tensor keep_mask(at::IntArrayRef shape, double keep, at::Generator* gen, const c10::Device& device);

// Kaiming-uniform (a = √5) full A (r, in) for module `hf_name`; the same numbers whatever tp.
at::Tensor init_full_A(const std::string& hf_name, int64_t r, int64_t in_features, uint64_t seed);

class LoraAdapterImpl : public torch::nn::Module {
 public:
  // in/out_features: the base layer's FULL sizes; the adapter allocates its local shards from tp->rank()/size().
  LoraAdapterImpl(std::string hf_name, int64_t in_features, int64_t out_features, Split split, const LoraSpec& spec,
                  dist::CommPtr tp, DropoutGen dropout_gen = nullptr);

  // x: (.., in) for Split::None/Column, (.., in_local) for Split::Row  ->  (.., out_local) for Column, (.., out) else.
  at::Tensor forward(const at::Tensor& x);
  // y + forward(x) for the base layer's output y (its shape), the sum taken by the last matmul (addmm with y as its
  // accumulator: one pass over the output instead of a delta tensor written, then read with y by an add).
  at::Tensor forward_add(const at::Tensor& x, const at::Tensor& y);

  // Full A (r, in) and B (out, r): all-gathered over tp where sharded (collective: every tp rank must call).
  at::Tensor full_A() const;
  at::Tensor full_B() const;
  // Load full A (r, in) and B (out, r) (any dtype/device): keeps this rank's slice, copies into the parameters.
  void load_full(const at::Tensor& A_full, const at::Tensor& B_full);
  // scale · B_local · A_local in the base layer's LOCAL weight shape (out_local, in_local) — merge needs no collective.
  at::Tensor delta_weight_local() const;

  // Which tensor is split over tp (the other is replicated); -1 when replicated.
  int64_t A_shard_dim() const { return split_ == Split::Row && tp_size() > 1 ? 1 : -1; }
  int64_t B_shard_dim() const { return split_ == Split::Column && tp_size() > 1 ? 0 : -1; }

  const std::string& hf_name() const { return hf_name_; }
  Split split() const { return split_; }
  double scale() const { return scale_; }
  const LoraSpec& spec() const { return spec_; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  at::Tensor A;  // (r, in) or (r, in_local) for Row; fp32, trainable
  at::Tensor B;  // (out_local, r) for Column, else (out, r); fp32, trainable

 private:
  int tp_size() const { return tp_ ? tp_->size() : 1; }
  int tp_rank() const { return tp_ ? tp_->rank() : 0; }
  at::Tensor dropout_mask(const at::Tensor& x) const;  // x * keep mask (unscaled; forward folds 1 / (1 - p) into A)
  // GPU: x * mask / (1 - p) in one kernel (torch's fused dropout, from the shared generator; its backward is one
  // kernel too): the bool mask times x ran as a slow mixed-dtype kernel after a separate draw, ~40 ms of a 300 ms
  // 7B all-linear step on an H200.
  at::Tensor fused_dropout(const at::Tensor& x) const;
  at::Tensor down(const at::Tensor& x);  // x -> (.., r): dropout, A, the tp collective (forward's first half)
  at::Tensor up_t(at::ScalarType dtype) const;  // (scale B)^T in dtype: forward's second factor

  std::string hf_name_;
  int64_t in_, out_;
  Split split_;
  LoraSpec spec_;
  double scale_;
  dist::CommPtr tp_;
  DropoutGen dropout_gen_;
};
TORCH_MODULE(LoraAdapter);

}  // namespace cg::lora
