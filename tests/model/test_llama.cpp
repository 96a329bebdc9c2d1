// cg::model::Llama on one device: against a naive double-precision reference, KV-cache decoding, activation
// checkpointing gradients, tp-independent initialisation, HF parameter names, and tp shape errors.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <random>

#include "common/error.h"
#include "model/decode_kernels.h"
#include "model/llama.h"
#include "reference_llama.h"
#include "tests/model/small_llama.h"

#ifdef CG_HAVE_CUDA_KERNELS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

using namespace cg::model;

namespace {

// Initialised with larger weights than the default so every term moves the logits, and norm scales != 1.
Llama make_model(const LlamaConfig& c, TpShape tp = {}, uint64_t seed = 7) {
  Llama m(c, tp, at::TensorOptions().dtype(at::kFloat));
  init_weights(*m, seed, 0.15);
  at::NoGradGuard ng;
  for (auto& s : m->param_specs())
    if (s.full_shape.size() == 1) s.param.add_(at::arange(s.param.numel(), at::kFloat).sin() * 0.3);
  return m;
}

at::Tensor tokens_for(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(V, {B, T}, g, at::TensorOptions().dtype(at::kLong));
}

// m's forward over tok (B, T) against the naive double-precision reference on m's own weights: the largest
// |logit - reference logit| and the largest |reference logit|.
std::pair<double, double> error_against_reference(Llama& m, const at::Tensor& tok) {
  const auto& c = m->config();
  cg::test::RefLlama ref{c, {}};
  for (const auto& s : m->param_specs()) ref.w[s.name] = s.param.detach().to(at::kDouble).contiguous();
  std::vector<std::vector<int64_t>> seqs(tok.size(0));
  for (int64_t b = 0; b < tok.size(0); ++b)
    for (int64_t t = 0; t < tok.size(1); ++t) seqs[b].push_back(tok[b][t].item<int64_t>());
  at::NoGradGuard ng;
  const auto logits = m->forward(tok);
  const auto want = ref.forward(seqs);
  double max_err = 0, max_abs = 0;
  for (int64_t b = 0; b < tok.size(0); ++b)
    for (int64_t t = 0; t < tok.size(1); ++t)
      for (int64_t v = 0; v < c.vocab_size; ++v) {
        max_err = std::max(max_err, std::abs(logits[b][t][v].item<double>() - want[b][t][v]));
        max_abs = std::max(max_abs, std::abs(want[b][t][v]));
      }
  return {max_err, max_abs};
}

}  // namespace

TEST(Llama, ParameterNamesAreTheHfKeys) {
  auto m = make_model(cg::test::small_llama());
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  std::set<std::string> expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    for (const char* n : {".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
                          ".self_attn.o_proj.weight", ".mlp.gate_proj.weight", ".mlp.up_proj.weight",
                          ".mlp.down_proj.weight", ".input_layernorm.weight", ".post_attention_layernorm.weight"})
      expected.insert(p + n);
  }
  EXPECT_EQ(names, expected);
  std::set<std::string> specs;
  for (const auto& s : m->param_specs()) specs.insert(s.name);
  EXPECT_EQ(specs, expected);
  EXPECT_EQ(m->linears().size(), 14u);
  EXPECT_EQ(m->linears()[3]->hf_name, "model.layers.0.self_attn.o_proj");
  EXPECT_EQ(m->linears()[3]->style, ParallelStyle::Row);
}

TEST(Llama, LogitsMatchNaiveDoubleReference) {
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  const auto tok = tokens_for(2, 6, c.vocab_size, 3);
  {
    at::NoGradGuard ng;
    const auto logits = m->forward(tok);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 6, c.vocab_size}));
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
  }
  const auto [max_err, max_abs] = error_against_reference(m, tok);
  EXPECT_GT(max_abs, 0.3);  // the logits are not trivially small
  EXPECT_LT(max_err, 2e-5) << "max |logit| " << max_abs;
}

TEST(Llama, ConfigRopeThetaAndRmsNormEpsReachEveryPath) {
  // config.json's rope_theta (Code Llama's 1e6) and rms_norm_eps (LLaMA-2's first release: 1e-6) must be what the
  // model computes with, not LLaMA-2's 1e4 and 1e-5 that the other tests use: the forward against the naive
  // reference, then cached decoding with decode_step, unfused and fused, against that forward. eps 1e-2 moves the
  // logits far past the tolerances.
  auto c = cg::test::small_llama();
  c.rope_theta = 1e6, c.rms_norm_eps = 1e-2;
  auto m = make_model(c);
  const auto tok = tokens_for(2, 6, c.vocab_size, 3);
  EXPECT_LT(error_against_reference(m, tok).first, 2e-5);
  at::NoGradGuard ng;
  const auto full = m->forward(tok);  // (2, 6, V)
  for (const bool fused : {false, true}) {
    if (fused) m->fuse_for_inference();
    auto cache = m->make_cache(2, 6);
    const auto prefill = m->forward(tok.narrow(1, 0, 3), 0, &cache);
    EXPECT_TRUE(at::allclose(prefill, full.narrow(1, 0, 3), 1e-5, 1e-5)) << "fused " << fused;
    for (int64_t t = 3; t < 6; ++t)
      EXPECT_TRUE(at::allclose(m->decode_step(tok.narrow(1, t, 1), {t, t}, &cache), full.narrow(1, t, 1), 1e-5, 1e-5))
          << "fused " << fused << ", position " << t;
  }
}

TEST(Llama, KvCacheDecodeEqualsFullForward) {
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  at::NoGradGuard ng;
  const auto tok = tokens_for(3, 9, c.vocab_size, 5);
  const auto full = m->forward(tok);  // (3, 9, V)
  // Prefill 4, then one token at a time.
  auto cache = m->make_cache(3, 12);
  std::vector<at::Tensor> parts{m->forward(tok.narrow(1, 0, 4), 0, &cache)};
  for (int64_t t = 4; t < 9; ++t) parts.push_back(m->forward(tok.narrow(1, t, 1), t, &cache));
  EXPECT_TRUE(at::allclose(at::cat(parts, 1), full, 1e-5, 1e-5));
  // Chunked prefill (a multi-token step after cached positions uses an explicit offset-causal mask).
  auto cache2 = m->make_cache(3, 9);
  const auto a = m->forward(tok.narrow(1, 0, 3), 0, &cache2);
  const auto b = m->forward(tok.narrow(1, 3, 4), 3, &cache2);
  const auto d = m->forward(tok.narrow(1, 7, 2), 7, &cache2);
  EXPECT_TRUE(at::allclose(at::cat({a, b, d}, 1), full, 1e-5, 1e-5));
  // Overflowing the cache is an error that says what to change.
  try {
    m->forward(tok.narrow(1, 0, 2), 8, &cache2);
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_len"), std::string::npos) << e.what();
  }
}

TEST(Llama, DecodeStepWithPerRowPositionsEqualsFullForward) {
  // Continuous batching: three sequences of 9, 5 and 12 tokens, each prefilled alone into its own cache row (rows at
  // different lengths), then decoded together one token per step, each row at its own position. Every row's logits
  // equal the full forward of its sequence alone (GQA: 4 heads on 2 kv heads), and rows are independent of their
  // neighbours (a row swapped into another slot gives the same numbers).
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  at::NoGradGuard ng;
  const std::vector<int64_t> lens = {9, 5, 12}, prefill = {4, 3, 7};
  std::vector<at::Tensor> seqs, full;
  for (size_t b = 0; b < lens.size(); ++b) {
    seqs.push_back(tokens_for(1, lens[b], c.vocab_size, 20 + b));
    if (b > 0) seqs[b].narrow(1, 0, 3).copy_(seqs[0].narrow(1, 0, 3));  // all start with the same 3 tokens
    full.push_back(m->forward(seqs[b])[0]);  // (T_b, V)
  }
  // Their keys/values, computed once for the shared-prefix runs.
  auto shared = m->make_cache(1, 3);
  m->forward(seqs[0].narrow(1, 0, 3), 0, &shared);
  // Attention over one chunk of rows (span: the longest row) and over one chunk per row (chunk cost 0), each with
  // every row reading its own cache and with the 3 shared positions read from one copy.
  for (const int64_t config : {0, 1, 2, 3}) {
    const int64_t max_chunks = config % 2 ? 3 : 1;
    const KVCache* prefix = config >= 2 ? &shared : nullptr;
    SCOPED_TRACE(config);
    auto cache = m->make_cache(3, 16);
    std::vector<int64_t> pos(3);
    for (int64_t b = 0; b < 3; ++b) {
      auto row = cache.rows(b, 1);
      const auto lg = m->forward(seqs[b].narrow(1, 0, prefill[b]), 0, &row)[0];
      EXPECT_TRUE(at::allclose(lg, full[b].narrow(0, 0, prefill[b]), 1e-5, 1e-5)) << b;
      pos[b] = prefill[b];
    }
    EXPECT_EQ(decode_chunks(pos, max_chunks, 0).size(), static_cast<size_t>(max_chunks));
    if (prefix)  // the rows' own copies of the shared positions are not read: spoil them
      for (auto* t : {&cache.k, &cache.v})
        for (auto& x : *t) x.narrow(2, 0, 3).fill_(1e3);
    double max_err = 0;
    int64_t checked = 0;
    for (int step = 0; step < 8; ++step) {
      std::vector<int64_t> rows, rpos;  // rows still inside their sequence
      std::vector<at::Tensor> toks;
      for (int64_t b = 0; b < 3; ++b)
        if (pos[b] < lens[b])
          rows.push_back(b), rpos.push_back(pos[b]), toks.push_back(seqs[b].narrow(1, pos[b], 1));
      if (rows.size() < 3) break;  // keep all three in the batch (the cache view is rows [0, 3))
      const auto lg = m->decode_step(at::cat(toks, 0), rpos, &cache, prefix, max_chunks, 0);  // (3, 1, V)
      for (size_t r = 0; r < rows.size(); ++r) {
        const int64_t b = rows[r];
        max_err = std::max(max_err, (lg[r][0] - full[b][pos[b]]).abs().max().item<double>());
        ++checked;
        ++pos[b];
      }
    }
    EXPECT_EQ(checked, 3 * 2);  // the 5-token row ends after 2 steps
    EXPECT_LT(max_err, 1e-5);
    if (config != 1) continue;
    // Rows 0 and 2 swapped (their cache rows too): row 2's numbers are the same whichever slot it is in.
    auto swapped = m->make_cache(2, 16);
    for (size_t l = 0; l < swapped.k.size(); ++l) {
      swapped.k[l].copy_(cache.k[l].index_select(0, at::tensor({int64_t{2}, int64_t{0}})));
      swapped.v[l].copy_(cache.v[l].index_select(0, at::tensor({int64_t{2}, int64_t{0}})));
    }
    const auto a = m->decode_step(at::cat({seqs[2].narrow(1, pos[2], 1), seqs[0].narrow(1, pos[0], 1)}, 0),
                                  {pos[2], pos[0]}, &swapped);
    EXPECT_TRUE(at::allclose(a[0][0], full[2][pos[2]], 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(a[1][0], full[0][pos[0]], 1e-5, 1e-5));
    // A position past the cache is an error that says what to change.
    try {
      m->decode_step(at::zeros({2, 1}, at::kLong), {3, 16}, &swapped);
      FAIL() << "expected an error";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("max_len"), std::string::npos) << e.what();
    }
  }
}

TEST(Llama, RmsNormEqualsTheHfFormula) {
  // forward_layer_norm and forward_fused (layer norms of [x, -x]) against HF's formula written out here, in fp32 to
  // rounding (values and gradients), in bf16 to one rounding step; with a residual, x + r is normalised and returned.
  const auto hf = [](const at::Tensor& x, const at::Tensor& w, double eps) {
    const auto xf = x.to(at::kFloat);
    return w * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  };
  RMSNorm norm(24, 1e-5, at::TensorOptions().dtype(at::kFloat));
  {
    at::NoGradGuard ng;
    norm->weight.copy_(at::linspace(0.5, 1.5, 24));
  }
  auto g = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto x = at::randn({3, 5, 24}, g) * 3, r = at::randn({3, 5, 24}, g), dy = at::randn({3, 5, 24}, g);
  const auto w = norm->weight.detach().clone().requires_grad_(true);
  const auto xr = x.clone().requires_grad_(true), xm = x.clone().requires_grad_(true);
  const auto ref = hf(xr, w, 1e-5);
  (ref * dy).sum().backward();
  EXPECT_TRUE(at::allclose(norm->forward(x), ref, 1e-6, 1e-6));  // fp32: forward_hf
  const auto y = norm->forward_layer_norm(xm);                    // the bf16 training path, checked in fp32
  EXPECT_TRUE(at::allclose(y, ref, 1e-6, 1e-6));
  (y * dy).sum().backward();
  EXPECT_TRUE(at::allclose(xm.grad(), xr.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(norm->weight.grad(), w.grad(), 1e-5, 1e-5));
  at::NoGradGuard ng;
  EXPECT_TRUE(at::allclose(norm->forward_fused(x), ref.detach(), 1e-6, 1e-6));
  at::Tensor sum;
  const auto yr = norm->forward_fused(x, r, &sum);
  EXPECT_TRUE(at::equal(sum, x + r));
  EXPECT_TRUE(at::allclose(yr, hf(x + r, w.detach(), 1e-5), 1e-6, 1e-6));
  // Hand-computed: the row (3, 4) has mean square 12.5; weight 1 -> (3, 4) / sqrt(12.5 + eps).
  RMSNorm two(2, 1e-5, at::TensorOptions().dtype(at::kFloat));
  for (const auto& hand : {two->forward(at::tensor({3.0f, 4.0f}).view({1, 2})),
                           two->forward_fused(at::tensor({3.0f, 4.0f}).view({1, 2}))}) {
    EXPECT_NEAR(hand[0][0].item<double>(), 3 / std::sqrt(12.5 + 1e-5), 1e-6);
    EXPECT_NEAR(hand[0][1].item<double>(), 4 / std::sqrt(12.5 + 1e-5), 1e-6);
  }
  // The eps is the layer's own (config.json's rms_norm_eps) on every path: with eps 3.5 the row (3, 4) divides by
  // sqrt(12.5 + 3.5) = 4.
  RMSNorm wide(2, 3.5, at::TensorOptions().dtype(at::kFloat));
  const auto row = at::tensor({3.0f, 4.0f}).view({1, 2});
  std::vector<at::Tensor> outs = {wide->forward(row), wide->forward_layer_norm(row), wide->forward_fused(row)};
  if (RMSNorm::Impl::has_native()) outs.push_back(wide->forward_native(row));
  for (const auto& out : outs) {
    EXPECT_NEAR(out[0][0].item<double>(), 0.75, 1e-6);
    EXPECT_NEAR(out[0][1].item<double>(), 1.0, 1e-6);
  }
  // bf16: HF rounds the normalised value to bf16 before the bf16 weight, the layer norm after: a step apart at most.
  RMSNorm nb(24, 1e-5, at::TensorOptions().dtype(at::kBFloat16));
  nb->weight.copy_(norm->weight);
  const auto xb = x.to(at::kBFloat16);
  const auto plain = hf(xb, nb->weight, 1e-5).to(at::kFloat);
  for (const auto& out : {nb->forward(xb), nb->forward_layer_norm(xb), nb->forward_fused(xb)}) {
    EXPECT_EQ(out.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::allclose(out.to(at::kFloat), plain, 1e-2, 1e-2));
  }
  // fuse_for_inference: the scale built once; the weight parameter is a view of it (loading into it still counts).
  norm->fuse_for_inference();
  EXPECT_TRUE(at::allclose(norm->forward_fused(x, r), hf(x + r, w.detach(), 1e-5), 1e-6, 1e-6));
  norm->weight.copy_(at::linspace(2.0, -1.0, 24));
  EXPECT_TRUE(at::allclose(norm->forward_fused(x), hf(x, at::linspace(2.0, -1.0, 24), 1e-5), 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(norm->forward(x), hf(x, at::linspace(2.0, -1.0, 24), 1e-5), 1e-6, 1e-6));
}

TEST(Llama, NativeRmsNormEqualsTheHfFormula) {
  // forward_native (torch's rms_norm: what bf16 CUDA training uses on libtorch >= 2.9) against HF's formula written
  // out: fp32 values and gradients to rounding, bf16 to one rounding step, on the CPU and, when there is one, the GPU.
  if (!RMSNorm::Impl::has_native()) GTEST_SKIP() << "libtorch < 2.4 has no at::rms_norm";
  const auto hf = [](const at::Tensor& x, const at::Tensor& w, double eps) {
    const auto xf = x.to(at::kFloat);
    return w * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  };
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto x = at::randn({3, 5, 24}, g) * 3, dy = at::randn({3, 5, 24}, g);
  std::vector<c10::Device> devices{c10::Device(c10::kCPU)};
  if (torch::cuda::is_available()) devices.emplace_back(c10::kCUDA, 0);
  for (const auto& dev : devices) {
    RMSNorm norm(24, 1e-5, at::TensorOptions().dtype(at::kFloat).device(dev));
    {
      at::NoGradGuard ng;
      norm->weight.copy_(at::linspace(0.5, 1.5, 24));
    }
    const auto w = norm->weight.detach().clone().requires_grad_(true);
    // Two leaves of their own (x.to(kCPU) would be x itself, and on a GPU a non-leaf of it once x required grad).
    const auto xr = x.to(dev).clone().requires_grad_(true), xn = x.to(dev).clone().requires_grad_(true);
    const auto ref = hf(xr, w, 1e-5);
    (ref * dy.to(dev)).sum().backward();
    const auto y = norm->forward_native(xn);
    EXPECT_TRUE(at::allclose(y, ref, 1e-5, 1e-5)) << dev;
    (y * dy.to(dev)).sum().backward();
    EXPECT_TRUE(at::allclose(xn.grad(), xr.grad(), 1e-4, 1e-4)) << dev;
    EXPECT_TRUE(at::allclose(norm->weight.grad(), w.grad(), 1e-4, 1e-4)) << dev;
    RMSNorm nb(24, 1e-5, at::TensorOptions().dtype(at::kBFloat16).device(dev));
    at::NoGradGuard ng;
    nb->weight.copy_(norm->weight);
    const auto xb = x.to(dev, at::kBFloat16);
    const auto out = nb->forward_native(xb);
    EXPECT_EQ(out.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::allclose(out.to(at::kFloat), hf(xb, nb->weight, 1e-5).to(at::kFloat), 1e-2, 1e-2)) << dev;
    // forward takes this path for bf16 on CUDA (libtorch >= 2.9), the layer norm of [x, -x] elsewhere: same values.
    EXPECT_TRUE(at::allclose(nb->forward(xb).to(at::kFloat), out.to(at::kFloat), 1e-2, 1e-2)) << dev;
  }
}

TEST(Llama, FusedForInferenceComputesWhatTheUnfusedModelDoes) {
  // fuse_for_inference (sampling): one q/k/v and one gate/up matmul per layer, RoPE over q and k at once, norms as
  // layer norms of [x, -x] with the attention residual added inside. Against an unfused copy of the same weights:
  // full forward, prefill + cached decode, per-row decode_step; the parameters stay the same values and become views
  // of the fused weights (loading into them reaches the fused path).
  const auto c = cg::test::small_llama();  // GQA: 4 heads on 2 kv heads
  auto ref = make_model(c);
  auto m = make_model(c);
  m->fuse_for_inference();
  m->fuse_for_inference();  // idempotent
  at::NoGradGuard ng;
  const auto ref_specs = ref->param_specs();
  const auto specs = m->param_specs();
  ASSERT_EQ(specs.size(), ref_specs.size());
  for (size_t i = 0; i < specs.size(); ++i) EXPECT_TRUE(at::equal(specs[i].param, ref_specs[i].param)) << specs[i].name;
  const auto& attn = *m->model->layers->ptr<DecoderLayerImpl>(1)->self_attn;
  const auto& mlp = *m->model->layers->ptr<DecoderLayerImpl>(1)->mlp;
  EXPECT_TRUE(attn.fused() && mlp.fused());
  EXPECT_TRUE(attn.q_proj->weight.is_alias_of(attn.v_proj->weight));
  EXPECT_TRUE(mlp.gate_proj->weight.is_alias_of(mlp.up_proj->weight));
  EXPECT_EQ(m->parameters().size(), ref->parameters().size());

  const auto tok = tokens_for(2, 9, c.vocab_size, 3);
  tok[1].narrow(0, 0, 3).copy_(tok[0].narrow(0, 0, 3));  // both rows start with the same 3 tokens
  const auto full = ref->forward(tok);  // (2, 9, V)
  EXPECT_TRUE(at::allclose(m->forward(tok), full, 1e-5, 1e-5));
  auto cache = m->make_cache(2, 9);
  std::vector<at::Tensor> parts{m->forward(tok.narrow(1, 0, 5), 0, &cache)};
  for (int64_t t = 5; t < 9; ++t) parts.push_back(m->forward(tok.narrow(1, t, 1), t, &cache));
  EXPECT_TRUE(at::allclose(at::cat(parts, 1), full, 1e-5, 1e-5));
  // Rows at different positions: row 0 prefilled to 4, row 1 to 6, then decode_step at positions 4 and 6.
  auto rows = m->make_cache(2, 9);
  for (const auto& [b, n] : std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {1, 6}}) {
    auto r = rows.rows(b, 1);
    m->forward(tok.narrow(0, b, 1).narrow(1, 0, n), 0, &r);
  }
  const auto next = at::stack({tok[0][4], tok[1][6]}).view({2, 1});
  auto rows2 = m->make_cache(2, 9);  // a copy for the shared-prefix step below
  for (size_t l = 0; l < rows.kv.size(); ++l) rows2.kv[l].copy_(rows.kv[l]);
  const auto step = m->decode_step(next, {4, 6}, &rows);
  EXPECT_TRUE(at::allclose(step[0][0], full[0][4], 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(step[1][0], full[1][6], 1e-5, 1e-5));
  // The step wrote each row's key and value at its position (one scatter into the cache's combined k|v).
  EXPECT_FALSE(at::equal(rows.k[0][0].select(1, 4), rows2.k[0][0].select(1, 4)));  // (n_kv, hd) at row 0, pos 4
  EXPECT_FALSE(at::equal(rows.v[1][1].select(1, 6), rows2.v[1][1].select(1, 6)));  // row 1, pos 6
  EXPECT_TRUE(at::equal(rows.k[0][0].select(1, 5), rows2.k[0][0].select(1, 5)));   // nothing else
  // With the 3 shared tokens read from one copy (the rows' own copies spoiled), in two chunks.
  auto shared = m->make_cache(1, 3);
  m->forward(tok.narrow(0, 0, 1).narrow(1, 0, 3), 0, &shared);
  for (auto* t : {&rows2.k, &rows2.v})
    for (auto& x : *t) x.narrow(2, 0, 3).fill_(1e3);
  const auto step2 = m->decode_step(next, {4, 6}, &rows2, &shared, 2, 0);
  EXPECT_TRUE(at::allclose(step2[0][0], full[0][4], 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(step2[1][0], full[1][6], 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(rows2.k[1].select(2, 6)[1], rows.k[1].select(2, 6)[1], 1e-6, 1e-6));
  // decode_step_on_device (the CUDA-graph step: positions on the device, one chunk of a fixed span, nothing read on
  // the host): the same logits with a span past both rows' positions (the rest masked), and with the shared prefix
  // (the rows' own copies of it spoiled), as long as the span covers the rows; it writes the same cache entries.
  for (const int64_t span : {7, 9}) {
    auto own = m->make_cache(2, 9), pre = m->make_cache(2, 9);
    for (size_t l = 0; l < rows.kv.size(); ++l) {
      own.kv[l].copy_(rows.kv[l]);   // prefilled, positions 4 and 6 written by the first step
      pre.kv[l].copy_(rows2.kv[l]);  // the same with the shared positions spoiled
    }
    const auto pos = at::tensor(std::vector<int64_t>{4, 6}, at::TensorOptions().dtype(at::kLong));
    const auto a = m->decode_step_on_device(next, pos, span, &own);
    EXPECT_TRUE(at::allclose(a[0][0], full[0][4], 1e-5, 1e-5)) << span;
    EXPECT_TRUE(at::allclose(a[1][0], full[1][6], 1e-5, 1e-5)) << span;
    EXPECT_TRUE(at::allclose(own.k[1].select(2, 6)[1], rows.k[1].select(2, 6)[1], 1e-6, 1e-6)) << span;
    const auto b = m->decode_step_on_device(next, pos, span - 3, &pre, &shared);  // positions [3, span)
    EXPECT_TRUE(at::allclose(b[0][0], full[0][4], 1e-5, 1e-5)) << span;
    EXPECT_TRUE(at::allclose(b[1][0], full[1][6], 1e-5, 1e-5)) << span;
  }
  EXPECT_THROW(m->decode_step_on_device(next, at::zeros({2}, at::kLong), 10, &rows), cg::Error);  // past the cache

  // Loading other weights into the parameters (as a checkpoint load does) changes what the fused path computes.
  auto other = make_model(c, {}, 11);
  const auto other_specs = other->param_specs();
  for (size_t i = 0; i < specs.size(); ++i) specs[i].param.copy_(other_specs[i].param);
  EXPECT_TRUE(at::allclose(m->forward(tok), other->forward(tok), 1e-5, 1e-5));
}

TEST(Llama, DecodeStepOnDeviceReplaysAsACudaGraph) {
  // sample.cuda_graphs' step on a GPU, recorded as sampler/decode_graph.cpp records it (an eager warm-up on a side
  // stream, then one capture of decode_step_on_device reading its tokens and positions from two device buffers):
  // each replay, after new tokens and positions are copied into the buffers, gives every row the logits of the full
  // forward at its new position and writes the cache entries the eager step writes. With cgtrain's one-pass
  // kernels and with libtorch's ops (chunk masks built on the device), with and without a shared prefix. A capture
  // that read anything on the host would throw here.
#ifndef CG_HAVE_CUDA_KERNELS
  GTEST_SKIP() << "needs a CUDA build (CG_HAVE_CUDA_KERNELS)";
#else
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a GPU";
  const at::Device dev(at::kCUDA, 0);
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  m->to(dev);
  at::NoGradGuard ng;
  m->fuse_for_inference();
  const auto tok = tokens_for(3, 10, c.vocab_size, 5).to(dev);
  for (int64_t b = 1; b < 3; ++b) tok[b].narrow(0, 0, 3).copy_(tok[0].narrow(0, 0, 3));  // a 3-token shared head
  const auto full = m->forward(tok);  // (3, 10, V)
  auto shared = m->make_cache(1, 3);
  m->forward(tok.narrow(0, 0, 1).narrow(1, 0, 3), 0, &shared);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(dev);
  const std::vector<int64_t> start{3, 7, 5};
  for (const auto mode : {DecodeKernels::Auto, DecodeKernels::Off})
    for (const bool with_prefix : {false, true}) {
      SCOPED_TRACE(testing::Message() << "one pass " << (mode == DecodeKernels::Auto) << ", prefix " << with_prefix);
      m->set_decode_kernels(mode);
      EXPECT_EQ(m->one_pass_decode(), mode == DecodeKernels::Auto);
      auto graphed = m->make_cache(3, 10), eager = m->make_cache(3, 10);
      for (int64_t b = 0; b < 3; ++b) {
        auto r = graphed.rows(b, 1);
        m->forward(tok.narrow(0, b, 1).narrow(1, 0, start[b]), 0, &r);
      }
      for (size_t l = 0; l < graphed.kv.size(); ++l) eager.kv[l].copy_(graphed.kv[l]);
      const KVCache* prefix = with_prefix ? &shared : nullptr;
      const int64_t span = 10 - (with_prefix ? 3 : 0);  // every position past the prefix
      std::vector<int64_t> pos(start);
      auto tokens = at::zeros({3, 1}, longs), positions = at::zeros({3}, longs);  // what the graph reads
      const auto set_inputs = [&] {
        std::vector<at::Tensor> next;
        for (int64_t b = 0; b < 3; ++b) next.push_back(tok[b][pos[b]]);
        tokens.copy_(at::stack(next).view({3, 1}));
        positions.copy_(at::tensor(pos, at::TensorOptions().dtype(at::kLong)));
      };
      set_inputs();
      at::cuda::CUDAGraph graph;
      at::Tensor out;  // (3, 1, V), the graph's, rewritten by each replay
      auto side = c10::cuda::getStreamFromPool(false, dev.index());
      c10::cuda::getCurrentCUDAStream(dev.index()).synchronize();
      {
        c10::cuda::CUDAStreamGuard on_side(side);
        m->decode_step_on_device(tokens, positions, span, &graphed, prefix);  // warm-up (cuBLAS, kernel checks)
        side.synchronize();
        graph.capture_begin();
        out = m->decode_step_on_device(tokens, positions, span, &graphed, prefix);
        graph.capture_end();
        side.synchronize();
      }
      for (int step = 0; step < 3; ++step) {
        if (step > 0) set_inputs();
        graph.replay();
        const auto want = m->decode_step_on_device(tokens, positions, span, &eager, prefix);
        for (int64_t b = 0; b < 3; ++b)
          EXPECT_TRUE(at::allclose(out[b][0], full[b][pos[b]], 1e-4, 1e-4)) << "row " << b << " step " << step;
        EXPECT_TRUE(at::allclose(out, want, 1e-5, 1e-5)) << "step " << step;
        for (auto& x : pos) ++x;
      }
      for (size_t l = 0; l < graphed.kv.size(); ++l)
        EXPECT_TRUE(at::allclose(graphed.kv[l], eager.kv[l], 1e-6, 1e-6)) << "layer " << l;
    }
#endif
}

TEST(Llama, OnePassDecodeEqualsTheFullForwardAndTheOps) {
  // decode_kernels = On (off a GPU: the kernels' ATen reference, row by row) in a fused model: decode_step and
  // decode_step_on_device give each row the logits of its full forward, with and without the shared prefix (the
  // rows' own copies of it spoiled), and write the cache entries the chunked ops write. Auto on a CPU and unfused
  // models take the ops.
  const auto c = cg::test::small_llama();  // GQA: 4 heads on 2 kv heads
  auto m = make_model(c);
  at::NoGradGuard ng;
  EXPECT_FALSE(m->one_pass_decode());  // unfused
  m->fuse_for_inference();
  EXPECT_EQ(m->one_pass_decode(), decode_kernels_built() && m->device().is_cuda());  // Auto: ops on a CPU
  m->set_decode_kernels(DecodeKernels::On);
  EXPECT_TRUE(m->one_pass_decode());
  const auto tok = tokens_for(3, 10, c.vocab_size, 5);
  for (int64_t b = 1; b < 3; ++b) tok[b].narrow(0, 0, 3).copy_(tok[0].narrow(0, 0, 3));  // a 3-token shared head
  const auto full = m->forward(tok);  // (3, 10, V)
  auto shared = m->make_cache(1, 3);
  m->forward(tok.narrow(0, 0, 1).narrow(1, 0, 3), 0, &shared);
  const std::vector<int64_t> start{3, 7, 5};
  for (const bool with_prefix : {false, true})
    for (const bool on_device : {false, true}) {
      SCOPED_TRACE(testing::Message() << "prefix " << with_prefix << ", on device " << on_device);
      auto one = m->make_cache(3, 10), ops = m->make_cache(3, 10);
      for (int64_t b = 0; b < 3; ++b) {
        auto r = one.rows(b, 1);
        m->forward(tok.narrow(0, b, 1).narrow(1, 0, start[b]), 0, &r);
      }
      if (with_prefix)
        for (auto& x : one.kv) x.narrow(3, 0, 3).fill_(1e3);  // (2, B, n_kv, max_len, hd): positions [0, 3)
      for (size_t l = 0; l < one.kv.size(); ++l) ops.kv[l].copy_(one.kv[l]);
      const KVCache* prefix = with_prefix ? &shared : nullptr;
      std::vector<int64_t> pos(start);
      for (int step = 0; step < 3; ++step) {
        std::vector<at::Tensor> next;
        for (int64_t b = 0; b < 3; ++b) next.push_back(tok[b][pos[b]]);
        const auto tokens = at::stack(next).view({3, 1});
        const auto p = at::tensor(pos, at::TensorOptions().dtype(at::kLong));
        int64_t read = 0;
        const auto lg = on_device ? m->decode_step_on_device(tokens, p, 7, &one, prefix)
                                  : m->decode_step(tokens, pos, &one, prefix, kDecodeMaxChunks, 0, &read);
        m->set_decode_kernels(DecodeKernels::Off);
        EXPECT_FALSE(m->one_pass_decode());
        m->decode_step(tokens, pos, &ops, prefix);
        m->set_decode_kernels(DecodeKernels::On);
        for (int64_t b = 0; b < 3; ++b)
          EXPECT_TRUE(at::allclose(lg[b][0], full[b][pos[b]], 1e-5, 1e-5)) << "row " << b << " step " << step;
        if (!on_device) EXPECT_EQ(read, (pos[0] + 1) + (pos[1] + 1) + (pos[2] + 1));  // each row its own positions
        for (auto& x : pos) ++x;
      }
      for (size_t l = 0; l < one.kv.size(); ++l) EXPECT_TRUE(at::allclose(one.kv[l], ops.kv[l], 1e-6, 1e-6)) << l;
    }
  // A row at a position inside the shared prefix, or past the cache, is an error.
  auto cache = m->make_cache(2, 6);
  EXPECT_THROW(m->decode_step(at::zeros({2, 1}, at::kLong), {3, 6}, &cache), cg::Error);
  EXPECT_THROW(m->decode_step_on_device(at::zeros({2, 1}, at::kLong),
                                        at::tensor(std::vector<int64_t>{1, 4}, at::TensorOptions().dtype(at::kLong)),
                                        3, &cache, &shared),
               cg::Error);
  EXPECT_EQ(decode_kernels_from("on"), DecodeKernels::On);
  EXPECT_EQ(decode_kernels_from("off"), DecodeKernels::Off);
  EXPECT_EQ(decode_kernels_from("auto"), DecodeKernels::Auto);
  EXPECT_THROW(decode_kernels_from("one_pass"), cg::Error);
}

TEST(Llama, FusingProjectionsWithALoraHookIsAClearError) {
  const auto c = cg::test::small_llama();
  const DeltaHook hook = [](const at::Tensor&, const at::Tensor& y) { return y; };
  auto m = make_model(c);
  m->model->layers->ptr<DecoderLayerImpl>(1)->self_attn->v_proj->delta = hook;
  try {
    m->fuse_for_inference();
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.self_attn.v_proj has a LoRA delta hook"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("merge"), std::string::npos) << e.what();
  }
  // A hook installed after fusing would be skipped by the fused matmul: the forward refuses instead.
  auto f = make_model(c);
  f->fuse_for_inference();
  f->model->layers->ptr<DecoderLayerImpl>(0)->mlp->up_proj->delta = hook;
  at::NoGradGuard ng;
  try {
    f->forward(tokens_for(1, 3, c.vocab_size, 1));
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj got a LoRA delta hook after"), std::string::npos)
        << e.what();
  }
}

TEST(Llama, KvCacheCopyRowsMovesKeysAndValues) {
  // copy_rows between make_cache caches (k and v halves of one tensor: one copy each layer) and from a cache built
  // by hand (separate k and v), including rows of a cache onto itself: a swap (sources read before anything is
  // written, whatever the path asked for) and the sampler's moves (row 2 -> 0, then row 3 -> 2). Every path.
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  using Path = KVCache::CopyPath;
  for (Path path : {Path::Auto, Path::PerPair, Path::ByIndex}) {
    SCOPED_TRACE(static_cast<int>(path));
    auto a = m->make_cache(4, 8), b = m->make_cache(4, 8);
    for (size_t l = 0; l < a.kv.size(); ++l) a.kv[l].copy_(at::arange(a.kv[l].numel(), at::kFloat).view_as(a.kv[l]));
    const auto orig_k = a.k[1].clone(), orig_v = a.v[1].clone();  // layer 1
    b.copy_rows({2, 0}, a, {0, 1}, 2, 3, path);  // b rows 2, 0 <- a rows 0, 1 at positions [2, 5)
    for (size_t l = 0; l < a.k.size(); ++l) {
      EXPECT_TRUE(at::equal(b.k[l][2].narrow(1, 2, 3), a.k[l][0].narrow(1, 2, 3)));
      EXPECT_TRUE(at::equal(b.v[l][0].narrow(1, 2, 3), a.v[l][1].narrow(1, 2, 3)));
      EXPECT_EQ(b.k[l][1].abs().sum().item<double>(), 0.0);                  // untouched row
      EXPECT_EQ(b.v[l][2].narrow(1, 0, 2).abs().sum().item<double>(), 0.0);  // untouched positions
      EXPECT_EQ(b.v[l][2].narrow(1, 5, 3).abs().sum().item<double>(), 0.0);
    }
    KVCache hand;  // separate tensors: the per-tensor path
    hand.max_len = 8;
    for (size_t l = 0; l < a.k.size(); ++l) hand.k.push_back(a.k[l].clone()), hand.v.push_back(a.v[l].clone());
    a.copy_rows({0, 1}, a, {1, 0}, 0, 8, path);  // swap rows 0 and 1 in place
    EXPECT_TRUE(at::equal(a.k[1][0], orig_k[1]) && at::equal(a.k[1][1], orig_k[0]));
    EXPECT_TRUE(at::equal(a.v[1][0], orig_v[1]) && at::equal(a.v[1][1], orig_v[0]));
    a.copy_rows({0, 2}, a, {2, 3}, 1, 6, path);  // the sampler's compaction: a chain, positions [1, 7)
    EXPECT_TRUE(at::equal(a.k[1][0].narrow(1, 1, 6), orig_k[2].narrow(1, 1, 6)));
    EXPECT_TRUE(at::equal(a.v[1][2].narrow(1, 1, 6), orig_v[3].narrow(1, 1, 6)));
    EXPECT_TRUE(at::equal(a.k[1][0].narrow(1, 0, 1), orig_k[1].narrow(1, 0, 1)));  // position 0 stayed
    EXPECT_TRUE(at::equal(a.k[1][3], orig_k[3]));                                   // the source row is intact
    hand.copy_rows({2}, b, {2}, 0, 8, path);
    EXPECT_TRUE(at::equal(hand.k[1][2], b.k[1][2]) && at::equal(hand.v[1][2], b.v[1][2]));
    const auto h1 = hand.v[0][1].clone(), h3 = hand.v[0][3].clone();
    ASSERT_FALSE(at::equal(h1, h3));
    hand.copy_rows({3, 1}, hand, {1, 3}, 0, 8, path);  // a swap in the separate tensors
    EXPECT_TRUE(at::equal(hand.v[0][3], h1) && at::equal(hand.v[0][1], h3));
  }
  auto a = m->make_cache(2, 4);
  EXPECT_THROW(a.copy_rows({0}, a, {2}, 0, 4, Path::PerPair), std::exception);  // row 2 of 2
}

TEST(Llama, DecodeChunkCostIsLaunchesOverBandwidth) {
  // kernels x launch time x bandwidth / bytes of one position of one layer, by hand:
  // 7B bf16 on a GPU: 2 x 32 kv heads x 128 x 2 B = 16,384 B; 9 x 4 us x 3 TB/s / 16,384 = 6,592 (2 kernels: 1,465).
  const auto b7 = llama_flavor("7b", 32000);
  const at::Device gpu(at::kCUDA, 0), cpu(at::kCPU);
  EXPECT_EQ(decode_chunk_cost(b7, 1, at::kBFloat16, gpu, true), 6592);
  EXPECT_EQ(decode_chunk_cost(b7, 1, at::kBFloat16, gpu, false), 1465);
  EXPECT_EQ(decode_chunk_cost(b7, 2, at::kBFloat16, gpu, true), 13184);  // a tp rank holds half the kv heads
  // tiny fp32 on CPU: 2 x 4 x 32 x 4 B = 1,024 B; 9 x 10 us x 10 GB/s / 1,024 = 879 (2 kernels: 195).
  const auto tiny = llama_flavor("tiny", 512);
  EXPECT_EQ(decode_chunk_cost(tiny, 1, at::kFloat, cpu, true), 879);
  EXPECT_EQ(decode_chunk_cost(tiny, 1, at::kFloat, cpu, false), 195);
}

TEST(Llama, DecodeChunksIsTheCheapestContiguousSplit) {
  // By hand: rows at 9, 9, 2, 2. One chunk reads 4 x 10 = 40 positions; two chunks 2 x 10 + 2 x 3 = 26. At a price
  // of 20 per chunk, one chunk (60) beats two (66).
  auto c = decode_chunks({9, 9, 2, 2}, 2, 0);
  ASSERT_EQ(c.size(), 2u);
  auto triple = [](const DecodeChunk& ch) { return std::vector<int64_t>{ch.start, ch.rows, ch.span}; };
  EXPECT_EQ(triple(c[0]), (std::vector<int64_t>{0, 2, 10}));
  EXPECT_EQ(triple(c[1]), (std::vector<int64_t>{2, 2, 3}));
  c = decode_chunks({9, 9, 2, 2}, 2, 20);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(triple(c[0]), (std::vector<int64_t>{0, 4, 10}));
  // Against every split (brute force over the 2^(n-1) cut sets) for random positions.
  std::mt19937 rng(4);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + rng() % 8, max_chunks = 1 + rng() % 4, cost = std::vector<int>{0, 3, 40}[rng() % 3];
    std::vector<int64_t> pos(n);
    for (auto& p : pos) p = rng() % 30;
    int64_t best = std::numeric_limits<int64_t>::max();
    for (uint32_t cuts = 0; cuts < (1u << (n - 1)); ++cuts) {  // bit i: a chunk ends after row i
      if (__builtin_popcount(cuts) + 1 > max_chunks) continue;
      int64_t total = 0, span = 0, rows = 0;
      for (int i = 0; i < n; ++i) {
        span = std::max(span, pos[i] + 1), ++rows;
        if (i == n - 1 || (cuts >> i & 1)) total += rows * span + cost, span = 0, rows = 0;
      }
      best = std::min(best, total);
    }
    const auto got = decode_chunks(pos, max_chunks, cost);
    ASSERT_LE(static_cast<int>(got.size()), max_chunks);
    int64_t total = 0, next = 0;
    for (const auto& ch : got) {
      EXPECT_EQ(ch.start, next);  // contiguous, covering every row
      EXPECT_EQ(ch.span, 1 + *std::max_element(pos.begin() + ch.start, pos.begin() + ch.start + ch.rows));
      next += ch.rows;
      total += ch.rows * ch.span + cost;
    }
    EXPECT_EQ(next, n);
    EXPECT_EQ(total, best) << "trial " << trial;
  }
}

namespace {
// loss = sum(logits * fixed random weights); returns grads of every base param and of the embedding output.
std::map<std::string, at::Tensor> grads_of(Llama& m, const at::Tensor& tok, const at::Tensor& wts) {
  for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
  m->train();
  const auto loss = (m->forward(tok) * wts).sum();
  loss.backward();
  std::map<std::string, at::Tensor> g;
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
  return g;
}
}  // namespace

TEST(Llama, ActivationCheckpointingGivesTheSameGradients) {
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  const auto tok = tokens_for(2, 7, c.vocab_size, 9);
  const auto wts = at::randn({2, 7, c.vocab_size}, at::make_generator<at::CPUGeneratorImpl>(1));
  m->activation_checkpointing = false;
  const auto plain = grads_of(m, tok, wts);
  m->activation_checkpointing = true;
  const auto ckpt = grads_of(m, tok, wts);
  ASSERT_EQ(plain.size(), 21u);
  ASSERT_EQ(ckpt.size(), plain.size());
  for (const auto& [name, g] : plain) {
    EXPECT_GT(g.abs().max().item<double>(), 0.0) << name;
    EXPECT_TRUE(at::allclose(ckpt.at(name), g, 1e-5, 1e-6)) << name;
  }
}

TEST(Llama, CheckpointingWithFrozenBaseAndARandomHook) {
  // A LoRA-like hook: its own parameter registered under the Linear, dropout inside (draws from the RNG), and a
  // frozen base including the embedding (so the layer input does not require grad).
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  m->set_base_trainable(false);
  auto lin = m->linears()[2];  // layer 0 v_proj
  auto A = lin->register_parameter("hook_a", at::randn({lin->out_features_local, lin->in_features_local},
                                                       at::make_generator<at::CPUGeneratorImpl>(4)) * 0.1);
  lin->delta = [A](const at::Tensor& x, const at::Tensor& y) {
    return y + at::dropout(at::matmul(x, A.t()), 0.5, /*train=*/true);
  };
  const auto tok = tokens_for(2, 5, c.vocab_size, 2);
  const auto wts = at::randn({2, 5, c.vocab_size}, at::make_generator<at::CPUGeneratorImpl>(8));
  m->activation_checkpointing = false;
  torch::manual_seed(123);
  const auto plain = grads_of(m, tok, wts);
  m->activation_checkpointing = true;
  torch::manual_seed(123);
  const auto ckpt = grads_of(m, tok, wts);
  const std::string key = "model.layers.0.self_attn.v_proj.hook_a";
  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(ckpt.size(), 1u);
  EXPECT_GT(plain.at(key).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(at::allclose(ckpt.at(key), plain.at(key), 1e-5, 1e-6));
  // The RNG advanced the same way in both modes (backward restored it after the recompute).
  torch::manual_seed(5);
  grads_of(m, tok, wts);
  const auto after_ckpt = at::rand({4});
  m->activation_checkpointing = false;
  torch::manual_seed(5);
  grads_of(m, tok, wts);
  EXPECT_TRUE(at::equal(at::rand({4}), after_ckpt));
}

TEST(Llama, CheckpointingRewindsAHookOwnGenerator) {
  // LoRA draws its dropout masks from its own generator: registered in recompute_generators, the recompute draws the
  // same masks and the gradients equal the plain ones.
  const auto c = cg::test::small_llama();
  auto m = make_model(c);
  m->set_base_trainable(false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  m->recompute_generators.push_back(gen);
  auto lin = m->linears()[4];  // layer 0 gate_proj
  auto A = lin->register_parameter("hook_a", at::randn({lin->out_features_local, lin->in_features_local},
                                                       at::make_generator<at::CPUGeneratorImpl>(4)) * 0.1);
  lin->delta = [A, gen](const at::Tensor& x, const at::Tensor& y) {
    auto keep = at::empty_like(x).bernoulli_(0.5, gen);
    return y + at::matmul(x * keep * 2.0, A.t());
  };
  const auto tok = tokens_for(2, 5, c.vocab_size, 2);
  const auto wts = at::randn({2, 5, c.vocab_size}, at::make_generator<at::CPUGeneratorImpl>(8));
  const std::string key = "model.layers.0.mlp.gate_proj.hook_a";
  m->activation_checkpointing = false;
  gen.set_current_seed(1);
  const auto plain = grads_of(m, tok, wts).at(key);
  m->activation_checkpointing = true;
  gen.set_current_seed(1);
  const auto ckpt = grads_of(m, tok, wts).at(key);
  EXPECT_TRUE(at::allclose(ckpt, plain, 1e-5, 1e-6));
  // Without registering it, the recompute draws other masks (what the registration prevents).
  m->recompute_generators.clear();
  gen.set_current_seed(1);
  EXPECT_FALSE(at::allclose(grads_of(m, tok, wts).at(key), plain, 1e-5, 1e-6));
}

TEST(Llama, RandomInitIsTheSameFullModelForAnyTp) {
  for (int64_t vocab : {40, 37}) {  // 37 is padded to 38 at tp 2, 40 at tp 4
    auto c = cg::test::small_llama();
    c.vocab_size = vocab;
    c.num_key_value_heads = 4;  // divisible by tp 4
    auto full = make_model(c);
    std::map<std::string, at::Tensor> fw;
    for (const auto& s : full->param_specs()) fw[s.name] = s.param.detach();
    for (int tp : {2, 4}) {
      for (int r = 0; r < tp; ++r) {
        auto part = make_model(c, {r, tp});
        for (const auto& s : part->param_specs()) {
          EXPECT_TRUE(at::equal(s.param, s.slice_of(fw.at(s.name)))) << s.name << " tp " << tp << " rank " << r;
          if (s.style == ParallelStyle::Vocab) {
            EXPECT_EQ(s.param.size(0), (vocab + tp - 1) / tp);
            EXPECT_EQ(s.param.size(0) - s.shard_len, std::max<int64_t>(0, s.shard_start + s.param.size(0) - vocab));
          }
        }
      }
    }
  }
  // tp 2 rank 1 of vocab 37: rows 19..37 of the table, then one zero padding row.
  auto c = cg::test::small_llama();
  auto part = make_model(c, {1, 2});
  const auto& emb = part->model->embed_tokens->weight;
  EXPECT_EQ(emb.size(0), 19);
  EXPECT_EQ(emb[18].abs().sum().item<double>(), 0.0);
}

TEST(Llama, RandomInitIsTheSameAtAnyThreadCountAndDtype) {
  // init_weights draws parameters in parallel (one generator each): 1 and 3 intra-op threads give the same bits, and
  // a bf16 model holds the fp32 model's values rounded to bf16.
  const int threads = at::get_num_threads();
  auto c = cg::test::small_llama();
  at::set_num_threads(1);
  Llama a(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  init_weights(*a, 99);
  at::set_num_threads(3);
  Llama b(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  Llama h(c, TpShape{}, at::TensorOptions().dtype(at::kBFloat16));
  init_weights(*b, 99);
  init_weights(*h, 99);
  at::set_num_threads(threads);
  const auto sa = a->param_specs(), sb = b->param_specs(), sh = h->param_specs();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_TRUE(at::equal(sa[i].param, sb[i].param)) << sa[i].name;
    EXPECT_TRUE(at::equal(sa[i].param.to(at::kBFloat16), sh[i].param)) << sa[i].name;
    if (sa[i].full_shape.size() == 2) EXPECT_NEAR(sa[i].param.std().item<double>(), 0.02, 0.004) << sa[i].name;
  }
  EXPECT_FALSE(at::equal(sa[3].param.flatten().narrow(0, 0, 16), sa[4].param.flatten().narrow(0, 0, 16)));
}

TEST(Llama, LocalShapesAndClearDivisibilityErrors) {
  auto c = llama_flavor("tiny", 512);  // 8 heads, 4 kv heads
  Llama m(c, TpShape{1, 4}, at::TensorOptions().dtype(at::kFloat));
  auto q = m->linears()[0], o = m->linears()[3], k = m->linears()[1];
  EXPECT_EQ(q->weight.sizes(), (std::vector<int64_t>{64, 256}));
  EXPECT_EQ(k->weight.sizes(), (std::vector<int64_t>{32, 256}));  // one kv head of 32
  EXPECT_EQ(o->weight.sizes(), (std::vector<int64_t>{256, 64}));
  EXPECT_EQ(q->out_features, 256);
  EXPECT_EQ(q->out_features_local, 64);
  EXPECT_EQ(m->lm_head->weight.sizes(), (std::vector<int64_t>{128, 256}));
  try {
    Llama bad(c, TpShape{0, 8}, at::TensorOptions().dtype(at::kFloat));
    FAIL() << "expected an error";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads 4 is not divisible by tp 8"), std::string::npos)
        << e.what();
  }
  // At tp > 1 without the TP hooks the forward refuses to run (instead of silently computing partial sums).
  EXPECT_THROW(m->forward(at::zeros({1, 2}, at::kLong)), cg::Error);
}

TEST(Llama, Bf16WeightsGiveFp32LogitsCloseToFp32) {
  const auto c = cg::test::small_llama();
  auto m32 = make_model(c);
  Llama m16(c, TpShape{}, at::TensorOptions().dtype(at::kBFloat16));
  init_weights(*m16, 7, 0.15);
  {
    at::NoGradGuard ng;
    auto s16 = m16->param_specs();
    auto s32 = m32->param_specs();
    for (size_t i = 0; i < s16.size(); ++i) s16[i].param.copy_(s32[i].param);
  }
  at::NoGradGuard ng;
  const auto tok = tokens_for(1, 5, c.vocab_size, 1);
  const auto l16 = m16->forward(tok), l32 = m32->forward(tok);
  EXPECT_EQ(l16.scalar_type(), at::kFloat);
  EXPECT_EQ(m16->dtype(), at::kBFloat16);
  const double scale = l32.abs().max().item<double>();
  EXPECT_LT((l16 - l32).abs().max().item<double>(), 0.1 * scale);
  // The sampler's bf16 model (fused projections and norms): as close to fp32 as the plain bf16 model is, and a
  // rounding step or so from it.
  m16->fuse_for_inference();
  const auto f16 = m16->forward(tok);
  EXPECT_LT((f16 - l32).abs().max().item<double>(), 0.1 * scale);
  EXPECT_LT((f16 - l16).abs().max().item<double>(), 0.05 * scale);
}

// model.dtype names; fp16 is refused on CPU up front (libtorch's CPU layer norm has no fp16 kernel: the run would
// otherwise stop at its first step with a torch-internal message).
TEST(Llama, DtypeNamesAndFp16NeedsAGpu) {
  EXPECT_EQ(resolve_dtype("auto", at::kCPU), at::kFloat);
  EXPECT_EQ(resolve_dtype("bf16", at::kCPU), at::kBFloat16);
  EXPECT_EQ(resolve_dtype("fp16", at::Device(at::kCUDA, 0)), at::kHalf);
  EXPECT_EQ(resolve_dtype("auto", at::Device(at::kCUDA, 0)), at::kBFloat16);
  try {
    resolve_dtype("fp16", at::kCPU);
    ADD_FAILURE() << "fp16 accepted on CPU";
  } catch (const cg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a GPU"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_dtype("int8", at::kCPU), cg::Error);
}
