// An independent, deliberately naive LLaMA-2 forward in double precision (loops, no SDPA, no torch ops beyond
// reading weights), used to check cg::model::Llama. Shares nothing with model/ but the parameter names.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace cg::test {

using Vec = std::vector<double>;

struct RefLlama {
  model::LlamaConfig c;
  std::map<std::string, at::Tensor> w;  // full weights, double, CPU

  const at::Tensor& W(const std::string& n) const { return w.at(n); }

  static Vec matvec(const at::Tensor& m, const Vec& x) {  // m (out, in)
    auto a = m.accessor<double, 2>();
    Vec y(m.size(0), 0.0);
    for (int64_t o = 0; o < m.size(0); ++o)
      for (int64_t i = 0; i < m.size(1); ++i) y[o] += a[o][i] * x[i];
    return y;
  }
  Vec rmsnorm(const Vec& x, const at::Tensor& g) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    auto ga = g.accessor<double, 1>();
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = ga[i] * x[i] * r;
    return y;
  }
  // HF half-split rotation of one head vector at position pos.
  Vec rope(const Vec& x, int64_t pos) const {
    const int64_t hd = x.size(), half = hd / 2;
    Vec y(hd);
    for (int64_t i = 0; i < half; ++i) {
      const double ang = pos * std::pow(c.rope_theta, -2.0 * i / hd);
      y[i] = x[i] * std::cos(ang) - x[i + half] * std::sin(ang);
      y[i + half] = x[i + half] * std::cos(ang) + x[i] * std::sin(ang);
    }
    return y;
  }

  // tokens[b][t] -> logits[b][t][v]
  std::vector<std::vector<Vec>> forward(const std::vector<std::vector<int64_t>>& tokens) const {
    const int64_t d = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim();
    std::vector<std::vector<Vec>> out;
    for (const auto& seq : tokens) {
      const int64_t T = seq.size();
      std::vector<Vec> h(T);
      auto emb = W("model.embed_tokens.weight").accessor<double, 2>();
      for (int64_t t = 0; t < T; ++t) {
        h[t].resize(d);
        for (int64_t i = 0; i < d; ++i) h[t][i] = emb[seq[t]][i];
      }
      for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l);
        std::vector<Vec> q(T), k(T), v(T);
        for (int64_t t = 0; t < T; ++t) {
          const Vec xn = rmsnorm(h[t], W(p + ".input_layernorm.weight"));
          q[t] = matvec(W(p + ".self_attn.q_proj.weight"), xn);
          k[t] = matvec(W(p + ".self_attn.k_proj.weight"), xn);
          v[t] = matvec(W(p + ".self_attn.v_proj.weight"), xn);
          for (int64_t hh = 0; hh < H; ++hh) {
            Vec qh(q[t].begin() + hh * hd, q[t].begin() + (hh + 1) * hd);
            qh = rope(qh, t);
            std::copy(qh.begin(), qh.end(), q[t].begin() + hh * hd);
          }
          for (int64_t hh = 0; hh < KV; ++hh) {
            Vec kh(k[t].begin() + hh * hd, k[t].begin() + (hh + 1) * hd);
            kh = rope(kh, t);
            std::copy(kh.begin(), kh.end(), k[t].begin() + hh * hd);
          }
        }
        for (int64_t t = 0; t < T; ++t) {
          Vec att(d, 0.0);
          for (int64_t hh = 0; hh < H; ++hh) {
            const int64_t g = hh / (H / KV);  // kv head of this query head
            Vec s(t + 1);
            double mx = -1e300;
            for (int64_t u = 0; u <= t; ++u) {
              double dot = 0;
              for (int64_t i = 0; i < hd; ++i) dot += q[t][hh * hd + i] * k[u][g * hd + i];
              s[u] = dot / std::sqrt(static_cast<double>(hd));
              mx = std::max(mx, s[u]);
            }
            double z = 0;
            for (auto& e : s) z += (e = std::exp(e - mx));
            for (int64_t u = 0; u <= t; ++u)
              for (int64_t i = 0; i < hd; ++i) att[hh * hd + i] += s[u] / z * v[u][g * hd + i];
          }
          const Vec o = matvec(W(p + ".self_attn.o_proj.weight"), att);
          for (int64_t i = 0; i < d; ++i) h[t][i] += o[i];
          const Vec xn = rmsnorm(h[t], W(p + ".post_attention_layernorm.weight"));
          const Vec gt = matvec(W(p + ".mlp.gate_proj.weight"), xn);
          const Vec up = matvec(W(p + ".mlp.up_proj.weight"), xn);
          Vec a(gt.size());
          for (size_t i = 0; i < a.size(); ++i) a[i] = gt[i] / (1.0 + std::exp(-gt[i])) * up[i];
          const Vec dn = matvec(W(p + ".mlp.down_proj.weight"), a);
          for (int64_t i = 0; i < d; ++i) h[t][i] += dn[i];
        }
      }
      std::vector<Vec> logits(T);
      for (int64_t t = 0; t < T; ++t) logits[t] = matvec(W("lm_head.weight"), rmsnorm(h[t], W("model.norm.weight")));
      out.push_back(logits);
    }
    return out;
  }
};

}  // namespace cg::test
