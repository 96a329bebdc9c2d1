// cgexport: a training run's checkpoint → PEFT adapter (gathered over tp), and with --merge a full HF checkpoint.
//   cgexport RUN_DIR [--step N] --out DIR [--merge] [--base HF_DIR] [--dtype fp32|bf16|fp16]
#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <spdlog/spdlog.h>

#include "common/cli_usage.h"
#include "common/input_error.h"
#include "common/log.h"
#include "dist/runtime.h"
#include "trainer/train_export.h"

namespace {

// Before MPI_Init (run_main): a wrong option costs no MPI start. nullopt: it printed --help.
std::optional<cg::ExportOptions> parse_cgexport(int argc, char** argv) {
  cg::ExportOptions o;
  CLI::App app{"Export a cgtrain run: PEFT adapter (adapter_model.safetensors + adapter_config.json), and with "
               "--merge a Hugging Face checkpoint with the adapter folded into the weights."};
  app.formatter(std::make_shared<cg::UsageLine>(
      "usage: cgexport RUN_DIR --out DIR [--step N] [--merge] [--base HF_DIR] [--dtype fp32|bf16|fp16] [--help]"));
  app.add_option("run_dir", o.run_dir, "train.run_dir of the run (or one of its checkpoints/step-N folders)")
      ->required();
  app.add_option("--step", o.step, "checkpoint step (default: newest complete)")
      ->check(cg::whole_number("a checkpoint step (the N of checkpoints/step-N)", 0));
  app.add_option("--out", o.out, "output folder")->required();
  app.add_flag("--merge", o.merge, "also write the merged HF checkpoint (adapter goes to OUT/adapter)");
  app.add_option("--base", o.base, "the base Hugging Face folder, when it moved since training (default: the run's "
                 "model.hf_dir); --merge reads its weights, the adapter names it as base_model_name_or_path");
  app.add_option("--dtype", o.dtype, "fp32 | bf16 | fp16 for the adapter and the written weights (default: the "
                 "adapter fp32, a merged checkpoint in the base's own dtype, e.g. fp16 for Meta's LLaMA-2)")
      ->check(cg::one_of({"fp32", "bf16", "fp16"}));
  if (!cg::parse_options(app, argc, argv, "cgexport")) return std::nullopt;
  return o;
}

// One process's work: under mpirun (a job script that starts every tool on all its tasks) rank 0 alone exports, so
// that no two ranks write one --out, and an error is said once, by rank 0; the other ranks wait for its outcome,
// asleep (rank0_text). A std::filesystem error on a path it was given is said as what to correct (every_rank_alike),
// not libstdc++'s words.
int cgexport_main(cg::ExportOptions& o) {
  const auto& rt = cg::dist::runtime();
  cg::init_logging(rt.rank, rt.world);
  const std::string ck = cg::dist::rank0_text([&] { return cg::every_rank_alike([&] { return cg::export_run(o); }); });
  const bool adapter = o.merge && std::filesystem::exists(std::filesystem::path(o.out) / "adapter");
  spdlog::info("exported {} to {}{}", ck, o.out,
               o.merge ? (adapter ? " (merged HF checkpoint; the LoRA adapter in adapter/)" : " (merged HF checkpoint)")
                       : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, parse_cgexport, cgexport_main); }
