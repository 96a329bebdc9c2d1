// bench_attention: causal self-attention forward + backward on CPU, the way the model's training step runs it, for
// the old path (repeat_kv + fused SDPA, is_causal: on libtorch 1.13 CPU the math path over the full (T, T) scores)
// against model/attention.h's causal_attention (block-causal, hand-written backward) at several block sizes.
//
//   bench_attention [B H H_kv T hd] [--reps N] [--threads N] [--blocks 32,64,128]
//
// Defaults: the tiny flavor's training shape (8, 8, 4, 512, 32). Variants run interleaved, each rep timing one
// forward + backward with a fixed upstream gradient; prints the best and median ms per variant (the best is the
// least disturbed on a shared machine).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/omp_env.h"
#include "model/attention.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The pre-causal_attention path of Attention::forward: HF repeat_kv, then the fused SDPA. -> (B, T, H, hd)
at::Tensor sdpa_path(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3), Hkv = k.size(1), R = H / Hkv;
  const auto kr = k.unsqueeze(2).expand({B, Hkv, R, T, hd}).reshape({B, H, T, hd});
  const auto vr = v.unsqueeze(2).expand({B, Hkv, R, T, hd}).reshape({B, H, T, hd});
  return cg::model::sdpa(q, kr, vr, at::Tensor(), true).transpose(1, 2);
}

}  // namespace

int main(int argc, char** argv) {
  cg::keep_passive_omp_for_children();  // as every tool does (run_main); it also links in the .preinit_array entry
  std::vector<int64_t> dims = {8, 8, 4, 512, 32};
  std::vector<int64_t> blocks = {32, 64, 128};
  int reps = 5, threads = 1;
  size_t npos = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--blocks") && i + 1 < argc) {
      blocks.clear();
      for (std::string s = argv[++i]; !s.empty();) {
        const auto c = s.find(',');
        blocks.push_back(std::stoll(s.substr(0, c)));
        s = c == std::string::npos ? "" : s.substr(c + 1);
      }
    } else if (npos < dims.size()) {
      dims[npos++] = std::stoll(argv[i]);
    } else {
      std::fprintf(stderr, "usage: bench_attention [B H H_kv T hd] [--reps N] [--threads N] [--blocks 32,64]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
  const int64_t B = dims[0], H = dims[1], Hkv = dims[2], T = dims[3], hd = dims[4];
  std::printf("causal attention fwd+bwd on CPU, fp32, %d thread(s): B %ld, H %ld, H_kv %ld, T %ld, hd %ld\n",
              threads, long(B), long(H), long(Hkv), long(T), long(hd));
  auto g = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto q0 = at::randn({B, H, T, hd}, g), k0 = at::randn({B, Hkv, T, hd}, g), v0 = at::randn({B, Hkv, T, hd}, g);
  const auto dout = at::randn({B, T, H, hd}, g);

  struct Variant {
    std::string name;
    int64_t block;  // 0: the SDPA path
    std::vector<double> ms;
  };
  std::vector<Variant> vs{{"repeat_kv + sdpa(is_causal)", 0, {}}};
  for (int64_t b : blocks) vs.push_back({"causal_attention block " + std::to_string(b), b, {}});
  for (int rep = 0; rep < reps + 1; ++rep) {  // rep 0 warms up
    for (auto& v : vs) {
      auto q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), vv = v0.clone().requires_grad_();
      const double t0 = now_s();
      const auto out = v.block ? cg::model::causal_attention(q, k, vv, v.block) : sdpa_path(q, k, vv);
      out.backward(dout);
      if (rep > 0) v.ms.push_back(1e3 * (now_s() - t0));
    }
  }
  for (auto& v : vs) {
    std::sort(v.ms.begin(), v.ms.end());
    std::printf("%-32s best %8.1f ms  median %8.1f ms  (x%.2f of sdpa best)\n", v.name.c_str(), v.ms.front(),
                v.ms[v.ms.size() / 2], vs[0].ms.front() / v.ms.front());
  }
  return 0;
}
