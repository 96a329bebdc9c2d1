// cg::model::causal_attention (the CPU block-causal attention with its hand-written backward) against a
// straightforward double-precision reference softmax(Q K^T / sqrt(hd) + causal mask) V with HF repeat_kv for GQA,
// in the output and in dQ, dK, dV under a random upstream gradient; the Attention module's CPU path against the
// fused SDPA it replaces; RoPE's layouts; the decoding kernels' references (one-pass attention, add + RMSNorm,
// SiLU x up) against formulas written out, and on a GPU the kernels against those references.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "model/attention.h"
#include "model/decode_kernels.h"
#include "model/rope.h"

using namespace cg::model;

namespace {

at::Generator gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// q (B, H, T, hd), k/v (B, H_kv, T, hd), all double -> (B, T, H, hd), from plain torch ops and autograd:
// explicit repeat of each kv head R times in a row, full (T, T) scores, -inf above the diagonal, softmax, times V.
at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t H = q.size(1), T = q.size(2), hd = q.size(3), R = H / k.size(1);
  const auto kr = k.repeat_interleave(R, 1), vr = v.repeat_interleave(R, 1);  // (B, H, T, hd)
  auto s = at::matmul(q, kr.transpose(2, 3)) / std::sqrt(double(hd));         // (B, H, T, T)
  const auto future = at::ones({T, T}, at::TensorOptions().dtype(at::kBool)).triu(1);
  s = s.masked_fill(future, -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(s, -1), vr).transpose(1, 2);  // (B, T, H, hd)
}

struct Case {
  int64_t B, H, Hkv, T, hd, block;
};

// Output and input gradients of causal_attention (fp32) vs the double reference, for one shape.
void check(const Case& c) {
  SCOPED_TRACE(::testing::Message() << "B " << c.B << " H " << c.H << " H_kv " << c.Hkv << " T " << c.T << " hd "
                                    << c.hd << " block " << c.block);
  auto g = gen(1000 + c.T * 7 + c.H);
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  const auto q64 = at::randn({c.B, c.H, c.T, c.hd}, g, opt), k64 = at::randn({c.B, c.Hkv, c.T, c.hd}, g, opt),
             v64 = at::randn({c.B, c.Hkv, c.T, c.hd}, g, opt);
  const auto dout = at::randn({c.B, c.T, c.H, c.hd}, g, opt);

  auto qr = q64.clone().requires_grad_(), kr = k64.clone().requires_grad_(), vr = v64.clone().requires_grad_();
  const auto want = reference(qr, kr, vr);
  want.backward(dout);

  auto q = q64.to(at::kFloat).requires_grad_(), k = k64.to(at::kFloat).requires_grad_(),
       v = v64.to(at::kFloat).requires_grad_();
  const auto got = causal_attention(q, k, v, c.block);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  got.backward(dout.to(at::kFloat));

  const double tol = 1e-5;
  const auto err = [](const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b).abs().max().item<double>();
  };
  EXPECT_LT(err(got.detach(), want.detach()), tol);
  EXPECT_LT(err(q.grad(), qr.grad()), tol);
  EXPECT_LT(err(k.grad(), kr.grad()), tol);
  EXPECT_LT(err(v.grad(), vr.grad()), tol);
  // The gradients are not trivially zero (T = 1: dQ is exactly 0, the softmax over one key is constant).
  EXPECT_GT(vr.grad().abs().max().item<double>(), 0.1);
  if (c.T > 1) EXPECT_GT(qr.grad().abs().max().item<double>(), 0.01);
}

}  // namespace

TEST(CausalAttention, MatchesReferenceWhenTIsNotAMultipleOfTheBlock) { check({2, 4, 2, 37, 8, 8}); }
TEST(CausalAttention, MatchesReferenceForOnePosition) { check({2, 4, 4, 1, 8, 64}); }
TEST(CausalAttention, MatchesReferenceWhenTIsSmallerThanABlock) { check({1, 2, 1, 5, 16, 64}); }
TEST(CausalAttention, MatchesReferenceWhenTIsExactlyBlocks) { check({3, 2, 2, 48, 16, 16}); }
TEST(CausalAttention, MatchesReferenceWithBlockOfOne) { check({1, 4, 2, 9, 4, 1}); }

TEST(CausalAttention, MatchesReferenceForGqaGroupsOf1And2And4) {
  for (int64_t hkv : {8, 4, 2}) check({2, 8, hkv, 70, 16, 32});
}

TEST(CausalAttention, DefaultBlockAtTrainingLikeLength) { check({1, 4, 2, 300, 32, kCausalAttentionBlock}); }

TEST(CausalAttention, SameBitsAtOneAndSeveralThreads) {
  // Several threads split the (sequence, kv head) problems between them; each problem is computed alike, so output
  // and gradients are bitwise those of one thread (5 problems: uneven slices).
  auto g = gen(21);
  const auto q0 = at::randn({5, 4, 40, 8}, g), k0 = at::randn({5, 1, 40, 8}, g), v0 = at::randn({5, 1, 40, 8}, g);
  const auto dout = at::randn({5, 40, 4, 8}, g);
  const int before = at::get_num_threads();
  std::vector<std::vector<at::Tensor>> runs;
  for (int threads : {1, 3}) {
    at::set_num_threads(threads);
    auto q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
    const auto o = causal_attention(q, k, v, 16);
    o.backward(dout);
    runs.push_back({o.detach(), q.grad(), k.grad(), v.grad()});
  }
  at::set_num_threads(before);
  // With OpenBLAS (Debian's libtorch), which the attention pins to one thread per problem, bitwise. MKL (the pip
  // wheels' libtorch, GPU builds) rounds its products differently by its own thread count: to rounding there.
  for (size_t i = 0; i < runs[0].size(); ++i) {
    if (at::hasMKL())
      EXPECT_TRUE(at::allclose(runs[0][i], runs[1][i], 1e-5, 1e-6)) << "tensor " << i;
    else
      EXPECT_TRUE(runs[0][i].equal(runs[1][i])) << "tensor " << i;
  }
}

TEST(CausalAttention, AcceptsNonContiguousInputsAsTheModelPassesThem) {
  // Attention::forward passes transposed views of (B, T, heads, hd) projections.
  auto g = gen(5);
  const auto q = at::randn({2, 11, 4, 8}, g).transpose(1, 2), k = at::randn({2, 11, 2, 8}, g).transpose(1, 2),
             v = at::randn({2, 11, 2, 8}, g).transpose(1, 2);
  const auto want = reference(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble));
  EXPECT_LT((causal_attention(q, k, v, 4).to(at::kDouble) - want).abs().max().item<double>(), 1e-5);
}

TEST(CausalAttention, ShapeErrorsNameTheShapes) {
  const auto q = at::randn({1, 6, 4, 8}), k = at::randn({1, 4, 4, 8});  // 4 kv heads do not divide 6 heads
  try {
    causal_attention(q, k, k);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("H_kv divides H"), std::string::npos) << e.what();
  }
}

TEST(Sdpa, GroupedQueryEqualsSdpaOverRepeatedKv) {
  // sdpa_gqa (enable_gqa on torch >= 2.5, repeated k/v before) against HF's repeat_kv written out: query head h
  // reads kv head h / 3. Causal, masked (a chunked prefill after 5 cached positions) and one-query; values and grads.
  auto g = gen(21);
  const int64_t B = 2, H = 6, Hkv = 2, S = 9, hd = 8;
  for (int mode = 0; mode < 3; ++mode) {
    const int64_t T = mode == 0 ? S : (mode == 1 ? 4 : 1);
    const auto q0 = at::randn({B, H, T, hd}, g), k0 = at::randn({B, Hkv, S, hd}, g), v0 = at::randn({B, Hkv, S, hd}, g);
    const auto dy = at::randn({B, H, T, hd}, g);
    at::Tensor mask;
    if (mode == 1) mask = at::arange(S).unsqueeze(0) <= (at::arange(T) + (S - T)).unsqueeze(1);  // (T, S)
    auto q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
    const auto y = sdpa_gqa(q, k, v, mask, mode == 0);
    y.backward(dy);
    auto q2 = q0.clone().requires_grad_(), k2 = k0.clone().requires_grad_(), v2 = v0.clone().requires_grad_();
    const auto y2 = sdpa(q2, k2.repeat_interleave(H / Hkv, 1), v2.repeat_interleave(H / Hkv, 1), mask, mode == 0);
    y2.backward(dy);
    EXPECT_TRUE(at::allclose(y, y2, 1e-5, 1e-5)) << "mode " << mode;
    EXPECT_TRUE(at::allclose(q.grad(), q2.grad(), 1e-5, 1e-5)) << "mode " << mode;
    EXPECT_TRUE(at::allclose(k.grad(), k2.grad(), 1e-5, 1e-5)) << "mode " << mode;
    EXPECT_TRUE(at::allclose(v.grad(), v2.grad(), 1e-5, 1e-5)) << "mode " << mode;
  }
  EXPECT_THROW(sdpa_gqa(at::randn({1, 6, 3, 8}), at::randn({1, 4, 3, 8}), at::randn({1, 4, 3, 8}), at::Tensor(), true),
               std::exception);
}

TEST(Sdpa, TorchEnableGqaGroupsQueryHeadsAsRepeatKv) {
  // sdpa_gqa hands GQA to torch's enable_gqa on CUDA (flash kernel, torch >= 2.5), a branch no CPU run takes. What
  // that branch relies on is checked here on torch's CPU kernels: enable_gqa reads kv head h / R for query head h,
  // as repeat_kv (and the fallback) do, with and without a mask. Runs on torch >= 2.5 (scripts/check_torch2.sh).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  auto g = gen(22);
  const int64_t B = 2, H = 8, Hkv = 2, S = 7, T = 3, hd = 16;
  const auto q = at::randn({B, H, T, hd}, g), k = at::randn({B, Hkv, S, hd}, g), v = at::randn({B, Hkv, S, hd}, g);
  const auto mask = at::arange(S).unsqueeze(0) <= (at::arange(T) + (S - T)).unsqueeze(1);
  for (const bool masked : {false, true}) {
    const c10::optional<at::Tensor> m = masked ? c10::optional<at::Tensor>(mask) : c10::nullopt;
    const auto torch_gqa = at::scaled_dot_product_attention(q, k, v, m, 0.0, /*is_causal=*/false, c10::nullopt,
                                                            /*enable_gqa=*/true);
    const auto ours = sdpa_gqa(q, k, v, masked ? mask : at::Tensor(), false);
    EXPECT_TRUE(at::allclose(torch_gqa, ours, 1e-5, 1e-5)) << "masked " << masked;
  }
#else
  GTEST_SKIP() << "torch " << TORCH_VERSION << " has no enable_gqa (2.5+)";
#endif
}

TEST(AttentionModule, CpuPathEqualsFusedSdpaWithRepeatedKv) {
  // The module's forward and input gradient on CPU (block-causal path) vs sdpa(is_causal) over repeat_kv'd k/v fed
  // with the module's own projections.
  LlamaConfig c;
  c.hidden_size = 64, c.num_attention_heads = 8, c.num_key_value_heads = 2;
  Attention attn("model.layers.0.self_attn", c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  {
    at::NoGradGuard ng;
    auto g = gen(11);
    for (auto& p : attn->parameters()) p.copy_(at::randn(p.sizes(), g) * 0.2);
  }
  const int64_t B = 2, T = 23, hd = c.head_dim();
  auto g = gen(12);
  const auto x0 = at::randn({B, T, c.hidden_size}, g);
  const auto cs = rope_cos_sin(0, T, hd, c.rope_theta, at::kFloat, at::kCPU);
  const auto dy = at::randn({B, T, c.hidden_size}, g);

  auto x = x0.clone().requires_grad_();
  const auto y = attn->forward(x, cs.first, cs.second, 0, nullptr, nullptr);
  y.backward(dy);

  auto x2 = x0.clone().requires_grad_();
  auto q = attn->q_proj(x2).view({B, T, 8, hd}).transpose(1, 2);
  auto k = attn->k_proj(x2).view({B, T, 2, hd}).transpose(1, 2);
  auto v = attn->v_proj(x2).view({B, T, 2, hd}).transpose(1, 2);
  q = apply_rope(q, cs.first, cs.second);
  k = apply_rope(k, cs.first, cs.second).repeat_interleave(4, 1);
  v = v.repeat_interleave(4, 1);
  const auto y2 = attn->o_proj(sdpa(q, k, v, at::Tensor(), true).transpose(1, 2).reshape({B, T, c.hidden_size}));
  y2.backward(dy);
  EXPECT_TRUE(at::allclose(y, y2, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(x.grad(), x2.grad(), 1e-5, 1e-5));
}

TEST(Rope, TablesFollowThetaHandComputed) {
  // theta 100, head_dim 4: inv_freq = 100^(-2i/4) = (1, 0.1), so position 2 turns by (2, 0.2); cos repeats the
  // angles over both halves, sin is negated in the first (HF's rotate_half). A theta that did not reach the tables
  // (LLaMA-2's 1e4 for Code Llama's 1e6) would give 100^-0.5 -> 1e4^-0.5 = 0.01 here.
  const std::vector<double> cos_want = {std::cos(2.0), std::cos(0.2), std::cos(2.0), std::cos(0.2)};
  const std::vector<double> sin_want = {-std::sin(2.0), -std::sin(0.2), std::sin(2.0), std::sin(0.2)};
  const auto by_start = rope_cos_sin(2, 1, 4, 100.0, at::kFloat, at::kCPU);          // (T 1, 4) from start_pos 2
  const auto by_row = rope_cos_sin_at(at::tensor({int64_t{2}}), 4, 100.0, at::kFloat);  // (B 1, 4) at position 2
  for (const auto& [cos, sin] : {by_start, by_row}) {
    ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{1, 4}));
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(cos[0][i].item<double>(), cos_want[i], 1e-6) << i;
      EXPECT_NEAR(sin[0][i].item<double>(), sin_want[i], 1e-6) << i;
    }
  }
}

TEST(Rope, BthdLayoutEqualsApplyRopeOnTheHeadMajorView) {
  // apply_rope_bthd (training's RoPE: one CUDA kernel each way on a GPU build, apply_rope on contiguous x elsewhere)
  // against apply_rope on the (B, H, T, hd) view, computed in double: values and the gradient under a random
  // upstream gradient. head_dim 6 takes the kernel's one-element path, 16 and 128 its 16-byte vectors.
  std::vector<c10::Device> devices{c10::Device(c10::kCPU)};
  if (torch::cuda::is_available()) devices.emplace_back(c10::kCUDA, 0);
  for (const auto& dev : devices)
    for (const auto dtype : {at::kFloat, at::kBFloat16})
      for (const int64_t hd : {6, 16, 128}) {
        const int64_t B = 2, T = 5, H = 3;
        auto g = gen(100 + hd);
        const auto x0 = at::randn({B, T, H, hd}, g), dy = at::randn({B, T, H, hd}, g);
        const auto cs = rope_cos_sin(3, T, hd, 10000.0, dtype, dev);
        const auto x = x0.to(dev, dtype).clone().requires_grad_(true);  // a leaf of its own
        const auto y = apply_rope_bthd(x, cs.first, cs.second);
        ASSERT_EQ(y.sizes(), x.sizes());
        ASSERT_EQ(y.scalar_type(), dtype);
        y.backward(dy.to(dev, dtype));

        const auto xr = x.detach().to(at::kCPU, at::kDouble).transpose(1, 2).requires_grad_(true);  // (B, H, T, hd)
        const auto yr = apply_rope(xr, cs.first.to(at::kCPU, at::kDouble), cs.second.to(at::kCPU, at::kDouble));
        yr.backward(dy.to(dtype).to(at::kDouble).transpose(1, 2));
        // bf16: one rounding of the output (the reference rounds nothing); fp32: rounding only.
        const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
        EXPECT_TRUE(at::allclose(y.to(at::kCPU, at::kDouble), yr.transpose(1, 2), tol, tol))
            << dev << " " << dtype << " hd " << hd;
        EXPECT_TRUE(at::allclose(x.grad().to(at::kCPU, at::kDouble), xr.grad().transpose(1, 2), tol, tol))
            << dev << " " << dtype << " hd " << hd;
      }
}

namespace {

// The textbook one-pass decode step in double, loops only: RoPE from its angles (HF's half split), the row's key and
// value written at its position, softmax over the prefix's keys and the row's [P, pos] -> (B, Hq hd).
at::Tensor textbook_decode(const at::Tensor& qkv, const std::vector<int64_t>& pos, at::Tensor& kc, at::Tensor& vc,
                           const at::Tensor& pk, const at::Tensor& pv, int64_t Hq, int64_t Hkv, double theta) {
  const int64_t B = qkv.size(0), hd = qkv.size(2), h = hd / 2, P = pk.defined() ? pk.size(2) : 0;
  auto x = qkv.to(at::kDouble);
  const auto rope = [&](const at::Tensor& v, int64_t t) {  // (hd) at position t
    auto o = at::empty_like(v);
    for (int64_t i = 0; i < h; ++i) {
      const double a = t * std::pow(theta, -2.0 * i / hd), c = std::cos(a), s = std::sin(a);
      o[i] = v[i].item<double>() * c - v[i + h].item<double>() * s;
      o[i + h] = v[i + h].item<double>() * c + v[i].item<double>() * s;
    }
    return o;
  };
  auto out = at::zeros({B, Hq * hd}, at::kDouble);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t t = pos[b];
    for (int64_t j = 0; j < Hkv; ++j) {
      kc[b][j][t].copy_(rope(x[b][Hq + j], t));
      vc[b][j][t].copy_(x[b][Hq + Hkv + j]);
    }
    for (int64_t hq = 0; hq < Hq; ++hq) {
      const int64_t j = hq / (Hq / Hkv);
      const auto q = rope(x[b][hq], t) / std::sqrt(double(hd));
      std::vector<double> score;
      std::vector<at::Tensor> val;
      for (int64_t u = 0; u <= t; ++u) {
        const auto k = u < P ? pk[0][j][u].to(at::kDouble) : kc[b][j][u].to(at::kDouble);
        score.push_back((q * k).sum().item<double>());
        val.push_back(u < P ? pv[0][j][u].to(at::kDouble) : vc[b][j][u].to(at::kDouble));
      }
      const double mx = *std::max_element(score.begin(), score.end());
      double z = 0;
      for (const double s : score) z += std::exp(s - mx);
      auto o = out[b].narrow(0, hq * hd, hd);
      for (size_t u = 0; u < score.size(); ++u) o.add_(val[u] * (std::exp(score[u] - mx) / z));
    }
  }
  return out;
}

}  // namespace

TEST(OnePassDecode, ReferenceIsTheTextbookStep) {
  // one_pass_decode_attention off a GPU (its ATen reference) against the loop above in double: outputs and the cache
  // entries written (and nothing else), with and without a shared prefix, GQA groups of 1 and 3.
  for (const auto& [Hq, Hkv, P] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{4, 4, 0}, {6, 2, 5}, {3, 1, 2}}) {
    SCOPED_TRACE(testing::Message() << Hq << " heads, " << Hkv << " kv heads, prefix " << P);
    const int64_t hd = 8, max_len = P + 9;
    const std::vector<int64_t> pos{P, P + 8, P + 3};
    const int64_t B = static_cast<int64_t>(pos.size());
    auto g = gen(7 + Hq + P);
    const auto qkv = at::randn({B, Hq + 2 * Hkv, hd}, g);
    const auto kv = at::randn({2, B, Hkv, max_len, hd}, g);
    at::Tensor pk, pv;
    if (P > 0) pk = at::randn({1, Hkv, P, hd}, g), pv = at::randn({1, Hkv, P, hd}, g);
    const auto p = at::tensor(pos, at::TensorOptions().dtype(at::kLong));
    const auto [cos, sin] = rope_cos_sin_at(p, hd, 10000.0, at::kFloat);
    auto got_kv = kv.clone();
    const auto got = one_pass_decode_attention(qkv, cos, sin, p, got_kv[0], got_kv[1], pk, pv, Hq, Hkv);
    auto want_kv = kv.to(at::kDouble);
    auto kc = want_kv[0], vc = want_kv[1];
    const auto want = textbook_decode(qkv, pos, kc, vc, pk, pv, Hq, Hkv, 10000.0);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(at::allclose(got.to(at::kDouble), want, 1e-5, 1e-5)) << (got.to(at::kDouble) - want).abs().max();
    EXPECT_TRUE(at::allclose(got_kv.to(at::kDouble), want_kv, 1e-5, 1e-5));  // written where it should, only there
  }
}

TEST(OnePassDecode, BadShapesAndPositionsAreClearErrors) {
  const auto qkv = at::randn({2, 8, 4});  // Hq 4, Hkv 2
  const auto p = at::tensor(std::vector<int64_t>{1, 3}, at::TensorOptions().dtype(at::kLong));
  const auto [cos, sin] = rope_cos_sin_at(p, 4, 10000.0, at::kFloat);
  const auto kv = at::zeros({2, 2, 2, 4, 4});
  const auto expect_error = [](const std::function<void()>& f, const std::string& words) {
    try {
      f();
      ADD_FAILURE() << "expected an error with '" << words << "'";
    } catch (const cg::Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([&] { one_pass_decode_attention(qkv, cos, sin, p, kv[0], kv[1], {}, {}, 3, 2); }, "Hkv dividing Hq");
  expect_error([&] { one_pass_decode_attention(qkv, cos, sin, p, kv[0], kv[1], {}, {}, 2, 3); }, "Hkv dividing Hq");
  expect_error([&] { one_pass_decode_attention(qkv, cos.narrow(0, 0, 1), sin, p, kv[0], kv[1], {}, {}, 4, 2); },
               "RoPE tables");
  expect_error([&] { one_pass_decode_attention(qkv, cos, sin, p, kv[0].narrow(0, 0, 1), kv[1], {}, {}, 4, 2); },
               "caches");
  const auto past = at::tensor(std::vector<int64_t>{1, 4}, at::TensorOptions().dtype(at::kLong));  // max_len 4
  expect_error([&] { one_pass_decode_attention(qkv, cos, sin, past, kv[0], kv[1], {}, {}, 4, 2); }, "outside");
  const auto pk = at::zeros({1, 2, 2, 4});  // prefix 2: position 1 is inside it
  expect_error([&] { one_pass_decode_attention(qkv, cos, sin, p, kv[0], kv[1], pk, pk, 4, 2); }, "outside");
}

TEST(DecodeKernels, NormAndSiluReferencesAreTheModelsFormulas) {
  // add_rms_norm / silu_mul off a GPU (their references) against the formulas written out in double: HF's RMSNorm of
  // the rounded residual sum, and silu(gate) * up; the sum comes back when asked.
  auto g = gen(41);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const auto x = at::randn({3, 2, 24}, g).to(dtype), r = at::randn({3, 2, 24}, g).to(dtype);
    const auto w = (at::rand({24}, g) + 0.5).to(dtype);
    at::Tensor sum;
    const auto y = add_rms_norm(x, r, w, 1e-5, &sum);
    const auto s = (x.to(at::kDouble) + r.to(at::kDouble)).to(dtype).to(at::kDouble);
    const auto want = w.to(at::kDouble) * s / (s.pow(2).mean(-1, true) + 1e-5).sqrt();
    const double tol = dtype == at::kFloat ? 1e-5 : 1e-2;
    EXPECT_TRUE(at::allclose(sum.to(at::kDouble), s, 0, 0)) << dtype;
    EXPECT_TRUE(at::allclose(y.to(at::kDouble), want, tol, tol)) << dtype;
    const auto gu = at::randn({4, 1, 10}, g).to(dtype);
    const auto gd = gu.to(at::kDouble).narrow(-1, 0, 5), ud = gu.to(at::kDouble).narrow(-1, 5, 5);
    EXPECT_TRUE(at::allclose(silu_mul(gu).to(at::kDouble), gd / (1 + (-gd).exp()) * ud, tol, tol)) << dtype;
  }
  EXPECT_THROW(silu_mul(at::zeros({2, 5})), cg::Error);                       // odd last dim
  EXPECT_THROW(add_rms_norm(at::zeros({2, 4}), {}, at::ones({3}), 1e-5), cg::Error);  // weight of the wrong size
}

TEST(OnePassDecode, CudaKernelsEqualTheReference) {
  // The kernels (model/decode_kernels_cuda.cu) against their references on the same GPU inputs, for each dtype:
  // the attention for head dims taking 1, 2, 4 and 8 values per lane, GQA and not, with a prefix and without (every
  // row's output and every cache entry); add + RMSNorm and SiLU x up at the tiny and 7B widths. Within one rounding.
  if (!torch::cuda::is_available() || !decode_kernels_built()) GTEST_SKIP() << "needs a GPU and a CUDA build";
  const at::Device dev(at::kCUDA, 0);
  for (const auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    const double tol = dtype == at::kFloat ? 1e-5 : dtype == at::kHalf ? 2e-3 : 1.6e-2;
    for (const auto& [Hq, Hkv, hd] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {4, 4, 6}, {4, 2, 16}, {8, 1, 64}, {32, 32, 128}, {8, 2, 128}, {2, 2, 256}})
      for (const int64_t P : {0, 7, 40})
        EXPECT_LE(attention_kernel_error(dtype, dev, Hq, Hkv, hd, P, 3), tol)
            << c10::toString(dtype) << " Hq " << Hq << " Hkv " << Hkv << " hd " << hd << " P " << P;
    for (const int64_t d : {6, 64, 300, 4096}) EXPECT_LE(norm_kernel_error(dtype, dev, d, 1e-5, 3), tol) << d;
    for (const int64_t f : {3, 172, 11008}) EXPECT_LE(silu_kernel_error(dtype, dev, f, 3), tol) << f;
  }
  // The wrappers run them (checked once) on GPU tensors: the same as the references.
  const auto x = at::randn({4, 1, 64}, at::TensorOptions().device(dev)), w = at::rand({64}, x.options()) + 0.5;
  EXPECT_TRUE(at::allclose(add_rms_norm(x, x, w, 1e-5), add_rms_norm_reference(x, x, w, 1e-5), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(silu_mul(x), silu_mul_reference(x), 1e-5, 1e-5));
}

TEST(DecodeProducts, BitwiseTheMatmulsTheyReplace) {
  // decode_scores / decode_values call BLAS themselves on a CPU: every entry must be the bit pattern of at::matmul
  // (bmm), else a decode step's logits, and so a borderline draw, would change. Views of a (2, B, n_kv, L, hd) cache
  // as the decode step reads them (rows narrowed, positions narrowed past a shared prefix), the probabilities a
  // narrowed view of a wider row (the prefix path), spans across bmm's 400-multiply-add switch to its own loop.
  at::NoGradGuard no_grad;
  for (const auto& [B, n_kv, R, hd] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 4, 2, 32}, {5, 4, 2, 32}, {3, 2, 1, 16}, {2, 1, 4, 8}, {4, 8, 1, 64}}) {
    const int64_t L = 300, P = 7;
    const auto kv = at::randn({2, B + 2, n_kv, L, hd}, gen(B * 100 + hd));
    for (const int64_t S : {1, 3, 6, 7, 13, 50, 100, 201, 293}) {
      const auto k = kv.select(0, 0).narrow(0, 1, B).narrow(2, P, S);  // (B, n_kv, S, hd), strided
      const auto v = kv.select(0, 1).narrow(0, 1, B).narrow(2, P, S);
      const auto q = at::randn({B, n_kv, R, hd}, gen(S));
      const auto s = decode_scores(q, k);
      ASSERT_TRUE(at::equal(s, at::matmul(q, k.transpose(2, 3)))) << "scores B " << B << " R " << R << " S " << S;
      const auto wide = at::softmax(at::randn({B, n_kv, R, P + S}, gen(S + 1)), -1);  // prefix + own positions
      for (const auto& p : {wide.narrow(-1, P, S), at::softmax(s, -1)}) {
        const auto o = decode_values(p, v);
        ASSERT_EQ(o.sizes(), (at::IntArrayRef{B, n_kv, R, hd}));
        ASSERT_TRUE(at::equal(o, at::matmul(p, v))) << "values B " << B << " R " << R << " S " << S;
      }
    }
  }
  // Values a mistaken leading dimension or transpose would not produce by chance: a hand-checked 1-row product.
  const auto q = at::arange(2 * 32, at::kFloat).view({1, 1, 2, 32}) / 64;
  const auto k = at::ones({1, 1, 13, 32}) * at::arange(13, at::kFloat).view({1, 1, 13, 1});
  const auto s = decode_scores(q, k);  // s[r][j] = j * sum_d q[r][d]
  EXPECT_FLOAT_EQ(s[0][0][0][12].item<float>(), 12.f * (31 * 32 / 2) / 64);
  EXPECT_FLOAT_EQ(s[0][0][1][5].item<float>(), 5.f * (32 * 32 + 31 * 32 / 2) / 64);
}
