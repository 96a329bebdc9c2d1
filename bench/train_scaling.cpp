// bench_train_scaling: expected step time of a tp x dp LoRA run "on paper", from model/accounting.h's plan (FLOPs per
// token, tp/dp bytes per step) and stated hardware assumptions; prints a markdown table for docs/performance.md.
//
//   bench_train_scaling [--flavor 70b] [--tp 8] [--dp 8] [--peak-tflops 989] [--efficiency 0.5]
//                       [--nvlink-gbs 450] [--ib-gbs 50] [--latency-us 20] [--seq-len 1024]
//
// Model of one optimizer step on one rank (nothing overlapped: cgtrain's tp all-reduces sit on the critical path of
// forward and backward, and TrainGrads' single dp all-reduce runs after the last backward):
//   compute = flops_per_token_hw x tokens of this tp group / tp / (peak x efficiency)
//   tp comm = tp_bytes_per_step / nvlink bus bandwidth + tp_allreduces_per_step x latency     (inside a node)
//   dp comm = dp_bytes_per_step / ib bandwidth per GPU + 2 log2(dp) x latency                 (across nodes)
// where *_bytes_per_step are what each rank sends in a ring all-reduce (2 (n-1)/n S), i.e. NCCL's "bus bandwidth"
// convention. Rows: micro_batch x seq_len, LoRA targets, activation checkpointing; the plan's memory verdict is shown.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/accounting.h"

namespace {

struct Assumptions {
  std::string flavor = "70b";
  int64_t tp = 8, dp = 8, seq_len = 1024;
  double peak_tflops = 989;  // H100 SXM dense bf16
  double efficiency = 0.5;   // achieved / peak on the matmuls (the GPU target)
  double nvlink_gbs = 450;   // all-reduce bus bandwidth inside a node
  double ib_gbs = 50;        // per GPU across nodes (one 400 Gb/s NIC per GPU)
  double latency_us = 20;    // per all-reduce call
};

Assumptions parse(int argc, char** argv) {
  Assumptions a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    CG_CHECK(i + 1 < argc, "{} needs a value (see the header of bench/train_scaling.cpp)", k);
    const std::string v = argv[++i];
    if (k == "--flavor") a.flavor = v;
    else if (k == "--tp") a.tp = std::stoll(v);
    else if (k == "--dp") a.dp = std::stoll(v);
    else if (k == "--seq-len") a.seq_len = std::stoll(v);
    else if (k == "--peak-tflops") a.peak_tflops = std::stod(v);
    else if (k == "--efficiency") a.efficiency = std::stod(v);
    else if (k == "--nvlink-gbs") a.nvlink_gbs = std::stod(v);
    else if (k == "--ib-gbs") a.ib_gbs = std::stod(v);
    else if (k == "--latency-us") a.latency_us = std::stod(v);
    else CG_FAIL("unknown option {}; use --flavor --tp --dp --seq-len --peak-tflops --efficiency --nvlink-gbs "
                 "--ib-gbs --latency-us", k);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Assumptions a = parse(argc, argv);
    const auto model = cg::model::llama_flavor(a.flavor);
    std::printf("%s, tp %lld x dp %lld (%lld GPUs), seq_len %lld; peak %.0f TFLOP/s x efficiency %.2f, NVLink %.0f "
                "GB/s bus, IB %.0f GB/s per GPU, %.0f us per all-reduce\n\n",
                a.flavor.c_str(), (long long)a.tp, (long long)a.dp, (long long)(a.tp * a.dp), (long long)a.seq_len,
                a.peak_tflops, a.efficiency, a.nvlink_gbs, a.ib_gbs, a.latency_us);
    std::printf("| LoRA targets | micro-batch | act. ckpt | memory/GPU (fits 80 GB) | tokens/step | compute | tp comm "
                "(%% of step) | dp comm | step time | tokens/s (all GPUs) | comm share |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    const std::vector<std::vector<std::string>> targets = {{"q_proj", "v_proj"}, {"all-linear"}};
    for (const auto& tg : targets)
      for (int64_t mb : {1, 4, 8})
        for (bool ckpt : {false, true}) {
          cg::model::PlanInputs in;
          in.model = model;
          in.tp = a.tp;
          in.dp = a.dp;
          in.micro_batch = mb;
          in.seq_len = a.seq_len;
          in.weight_bytes = 2;
          in.activation_checkpointing = ckpt;
          in.lora_targets = tg;
          const cg::model::Plan p = cg::model::make_plan(in);
          const double tokens_group = double(mb) * double(a.seq_len);  // one tp group's tokens per step
          const double compute = p.flops_per_token_hw * tokens_group / double(a.tp) /
                                 (a.peak_tflops * 1e12 * a.efficiency);
          const double tp_comm = p.tp_bytes_per_step / (a.nvlink_gbs * 1e9) +
                                 double(p.tp_allreduces_per_step) * a.latency_us * 1e-6;
          const double dp_comm = p.dp_bytes_per_step / (a.ib_gbs * 1e9) +
                                 (a.dp > 1 ? 2 * std::log2(double(a.dp)) * a.latency_us * 1e-6 : 0.0);
          const double step = compute + tp_comm + dp_comm;
          std::printf("| %s | %lld | %s | %.1f GB (%s) | %.0f | %.0f ms | %.0f ms (%.0f%%) | %.2f ms | %.0f ms "
                      "| %.0f | %.0f%% |\n",
                      tg.size() == 1 ? tg[0].c_str() : "q_proj, v_proj", (long long)mb, ckpt ? "on" : "off",
                      p.total / 1e9, p.fits ? "yes" : "no", p.tokens_per_step, compute * 1e3, tp_comm * 1e3,
                      100 * tp_comm / step, dp_comm * 1e3, step * 1e3, p.tokens_per_step / step,
                      100 * (tp_comm + dp_comm) / step);
        }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_scaling: %s\n", e.what());
    return 1;
  }
}
