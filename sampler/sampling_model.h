// The model cgsample and cgeval score and sample with, built in the one fixed order (dist::build_llama):
// build (tp-local sizes) -> base weights -> apply TP -> adapter -> merge, from whichever of these the config names:
//   model.hf_dir                    an HF checkpoint (a base model, or a merged export from cgexport --merge);
//                                   empty: random init of model.flavor with model.init_seed (tiny/test sizes)
//   sample.adapter = PEFT folder    (adapter_config.json) LoRA factors injected at their tp slices, then merged
//   sample.adapter = run checkpoint run_dir (newest complete step) or run_dir/checkpoints/step-N: the run's own
//                                   config.yaml and model_config.json give the shape, base and mode; LoRA runs are
//                                   injected + merged, full-parameter runs (lora.enabled=false) load every weight
// Any tp degree: each rank loads its own slices; the result computes what the serial model computes.
#pragma once
#include <c10/core/Device.h>

#include <string>

#include "data/tokenizer.h"
#include "dist/parallel_dims.h"
#include "model/llama.h"
#include "trainer/config.h"

namespace cg {

enum class AdapterKind { kNone, kPeft, kRunCheckpoint };

// The tp x dp grid from parallel.tp / parallel.dp / parallel.backend / parallel.mpi_wait (a single-process grid when
// world and tp are 1, so no MPI group is made). Collective over the world.
dist::ParallelDims sampling_dims(const Config& c, const c10::Device& device, int world);

// What sample.adapter names (errors say what a usable folder holds).
AdapterKind adapter_kind(const std::string& path);

// The sentencepiece model to use: the one sample.adapter was trained with (its tokenizer.model: cgexport copies it
// beside a PEFT adapter, cgtrain keeps it in its run and step folders); data.tokenizer, when set, must be that same
// file (else an error). Without an adapter's: data.tokenizer, or for "train" model.hf_dir's tokenizer.model, else
// <data.shards_dir>/tokenizer.model. Its errors are cg::Error, as they come (load_sampling_tokenizer says them once).
std::string sampling_tokenizer_path(const Config& c);

// The tokenizer sampling reads, and the file it was read from (cgsample names it and keys its journal by its bytes).
struct SamplingTokenizer {
  std::string path;
  Tokenizer tokenizer;
};

// sampling_tokenizer_path's file, loaded, after check_sample_adapter_exists (a missing sample.adapter is said as
// itself, not as the tokenizer read in its place). Every rank picks and reads the same file at the same point of the
// launch: an error in any (no such adapter, no tokenizer there, another run's, not a tokenizer) is a cg::InputError,
// said once under mpirun.
SamplingTokenizer load_sampling_tokenizer(const Config& c);

// Builds the model described above on `device` (dtype model.dtype), tp-sharded over dims, in eval mode with no
// LoRA hooks left. tokenizer_vocab: the vocabulary of a randomly initialised model. Collective over tp.
// *description (optional) gets one line saying what was loaded; *identity (optional) what identifies its weights
// whatever the paths (the base's sampled values, the adapter's digest, the run checkpoint's manifest): cgsample's
// journal key. Errors in the files it reads are cg::InputError, said once under mpirun (a device's own are not).
model::Llama load_sampling_model(const Config& c, const dist::ParallelDims& dims, int64_t tokenizer_vocab,
                                 const c10::Device& device, std::string* description = nullptr,
                                 std::string* identity = nullptr);

}  // namespace cg
