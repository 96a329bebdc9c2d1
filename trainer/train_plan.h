// cgtrain --plan: what a config costs before it runs — per-rank memory (weights, LoRA, optimizer, activations) and
// per-step communication — from model/accounting.h, with the verdict against the GPU's memory.
#pragma once
#include <string>

#include "trainer/config.h"

namespace cg {

// The plan as text (no MPI, no weights loaded: the shapes come from model.hf_dir's config.json or model.flavor).
std::string train_plan_text(const Config& cfg);
// Prints train_plan_text to stdout.
void print_train_plan(const Config& cfg);

}  // namespace cg
