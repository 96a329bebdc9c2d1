// bench_sample_plan: expected sampling throughput of cgsample's decode loop on one GPU "on paper", from the model's
// sizes (model/accounting.h) and stated assumptions; prints a markdown table for docs/performance.md.
//
//   bench_sample_plan [--flavor 7b] [--prompt 38] [--tokens 133] [--tokens-sq-over-mean 240] [--busy 0.95]
//                     [--extra-read 1.1] [--max-new 400] [--host-ms 0.5] [--bw-efficiency 0.85]
//                     [--flop-efficiency 0.6]
//
// A decode step of R busy rows (of a batch of B) reads every weight once and, per row, the cached keys/values of the
// positions it attends to, times the extra the attention chunks read (GenerationStats: cache_read / cache_needed):
//   bytes    = weights (bf16) + R x positions x extra_read x kv_cache_bytes_per_position
//   time     = max(bytes / (bandwidth x bw_efficiency), 2 N_matmul R / (peak x flop_efficiency)) + host_ms
//   crystals = R / time / (tokens + 1)            (+1: EOS; the first token comes from the prefill, ignored here)
// A crystal of g tokens reads positions prompt .. prompt + g - 1, so the token-weighted mean position read is
// prompt + E[g^2] / (2 E[g]). With the prompt shared (cgsample reads the prompt all rows start with from one copy,
// GenerationStats::shared_prefix) the prompt's positions drop out of the per-row term; the first crystals/s column
// is what every row reading its own copy would give. Defaults: LLaMA-2's tokenizer on all 9,046 MP-20 test crystals
// in the paper's text format (cgprep's shards: mean 133 tokens, E[g^2]/E[g] 240, max 383 before EOS), its 38-token
// generation prompt (BOS included), max_new_tokens 400 as in cgsample and bench/gpu/sample_7b.sh (the KV cache is
// allocated for prompt + max_new per row).
// Memory: weights + B (prompt + max_new) kv bytes + 2 GB must fit the GPU.
#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/accounting.h"

namespace {

struct Assumptions {
  std::string flavor = "7b";
  double prompt = 38, tokens = 133, tokens_sq_over_mean = 240, busy = 0.95, extra_read = 1.1, max_new = 400;
  double host_ms = 0.5, bw_efficiency = 0.85, flop_efficiency = 0.6;
};

Assumptions parse(int argc, char** argv) {
  Assumptions a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    CG_CHECK(i + 1 < argc, "{} needs a value (see the header of bench/sample_plan.cpp)", k);
    const std::string v = argv[++i];
    if (k == "--flavor") {
      a.flavor = v;
      continue;
    }
    double* dst = k == "--prompt"                ? &a.prompt
                  : k == "--tokens"              ? &a.tokens
                  : k == "--tokens-sq-over-mean" ? &a.tokens_sq_over_mean
                  : k == "--busy"                ? &a.busy
                  : k == "--extra-read"          ? &a.extra_read
                  : k == "--max-new"             ? &a.max_new
                  : k == "--host-ms"             ? &a.host_ms
                  : k == "--bw-efficiency"       ? &a.bw_efficiency
                  : k == "--flop-efficiency"     ? &a.flop_efficiency
                                                 : nullptr;
    CG_CHECK(dst, "unknown option {} (see the header of bench/sample_plan.cpp)", k);
    *dst = std::stod(v);
  }
  return a;
}

struct Gpu {
  const char* name;
  double hbm_gb, bandwidth_tbs, peak_tflops;
};

}  // namespace

int main(int argc, char** argv) {
  const Assumptions a = parse(argc, argv);
  const auto cfg = cg::model::llama_flavor(a.flavor);
  const auto params = cg::model::count_parameters(cfg);
  const double weights = 2.0 * params.total;                                        // bf16
  const double kv = static_cast<double>(cg::model::kv_cache_bytes_per_position(cfg, 2));
  const double mean_pos = a.prompt + a.tokens_sq_over_mean / 2;                     // token-weighted
  std::printf("%s: %.2f GB of bf16 weights, %.0f KB of KV cache per cached position; crystals of %.0f tokens after "
              "a %.0f-token prompt read %.0f positions per decoded token on average (%.0f past the prompt); rows "
              "%.0f%% busy, attention reads %.2fx the positions needed, %.1f ms host time per step, %.0f%% of peak "
              "bandwidth, %.0f%% of peak FLOP/s\n\n",
              a.flavor.c_str(), weights / 1e9, kv / 1024, a.tokens, a.prompt, mean_pos, mean_pos - a.prompt,
              100 * a.busy, a.extra_read, a.host_ms, 100 * a.bw_efficiency, 100 * a.flop_efficiency);
  std::printf("| GPU | batch | KV cache allocated | fits | KV read / step | step | tokens/s | crystals/s, prompt per row "
              "| crystals/s, prompt shared (cgsample) |\n|---|---|---|---|---|---|---|---|---|\n");
  const std::vector<Gpu> gpus = {{"H100 SXM 80 GB", 80, 3.35, 989}, {"H200 141 GB", 141, 4.8, 989}};
  for (const auto& g : gpus)
    for (int batch : {128, 256, 384, 512}) {
      const double rows = a.busy * batch;
      const double alloc = batch * (a.prompt + a.max_new) * kv;
      const bool fits = weights + alloc + 2e9 <= g.hbm_gb * 1e9;
      auto crystals = [&](double positions, double* kv_read, double* step_ms) {
        *kv_read = rows * positions * a.extra_read * kv;
        const double mem_s = (weights + *kv_read) / (g.bandwidth_tbs * 1e12 * a.bw_efficiency);
        const double flop_s = 2.0 * params.matmul * rows / (g.peak_tflops * 1e12 * a.flop_efficiency);
        *step_ms = 1e3 * std::max(mem_s, flop_s) + a.host_ms;
        return rows / (*step_ms / 1e3) / (a.tokens + 1);
      };
      double kv_read, step_ms, kv_read2, step_ms2;
      const double c1 = crystals(mean_pos, &kv_read, &step_ms);
      const double c2 = crystals(mean_pos - a.prompt, &kv_read2, &step_ms2);
      std::printf("| %s | %d | %.1f GB | %s | %.1f GB | %.1f ms | %.0f | %.0f | **%.0f** |\n", g.name, batch,
                  alloc / 1e9, fits ? "yes" : "no", kv_read2 / 1e9, step_ms2, rows / (step_ms2 / 1e3), c1, c2);
    }
  return 0;
}
