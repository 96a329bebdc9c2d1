#include "model/accounting.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "model/attention.h"
#include "model/tp_shape.h"

namespace cg::model {

int64_t kv_cache_bytes_per_position(const LlamaConfig& c, int64_t e) {
  return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim() * e;
}

ParamCounts count_parameters(const LlamaConfig& c) {
  ParamCounts p;
  const int64_t d = c.hidden_size, L = c.num_hidden_layers, kv = c.num_key_value_heads * c.head_dim();
  p.embedding = c.vocab_size * d;
  p.lm_head = c.vocab_size * d;
  p.attention = L * (2 * d * d + 2 * d * kv);
  p.mlp = L * 3 * d * c.intermediate_size;
  p.norms = L * 2 * d + d;
  p.total = p.embedding + p.lm_head + p.attention + p.mlp + p.norms;
  p.matmul = p.attention + p.mlp + p.lm_head;
  return p;
}

double activation_bytes_per_token_layer(const LlamaConfig& c, int64_t tp, int64_t e) {
  const double d = c.hidden_size, kv = c.num_key_value_heads * c.head_dim(), I = c.intermediate_size;
  return 4 * d * e + 2 * d * 4 + (2 * d + 2 * kv) * e / tp + 4 * I * e / tp;
}

double cpu_attention_probs_bytes_per_sequence_layer(const LlamaConfig& c, int64_t tp, int64_t T, int64_t e,
                                                   int64_t block) {
  CG_CHECK(T >= 1 && block >= 1, "plan: seq_len {} and the attention block {} must be at least 1", T, block);
  double values = 0;  // per head: query block [t0, t0 + len) sees keys [0, t0 + len)
  for (int64_t t0 = 0; t0 < T; t0 += block) {
    const int64_t len = std::min(block, T - t0);
    values += double(len) * double(t0 + len);
  }
  return double(tp_local(c.num_attention_heads, tp, "num_attention_heads")) * values * double(e);
}

namespace {

struct LinearShape {
  std::string name;
  int64_t in, out;
  bool row;  // row-parallel (o, down) vs column-parallel
};

std::vector<LinearShape> layer_linears(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, kv = c.num_key_value_heads * c.head_dim(), I = c.intermediate_size;
  return {{"q_proj", d, d, false},    {"k_proj", d, kv, false},   {"v_proj", d, kv, false}, {"o_proj", d, d, true},
          {"gate_proj", d, I, false}, {"up_proj", d, I, false}, {"down_proj", I, d, true}};
}

bool targeted(const std::vector<std::string>& targets, const std::string& name) {
  for (const auto& t : targets)
    if (t == name || t == "all-linear") return true;
  return false;
}

}  // namespace

Plan make_plan(const PlanInputs& in) {
  const auto& c = in.model;
  c.validate();
  CG_CHECK(in.tp >= 1 && in.dp >= 1, "plan: tp {} and dp {} must be at least 1", in.tp, in.dp);
  const int64_t tp = in.tp, L = c.num_hidden_layers, d = c.hidden_size, e = in.weight_bytes;
  tp_local(c.num_attention_heads, tp, "num_attention_heads");
  tp_local(c.num_key_value_heads, tp, "num_key_value_heads");
  tp_local(c.intermediate_size, tp, "intermediate_size");
  Plan p;
  p.params = count_parameters(c);
  const int64_t v_local = padded_vocab(c.vocab_size, tp) / tp;
  p.base_params_local = 2 * v_local * d + (p.params.attention + p.params.mlp) / tp + p.params.norms;

  for (const auto& l : layer_linears(c)) {
    if (!targeted(in.lora_targets, l.name)) continue;
    p.lora_params_total += L * in.lora_r * (l.in + l.out);
    // Column base: A (r, in) replicated, B (out / tp, r). Row base: A (r, in / tp), B (out, r) replicated.
    p.lora_params_local += L * in.lora_r * (l.row ? l.in / tp + l.out : l.in + l.out / tp);
  }
  if (!in.lora) p.lora_params_total = p.lora_params_local = 0;
  p.trainable_local = in.lora ? p.lora_params_local : p.base_params_local;

  const double T = in.seq_len, B = in.micro_batch;
  p.tokens_per_step = B * T * in.grad_accum * in.dp;
  const double attn = 12.0 * L * T * d;
  p.flops_per_token = (in.lora ? 4.0 : 6.0) * p.params.matmul + attn + 6.0 * p.lora_params_total;
  p.flops_per_token_hw = p.flops_per_token + (in.activation_checkpointing ? 2.0 * p.params.matmul + attn / 3 : 0.0);
  p.flops_per_step = p.flops_per_token * p.tokens_per_step;

  p.weights = static_cast<double>(p.base_params_local) * e;
  p.trainable_state = in.lora ? 16.0 * p.lora_params_local : static_cast<double>(p.base_params_local) * (e + 8);
  const double per_layer = activation_bytes_per_token_layer(c, tp, e);
  p.activations = in.activation_checkpointing ? B * T * (L * d * e + per_layer) : B * T * L * per_layer;
  p.logits = B * T * v_local * 4.0 * 3;
  if (in.gpu) {
    // A process's own memory before any tensor: the CUDA context and NCCL buffers, and a tenth for slack.
    p.overhead = 2.0 * (1 << 30) + 0.1 * (p.weights + p.trainable_state + p.activations + p.logits);
  } else {
    // The CPU's attention keeps its probabilities (a GPU's fused SDPA keeps none); the parts a CPU rank adds were
    // measured (kCpuProcessBytes, kCpuAllocatorKept).
    const double probs = cpu_attention_probs_bytes_per_sequence_layer(c, tp, in.seq_len, e, kCausalAttentionBlock);
    p.attention_probs = B * probs * (in.activation_checkpointing ? 1 : L);
    // While a layer runs backward the gradients of its activations exist beside them, about as many bytes: with
    // checkpointing (one layer's activations at a time) a tiny rank peaked above the plan without them.
    p.backward_grads = B * T * per_layer;
    p.overhead = kCpuProcessBytes;
    p.allocator = kCpuAllocatorKept * (p.activations + p.attention_probs + p.logits);
  }
  p.total = p.weights + p.trainable_state + p.activations + p.attention_probs + p.backward_grads + p.logits +
            p.overhead + p.allocator;
  p.ranks_sharing = in.gpu ? 1 : tp * in.dp;  // CPU ranks of one run share one host (mpirun -np on one machine)
  p.headroom = in.device_memory_bytes - p.total * double(p.ranks_sharing);
  p.fits = p.headroom >= 0;

  const double ring_tp = tp > 1 ? 2.0 * (tp - 1) / tp : 0.0, ring_dp = in.dp > 1 ? 2.0 * (in.dp - 1) / in.dp : 0.0;
  const int64_t per_micro = tp > 1 ? 2 * (2 * L + 1) + (in.activation_checkpointing ? 2 * L : 0) : 0;
  p.tp_allreduces_per_step = per_micro * in.grad_accum;
  p.tp_bytes_per_step = p.tp_allreduces_per_step * B * T * d * e * ring_tp;
  p.dp_bytes_per_step = static_cast<double>(p.trainable_local) * 4.0 * ring_dp;
  return p;
}

namespace {

// What would lower the need of a plan that does not fit, naming only the changes that exist from here: a larger tp
// only on GPUs (ranks sharing one host add up: there more tp needs more in all) and only where one divides the heads,
// KV heads and MLP (70B at tp 8 has none), fewer ranks where they share the host, a smaller micro-batch only above 1,
// checkpointing only where it is off (advice to set what is already set sends the user in a circle).
std::string what_to_change(const PlanInputs& in, const Plan& p) {
  const auto& c = in.model;
  std::vector<std::string> ways;
  for (int64_t t = in.tp + 1; in.gpu && t <= c.num_key_value_heads; ++t)
    if (c.num_attention_heads % t == 0 && c.num_key_value_heads % t == 0 && c.intermediate_size % t == 0) {
      ways.push_back(fmt::format("raise parallel.tp (to {})", t));
      break;
    }
  if (p.ranks_sharing > 1)
    ways.push_back(fmt::format("run fewer ranks on this host (parallel.tp x parallel.dp = {})", p.ranks_sharing));
  ways.push_back(in.micro_batch > 1 ? "lower train.micro_batch or train.seq_len" : "lower train.seq_len");
  if (!in.activation_checkpointing) ways.push_back("set model.activation_checkpointing=true");
  if (in.gpu) ways.push_back("plan for a GPU with more memory (--device-gb=N)");
  std::string out = ways[0];
  for (size_t i = 1; i < ways.size(); ++i) out += (i + 1 == ways.size() ? ", or " : ", ") + ways[i];
  return out;
}

}  // namespace

std::string format_plan(const PlanInputs& in, const Plan& p) {
  const auto& c = in.model;
  std::ostringstream o;
  auto gb = [](double b) { return fmt::format("{:.2f} GB", b / 1e9); };
  o << fmt::format("model: {} layers, hidden {}, {} heads ({} kv), MLP {}, vocab {}\n", c.num_hidden_layers,
                   c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size, c.vocab_size);
  o << fmt::format("parameters: {} total ({} in matmuls, lm_head's {} among them; {} embedding; {} in norms)\n",
                   p.params.total, p.params.matmul, p.params.lm_head, p.params.embedding, p.params.norms);
  o << fmt::format("grid: tp {} x dp {} = {} ranks; micro-batch {} x seq {} x grad_accum {} -> {:.0f} tokens/step\n",
                   in.tp, in.dp, in.tp * in.dp, in.micro_batch, in.seq_len, in.grad_accum, p.tokens_per_step);
  if (in.lora)
    o << fmt::format("trainable: LoRA r {} on {} layers' targets: {} total, {} per rank\n", in.lora_r,
                     c.num_hidden_layers, p.lora_params_total, p.lora_params_local);
  else
    o << fmt::format("trainable: full fine-tuning, {} per rank\n", p.trainable_local);
  o << fmt::format("FLOPs/token: {:.3g} model ({}N matmul + 12 L T d attention{}), {:.3g} with recompute; "
                   "{:.3g} per step\n", p.flops_per_token, in.lora ? 4 : 6, in.lora ? " + 6 N_lora" : "",
                   p.flops_per_token_hw, p.flops_per_step);
  o << "memory per rank:\n";
  o << fmt::format("  base weights   {:>10}  ({} params at {} B)\n", gb(p.weights), p.base_params_local,
                   in.weight_bytes);
  o << fmt::format("  trainable      {:>10}  ({})\n", gb(p.trainable_state),
                   in.lora ? "fp32 param + grad + AdamW m, v" : "grads + fp32 AdamW m, v");
  const double layer_kb = activation_bytes_per_token_layer(c, in.tp, in.weight_bytes) / 1e3;
  if (in.activation_checkpointing)  // every layer's input kept, one layer's activations at a time (its recompute)
    o << fmt::format("  activations    {:>10}  (checkpointing: {:.0f} KB per token per layer kept, {:.0f} KB per "
                     "token for the layer recomputed)\n", gb(p.activations),
                     double(c.hidden_size) * in.weight_bytes / 1e3, layer_kb);
  else
    o << fmt::format("  activations    {:>10}  (no checkpointing, {:.0f} KB per token per layer)\n", gb(p.activations),
                     layer_kb);
  o << fmt::format("  logits + CE    {:>10}\n", gb(p.logits));
  if (in.gpu) {
    o << fmt::format("  overhead       {:>10}  (2 GiB context/NCCL + 10% slack)\n", gb(p.overhead));
  } else {
    o << fmt::format("  attention P    {:>10}  (CPU attention's saved probabilities, {:.2f} MB a sequence a layer)\n",
                     gb(p.attention_probs),
                     cpu_attention_probs_bytes_per_sequence_layer(c, in.tp, in.seq_len, in.weight_bytes,
                                                                  kCausalAttentionBlock) / 1e6);
    o << fmt::format("  backward grads {:>10}  (the gradients of one layer's activations)\n", gb(p.backward_grads));
    o << fmt::format("  process        {:>10}  (libtorch, MPI and the other libraries, loader, stacks: measured)\n",
                     gb(p.overhead));
    o << fmt::format("  allocator      {:>10}  (freed blocks malloc keeps: {:.0f}% of activations, P, logits)\n",
                     gb(p.allocator), 100 * kCpuAllocatorKept);
  }
  if (p.ranks_sharing > 1)
    o << fmt::format("  total          {:>10}  per rank; x {} ranks on this host = {} of {}\n", gb(p.total),
                     p.ranks_sharing, gb(p.total * double(p.ranks_sharing)), gb(in.device_memory_bytes));
  else
    o << fmt::format("  total          {:>10}  of {}\n", gb(p.total), gb(in.device_memory_bytes));
  o << fmt::format("communication per step and rank: tp {} all-reduces, {}; dp {}\n", p.tp_allreduces_per_step,
                   gb(p.tp_bytes_per_step), gb(p.dp_bytes_per_step));
  o << (p.fits ? fmt::format("fits: yes, {} to spare ({:.0f}% of the device)\n", gb(p.headroom),
                             100.0 * p.headroom / in.device_memory_bytes)
               : fmt::format("fits: NO, over by {}; {}\n", gb(-p.headroom), what_to_change(in, p)));
  return o.str();
}

}  // namespace cg::model

namespace cg::model {

double gpu_peak_bf16_flops(const std::string& device_name) {
  // First match wins: variants before their family (PCIe and NVL cards run at lower clocks than SXM).
  static const std::pair<const char*, double> kPeakTflops[] = {
      {"H100 PCIE", 756}, {"H100 NVL", 835}, {"H200 NVL", 835}, {"H800 PCIE", 756}, {"GH200", 989},
      {"H100", 989},      {"H200", 989},     {"H800", 989},     {"B200", 2250},     {"B100", 1750},
      {"A100", 312},      {"A800", 312},     {"L40S", 362},     {"L40", 181},       {"L4", 121}};
  std::string name = device_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return char(std::toupper(ch)); });
  for (const auto& [pattern, tflops] : kPeakTflops)
    if (name.find(pattern) != std::string::npos) return tflops * 1e12;
  return 0;
}

}  // namespace cg::model
