// LoraAdapter: init (full A drawn then sliced), TP-sharded forward, gather/scatter of the full factors, merge delta.
#include "lora/lora_linear.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <mutex>

#include "common/error.h"
#include "dist/tp_ops.h"

namespace cg::lora {

const char* split_name(Split s) {
  switch (s) {
    case Split::None: return "none";
    case Split::Column: return "column";
    case Split::Row: return "row";
  }
  return "?";
}

double lora_scale(const LoraSpec& spec) {
  CG_CHECK(spec.r > 0, "lora.r must be > 0 (got {})", spec.r);
  return spec.rslora ? spec.alpha / std::sqrt(double(spec.r)) : spec.alpha / double(spec.r);
}

DropoutGen make_dropout_gen(uint64_t seed, const c10::Device& device) {
  // A private generator of the device's kind (a clone of its default, reseeded), so that no other op's draws move
  // the dropout stream and the checkpointed state is this stream alone. Cloning reaches CUDA's generator through
  // the Generator interface, so this builds against a CPU-only libtorch too.
  at::Generator def = at::globalContext().defaultGenerator(device);
  at::Generator g = [&] {
    std::lock_guard<std::mutex> lock(def.mutex());
    return def.clone();
  }();
  g.set_current_seed(seed);
  return std::make_shared<at::Generator>(std::move(g));
}

namespace {
// FNV-1a of the module name mixed with the seed: one independent, tp-independent stream per module.
uint64_t module_seed(const std::string& name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}
std::string shape_str(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + ")";
}
}  // namespace

at::Tensor init_full_A(const std::string& hf_name, int64_t r, int64_t in_features, uint64_t seed) {
  // kaiming_uniform_(a=√5): gain = √(2 / (1 + 5)), bound = gain · √(3 / fan_in) = 1 / √fan_in.
  const double bound = 1.0 / std::sqrt(double(in_features));
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(module_seed(hf_name, seed));
  return at::empty({r, in_features}, at::kFloat).uniform_(-bound, bound, gen);  // (r, in)
}

LoraAdapterImpl::LoraAdapterImpl(std::string hf_name, int64_t in_features, int64_t out_features, Split split,
                                 const LoraSpec& spec, dist::CommPtr tp, DropoutGen dropout_gen)
    : hf_name_(std::move(hf_name)),
      in_(in_features),
      out_(out_features),
      split_(split),
      spec_(spec),
      scale_(lora_scale(spec)),
      tp_(tp ? std::move(tp) : dist::make_self_comm()),
      dropout_gen_(std::move(dropout_gen)) {
  CG_CHECK(spec.dropout >= 0 && spec.dropout < 1, "lora.dropout must be in [0, 1) (got {})", spec.dropout);
  CG_CHECK(split_ != Split::None || tp_size() == 1, "{}: a replicated (Split::None) base layer cannot take LoRA "
           "at tp {}; give it a column or row split in the TP plan", hf_name_, tp_size());
  const int64_t ntp = tp_size(), rank = tp_rank();
  at::Tensor A_full = init_full_A(hf_name_, spec.r, in_, spec.seed);  // (r, in)
  at::Tensor A0 = A_full, B0;
  if (split_ == Split::Row) {
    const int64_t in_local = divide(in_, ntp, "LoRA in_features over tp");
    A0 = A_full.narrow(1, rank * in_local, in_local).contiguous();  // (r, in_local)
    B0 = at::zeros({out_, spec.r}, at::kFloat);                     // (out, r)
  } else if (split_ == Split::Column) {
    const int64_t out_local = divide(out_, ntp, "LoRA out_features over tp");
    B0 = at::zeros({out_local, spec.r}, at::kFloat);  // (out_local, r)
  } else {
    B0 = at::zeros({out_, spec.r}, at::kFloat);  // (out, r)
  }
  A = register_parameter("lora_A", A0);
  B = register_parameter("lora_B", B0);
}

at::Tensor keep_mask(at::IntArrayRef shape, double keep, at::Generator* gen, const c10::Device& device) {
  CG_CHECK(keep > 0 && keep <= 1, "keep probability must be in (0, 1], got {}", keep);
  if (!device.is_cpu()) {  // one Philox draw per element on the GPU is cheap; bernoulli_ is that
    at::Tensor m = at::empty(shape, at::TensorOptions().dtype(at::kBool).device(device));
    return gen ? m.bernoulli_(keep, *gen) : m.bernoulli_(keep);
  }
  at::Tensor m = at::empty(shape, at::TensorOptions().dtype(at::kBool));
  at::Generator g = gen ? *gen : at::detail::getDefaultCPUGenerator();
  auto* impl = at::check_generator<at::CPUGeneratorImpl>(g);
  const uint64_t threshold = static_cast<uint64_t>(std::llround(keep * 65536.0));  // keep lane v iff v < threshold
  bool* d = m.data_ptr<bool>();
  const int64_t n = m.numel();
  std::lock_guard<std::mutex> lock(impl->mutex_);
  for (int64_t i = 0; i < n; i += 4) {
    const uint64_t r = impl->random64();
    for (int64_t j = 0; j < 4 && i + j < n; ++j) d[i + j] = ((r >> (16 * j)) & 0xffff) < threshold;
  }
  return m;
}

at::Tensor LoraAdapterImpl::dropout_mask(const at::Tensor& x) const {
  const double p = spec_.dropout;
  auto shape = x.sizes().vec();
  const int64_t width = x.size(-1);
  const bool sliced = split_ == Split::Row && tp_size() > 1;
  if (sliced) shape.back() = in_;  // draw the full-width mask, keep this rank's columns
  at::Tensor mask = keep_mask(shape, 1.0 - p, dropout_gen_.get(), x.device());
  if (sliced) mask = mask.narrow(-1, tp_rank() * width, width);
  return x * mask;  // bool mask: one byte per element; the 1 / (1 - p) is folded into A by forward
}

at::Tensor LoraAdapterImpl::fused_dropout(const at::Tensor& x) const {
  c10::optional<at::Generator> gen;
  if (dropout_gen_) gen = *dropout_gen_;
  const double keep = 1.0 - spec_.dropout;  // _fused_dropout's p is the keep probability
  if (!(split_ == Split::Row && tp_size() > 1)) return std::get<0>(at::_fused_dropout(x, keep, gen));
  // Row split at tp > 1: the mask the kernel draws for tp 1's full-width input (same shape, same elements), taken
  // as the scaled mask of a tensor of ones and sliced to this rank's columns.
  auto shape = x.sizes().vec();
  const int64_t width = shape.back();
  shape.back() = in_;
  const at::Tensor scaled_mask = std::get<0>(at::_fused_dropout(at::ones(shape, x.options()), keep, gen));
  return x * scaled_mask.narrow(-1, tp_rank() * width, width);  // 0 or 1 / keep
}

at::Tensor LoraAdapterImpl::down(const at::Tensor& x) {
  const int64_t expect = split_ == Split::Row ? A.size(1) : in_;
  TORCH_CHECK(x.size(-1) == expect, hf_name_, ": LoRA input width ", x.size(-1), " != ", expect);
  const auto dtype = x.scalar_type();
  const bool drop = is_training() && spec_.dropout > 0.0;
  at::Tensor xd = x;  // dropout(x), (.., in[_local])
  if (drop) xd = x.is_cuda() ? fused_dropout(x) : dropout_mask(x);
  // Where the mask came unscaled (keep_mask), the 1 / (1 - p) folds into A.
  const at::Tensor a = (drop && !x.is_cuda() ? A * (1.0 / (1.0 - spec_.dropout)) : A).to(dtype);  // (r, in[_local])
  at::Tensor h = at::matmul(xd, a.t());  // (.., r); partial sums over in_local for Row
  if (split_ == Split::Column) h = dist::copy_to_tp(h, tp_);   // backward: dh summed over tp (A is replicated)
  if (split_ == Split::Row) h = dist::reduce_from_tp(h, tp_);  // forward: sum the partial products
  return h;
}

at::Tensor LoraAdapterImpl::up_t(at::ScalarType dtype) const {
  return (B * scale_).to(dtype).t();  // (r, out[_local]), tiny
}

at::Tensor LoraAdapterImpl::forward(const at::Tensor& x) {
  const at::Tensor h = down(x);
  return at::matmul(h, up_t(h.scalar_type()));  // (.., out_local) for Column, (.., out) else
}

at::Tensor LoraAdapterImpl::forward_add(const at::Tensor& x, const at::Tensor& y) {
  const at::Tensor h = down(x);
  const at::Tensor bt = up_t(h.scalar_type());
  TORCH_CHECK(y.size(-1) == bt.size(1) && y.scalar_type() == h.scalar_type(), hf_name_, ": base output (width ",
              y.size(-1), ", ", y.scalar_type(), ") does not fit LoRA's (", bt.size(1), ", ", h.scalar_type(), ")");
  const int64_t r = h.size(-1);
  return at::addmm(y.reshape({-1, y.size(-1)}), h.reshape({-1, r}), bt).view(y.sizes());
}

at::Tensor LoraAdapterImpl::full_A() const {
  at::Tensor a = A.detach().contiguous();
  return A_shard_dim() >= 0 ? tp_->all_gather(a, 1) : a.clone();  // (r, in)
}

at::Tensor LoraAdapterImpl::full_B() const {
  at::Tensor b = B.detach().contiguous();
  return B_shard_dim() >= 0 ? tp_->all_gather(b, 0) : b.clone();  // (out, r)
}

void LoraAdapterImpl::load_full(const at::Tensor& A_full, const at::Tensor& B_full) {
  CG_CHECK(A_full.dim() == 2 && A_full.size(0) == spec_.r && A_full.size(1) == in_,
           "{}: lora_A has shape {}, but r {} on this base model's layer needs ({}, {}): an adapter of another r or "
           "for another base model", hf_name_, shape_str(A_full), spec_.r, spec_.r, in_);
  CG_CHECK(B_full.dim() == 2 && B_full.size(0) == out_ && B_full.size(1) == spec_.r,
           "{}: lora_B has shape {}, but r {} on this base model's layer needs ({}, {}): an adapter of another r or "
           "for another base model", hf_name_, shape_str(B_full), spec_.r, out_, spec_.r);
  at::Tensor a = A_full, b = B_full;
  if (A_shard_dim() >= 0) a = a.narrow(1, tp_rank() * A.size(1), A.size(1));
  if (B_shard_dim() >= 0) b = b.narrow(0, tp_rank() * B.size(0), B.size(0));
  at::NoGradGuard no_grad;
  A.copy_(a);
  B.copy_(b);
}

at::Tensor LoraAdapterImpl::delta_weight_local() const {
  at::NoGradGuard no_grad;
  return at::matmul(B, A) * scale_;  // (out_local, in) for Column, (out, in_local) for Row
}

}  // namespace cg::lora
