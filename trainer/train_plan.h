// cgtrain --plan: what a config costs before it runs — per-rank memory (weights, LoRA, optimizer, activations) and
// per-step communication — from model/accounting.h, with the verdict against the GPU's memory.
#pragma once
#include <string>

#include "trainer/config.h"

namespace cg {

// The memory the plan is checked against, and where that number came from.
struct PlanDevice {
  double bytes = 80e9;
  std::string what = "assumed 80 GB (H100/A100 80GB; no GPU visible here: --device-gb=N plans another)";
};
// --device-gb when given (> 0), else GPU 0's memory when model.device is cuda and a GPU is visible, else the host's
// memory for model.device=cpu, else the assumption above.
PlanDevice plan_device(const Config& cfg, double device_gb);

// The plan as text (no MPI, no weights loaded: the shapes come from model.hf_dir's config.json or, where that folder
// does not exist, model.flavor's preset; a line says which); `fits` (when given) receives the verdict. With
// model.device=cpu every rank of the grid counts against the host.
std::string train_plan_text(const Config& cfg, const PlanDevice& device = {}, bool* fits = nullptr);
// Prints train_plan_text to stdout; returns whether it fits.
bool print_train_plan(const Config& cfg, const PlanDevice& device);

}  // namespace cg
