// The field list (trainer/config_fields.h): every field of cg::Config listed ONCE in visit_config() below, with its
// dotted key, doc string and rule. YAML parsing, dotted overrides, validation, --help, to_yaml, the hash and
// docs/config.md all walk this list.
// Adding a key: add the field (default + comment) to config.h, one line here, then regenerate docs/config.md with
// `build/trainer/cgconfigdoc > docs/config.md` (a test fails until you do).
#include "trainer/config_fields.h"

#include <utility>

namespace cg::config_detail {
namespace {

Rule any() { return {}; }
Rule at_least(double lo) { Rule r; r.min = lo; return r; }
Rule above(double lo) { Rule r; r.min = lo; r.min_open = true; return r; }
Rule in_range(double lo, double hi) { Rule r; r.min = lo; r.max = hi; return r; }
Rule in_range_open_hi(double lo, double hi) { Rule r = in_range(lo, hi); r.max_open = true; return r; }
Rule in_range_open_lo(double lo, double hi) { Rule r = in_range(lo, hi); r.min_open = true; return r; }
Rule one_of(std::vector<std::string> c) { Rule r; r.choices = std::move(c); return r; }
Rule nonempty() { Rule r; r.nonempty = true; return r; }
Rule number_or_empty() { Rule r; r.numeric_or_empty = true; return r; }
Rule nonempty_one_of(std::vector<std::string> c) { Rule r = one_of(std::move(c)); r.nonempty = true; return r; }
Rule space_group_or_none() { Rule r = in_range(0, 230); r.space_group = true; return r; }

// THE field list: key, pointer into `c`, doc (required, non-empty), rule. Order = order in --help, YAML and docs.
template <class F>
void visit_config(Config& c, F&& f) {
  auto& m = c.model;
  f("model.flavor", &m.flavor, "model size preset: tiny | 7b | 13b | 70b; ignored when model.hf_dir has a config.json",
    one_of({"tiny", "7b", "13b", "70b"}));
  f("model.hf_dir", &m.hf_dir, "Hugging Face checkpoint folder (config.json + *.safetensors); empty: random init", any());
  f("model.device", &m.device, "where the model runs: auto (cuda when available) | cpu | cuda",
    one_of({"auto", "cpu", "cuda"}));
  f("model.dtype", &m.dtype,
    "base weight dtype: auto (bf16 on cuda, fp32 on cpu) | fp32 | bf16 | fp16 (GPU sampling only: cgtrain refuses "
    "it, having no loss scaling)",
    one_of({"auto", "fp32", "bf16", "fp16"}));
  f("model.activation_checkpointing", &m.activation_checkpointing,
    "recompute each decoder layer in backward to save activation memory", any());
  f("model.init_seed", &m.init_seed, "seed of the random init; the full model is the same whatever the tp degree",
    any());

  auto& d = c.data;
  f("data.train_csv", &d.train_csv,
    "training split: a CSV in CDVAE's layout (.csv or .csv.gz; material_id and cif required) or a folder of CIF "
    "files (docs/formats.md#cif)", nonempty());
  f("data.val_csv", &d.val_csv, "validation split, as data.train_csv; empty: none", any());
  f("data.test_csv", &d.test_csv, "test split (novelty reference in cgeval), as data.train_csv; empty: none", any());
  f("data.columns", &d.columns,
    "another dataset's CSV columns, as a list of name=column (e.g. [formation_energy_per_atom=heat_ref, "
    "material_id=id]): the column each of material_id, cif, pretty_formula, spacegroup.number, "
    "formation_energy_per_atom, band_gap, e_above_hull is read from (unmapped: its own name; name=name: as unmapped), "
    "as a rename: a column is read under its new name only, and an unmapped name whose column another reads is read "
    "from no column (band_gap=formation_energy_per_atom leaves formation_energy_per_atom unknown; add "
    "formation_energy_per_atom=band_gap to swap them), in data.*_csv files by cgprep, cgsample and cgeval, and in "
    "other CSVs laid out like them; a file the shards were made from is read with the shards' mapping, which "
    "cgtrain's config.yaml records (docs/formats.md#other-datasets)",
    any());
  f("data.shards_dir", &d.shards_dir, "HDF5 shard folder: cgprep writes it, cgtrain reads it", nonempty());
  f("data.tokenizer", &d.tokenizer,
    "sentencepiece .model path, or \"train\": fit a small tokenizer on the training text", nonempty());
  f("data.tokenizer_vocab_size", &d.tokenizer_vocab_size, "vocabulary size when data.tokenizer = train: 256 byte "
    "pieces, 3 control pieces and one per distinct character of the text at least (cgprep says how many)",
    at_least(260));
  f("data.max_rows", &d.max_rows,
    "cgprep: 0: all rows; else only the first N rows of each split (quick runs); cgsample and cgeval read the "
    "data.*_csv files whole", at_least(0));
  f("data.copies", &d.copies, "augmented copies written per crystal (the shards keep the copy index as int16)",
    in_range(1, 32767));
  f("data.translate", &d.translate, "augment (train split): one random uniform shift of all fractional coordinates, wrapped to [0,1)",
    any());
  f("data.permute", &d.permute, "augment (train split): random atom order", any());
  f("data.infill_fraction", &d.infill_fraction, "share of infill prompts; the rest are generation prompts (the "
    "reference's llama_finetune.py: 0.34, generation when random() < 0.66)",
    in_range(0, 1));
  f("data.angle_mode", &d.angle_mode, "how angles become integers: round | truncate (the reference code's int())",
    one_of({"round", "truncate"}));
  f("data.site_order", &d.site_order, "the order of each crystal's sites, in its text and wherever a CSV or CIF "
    "crystal is read (cgprep, cgsample's infill and conditions, cgeval's references): pymatgen (CifParser's, "
    "grouped by element and sorted, as the reference code's Structure.from_str) | file (as the CIF lists them, each "
    "site followed by its symmetry images); MP-20's texts are the same in both", one_of({"pymatgen", "file"}));
  f("data.loss_on", &d.loss_on, "tokens that carry loss: all (as the reference) | completion (after the prompt)",
    one_of({"all", "completion"}));
  f("data.max_tokens", &d.max_tokens, "samples longer than this many tokens are skipped with a counted reason",
    at_least(1));
  f("data.seed", &d.seed, "seed of cgprep's augmentation and prompt choice (the loader's order follows train.seed)", any());
  f("data.strict", &d.strict, "the first malformed CSV row is an error instead of a counted skip", any());
  f("data.shard_samples", &d.shard_samples, "samples per HDF5 shard file", at_least(1));

  auto& l = c.lora;
  f("lora.enabled", &l.enabled, "false: full-parameter training (tiny from-scratch baseline)", any());
  f("lora.r", &l.r, "LoRA rank", at_least(1));
  f("lora.alpha", &l.alpha, "LoRA alpha; scale = alpha / r (alpha / sqrt(r) with lora.rslora)", above(0));
  f("lora.dropout", &l.dropout, "dropout on the LoRA path input, in [0, 1)", in_range_open_hi(0, 1));
  f("lora.targets", &l.targets,
    "modules that get adapters: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear",
    nonempty_one_of({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "all-linear"}));
  f("lora.rslora", &l.rslora, "rank-stabilized LoRA: scale alpha / sqrt(r) instead of alpha / r", any());
  f("lora.init_adapter", &l.init_adapter, "PEFT adapter folder to start from (continue training); empty: fresh",
    any());

  auto& p = c.parallel;
  f("parallel.tp", &p.tp, "tensor-parallel degree (ranks that split each layer, inside a node)", at_least(1));
  f("parallel.dp", &p.dp, "data-parallel degree; 0: world size / parallel.tp", at_least(0));
  f("parallel.backend", &p.backend, "collectives: auto (nccl on cuda, mpi on cpu) | mpi | nccl",
    one_of({"auto", "mpi", "nccl"}));
  f("parallel.mpi_wait", &p.mpi_wait,
    "how a rank waits in an MPI collective for late ranks: sleep (a barrier waited on asleep first: the core is free "
    "for others, one more message round per collective) | poll (OpenMPI's blocking call alone, which polls its core) "
    "| auto (sleep on one node or an oversubscribed node, poll across nodes with a core per thread; "
    "docs/cluster.md#ranks-waiting); the MPI backend's collectives, and every backend's CPU ones; read by cgtrain, "
    "cgsample, cgeval and bench_train_step",
    one_of({"auto", "sleep", "poll"}));

  auto& t = c.train;
  f("train.run_dir", &t.run_dir, "run folder: resolved config, metrics.jsonl, checkpoints/", nonempty());
  f("train.steps", &t.steps, "optimizer steps", at_least(1));
  f("train.micro_batch", &t.micro_batch, "sequences per rank per micro-step", at_least(1));
  f("train.seq_len", &t.seq_len, "longest packed/padded training sequence (tokens)", at_least(2));
  f("train.grad_accum", &t.grad_accum, "micro-steps accumulated per optimizer step; a step's global batch is "
    "micro_batch x dp x grad_accum samples (a resume keeps the product), its loss the mean over all their loss tokens "
    "(a crystal weighs by its length; the reference averages one sequence per device: docs/formats.md#loader-batches)",
    at_least(1));
  f("train.lr", &t.lr, "peak learning rate", in_range_open_lo(0, 10));
  f("train.schedule", &t.schedule, "lr decay after warmup: cosine | linear | constant",
    one_of({"cosine", "linear", "constant"}));
  f("train.warmup_steps", &t.warmup_steps, "linear warmup from 0 over this many steps", at_least(0));
  f("train.min_lr_ratio", &t.min_lr_ratio, "final lr = train.lr * min_lr_ratio", in_range(0, 1));
  f("train.weight_decay", &t.weight_decay, "AdamW decoupled weight decay", at_least(0));
  f("train.beta1", &t.beta1, "AdamW beta1", in_range_open_hi(0, 1));
  f("train.beta2", &t.beta2, "AdamW beta2", in_range_open_hi(0, 1));
  f("train.eps", &t.eps, "AdamW epsilon", above(0));
  f("train.clip_grad_norm", &t.clip_grad_norm, "clip the global gradient norm to this; 0: off", at_least(0));
  f("train.seed", &t.seed, "seed of LoRA init, dropout and the data loader order", any());
  f("train.val_every", &t.val_every, "validate every N steps; 0: never", at_least(0));
  f("train.val_samples", &t.val_samples, "samples per validation: the first N of the val split that fit "
    "train.seq_len (cgprep's order; the same whatever the layout, micro_batch and train.seed, but another seq_len may "
    "leave out or take in other samples); 0: all", at_least(0));
  f("train.max_bad_steps", &t.max_bad_steps, "consecutive NaN/inf losses (skipped steps) before aborting",
    at_least(0));
  f("train.threads", &t.threads,
    "CPU threads per rank (torch intra-op and OpenBLAS); 0: OMP_NUM_THREADS, else cores / local ranks", at_least(0));

  auto& k = c.checkpoint;
  f("checkpoint.every", &k.every, "save every N steps; 0: only at the end", at_least(0));
  f("checkpoint.keep_last", &k.keep_last, "complete checkpoints kept; older step-N/ folders are deleted",
    at_least(1));
  f("checkpoint.resume", &k.resume, "resume from the newest complete step-N/ in train.run_dir/checkpoints", any());

  auto& g = c.log;
  f("log.level", &g.level, "trace | debug | info | warn | error", one_of({"trace", "debug", "info", "warn", "error"}));
  f("log.every", &g.every, "steps between progress lines", at_least(1));
  f("log.all_ranks", &g.all_ranks, "every rank logs at log.level (else ranks > 0 only warn)", any());

  auto& s = c.sample;
  f("sample.adapter", &s.adapter,
    "PEFT adapter folder, a cgtrain run_dir (newest step) or run_dir/checkpoints/step-N; empty: base/merged model",
    any());
  f("sample.out_dir", &s.out_dir, "where samples are written (samples.jsonl, cifs/, summary.json); empty: "
    "<train.run_dir>/samples, the run's own", any());
  f("sample.task", &s.task, "generate (unconditional or conditioned) | infill", one_of({"generate", "infill"}));
  f("sample.num_samples", &s.num_samples, "samples to draw; at most 1,000,000 a run (they are held in memory until "
    "written): for more, several runs with other sample.seed and sample.out_dir", in_range(1, 1000000));
  f("sample.batch_size", &s.batch_size, "sequences decoded together", at_least(1));
  f("sample.max_new_tokens", &s.max_new_tokens, "longest generated continuation (tokens; MP-20 crystals take up to "
    "384 LLaMA-2 tokens with EOS); a sample cut off here counts as unparsed; infill: at most 10, the reference's, "
    "whose first line is the answer", at_least(1));
  f("sample.min_new_tokens", &s.min_new_tokens, "EOS is not drawn before this many new tokens (where anything else "
    "may follow; < sample.max_new_tokens); 0: off. Benchmarks use it for crystals of a trained model's length from "
    "untrained weights", at_least(0));
  f("sample.temperature", &s.temperature, "softmax temperature; 0: greedy. The default 0.7 (with top_p 0.9) is "
    "cgtrain's own; the reference's llama_sample.py defaults to 0.9 / 0.9, and the paper's saved samples are named "
    "by the pairs 0.7_0.7, 0.7_1.0, 1.0_0.7, 1.0_1.0: set both to compare with one", at_least(0));
  f("sample.top_p", &s.top_p, "nucleus sampling mass, in [0, 1]; 1: off; 0: the most likely token only (see "
    "sample.temperature for the reference's values)", in_range(0, 1));
  f("sample.top_k", &s.top_k, "keep the k most likely tokens; 0: off", at_least(0));
  f("sample.seed", &s.seed, "sampling seed", any());
  f("sample.constrained", &s.constrained, "grammar-constrained decoding (always parseable crystal text)", any());
  f("sample.share_prompt", &s.share_prompt,
    "decode steps read the prompt tokens all samples start with from one copy of their keys/values (same samples "
    "up to rounding); false: every row reads its own",
    any());
  f("sample.cuda_graphs", &s.cuda_graphs,
    "replay the decode step as CUDA graphs (GPU, tp 1): every step runs all sample.batch_size rows; with the "
    "decoding kernels (sample.decode_kernels) one graph serves every step, with libtorch's operators one graph per "
    "attention span rounded up to 64 positions; each captured on first use and checked against the eager step; "
    "cuts the host's per-operator cost, which bounds a GPU decode step; on a CPU the same padded steps run eagerly "
    "(slower)",
    any());
  f("sample.decode_kernels", &s.decode_kernels,
    "cgtrain's CUDA kernels for decoding: on (the one-pass attention, which writes the rows' keys and values and "
    "attends each row over exactly its own positions in two kernels a layer, the residual add with RMSNorm in one, "
    "SiLU x up in one; each checked against its reference before its first use; off a GPU the attention's reference, "
    "row by row, slow) | off (libtorch's operators; attention over chunks of rows) | auto (on with a GPU and a build "
    "that has the kernels, else off)",
    one_of({"auto", "on", "off"}));
  f("sample.formula", &s.formula, "condition: reduced formula, e.g. LiFePO4; empty: not given", any());
  f("sample.spacegroup", &s.spacegroup, "condition: space group, its number 1..230 or its Hermann-Mauguin symbol "
    "(Fm-3m, \"F m -3 m\", P6_3/mmc), read as its number, which the prompt states; 0: not given",
    space_group_or_none());
  f("sample.formation_energy", &s.formation_energy, "condition: formation energy per atom (eV); empty: not given",
    number_or_empty());
  f("sample.band_gap", &s.band_gap, "condition: band gap (eV); empty: not given", number_or_empty());
  f("sample.e_above_hull", &s.e_above_hull, "condition: energy above hull (eV/atom); empty: not given",
    number_or_empty());
  f("sample.conditions_from", &s.conditions_from,
    "draw each sample's conditions from a row of this CSV or CIF folder (a path, or data.test_csv / data.val_csv / "
    "data.train_csv: that key's value), as the paper's conditional evaluation; formula and space group derived where "
    "it gives none, as cgprep does; empty: the fixed sample.formula ... keys", any());
  f("sample.condition_on", &s.condition_on,
    "with sample.conditions_from: the row attributes each prompt states (rows lacking one are not drawn)",
    nonempty_one_of({"formula", "spacegroup", "formation_energy", "band_gap", "e_above_hull"}));

  auto& e = c.eval;
  f("eval.input", &e.input, "cgsample folder, CSV (CDVAE layout) or folder of CIFs; empty: cgsample's folder "
    "(sample.out_dir, by default <train.run_dir>/samples)", any());
  f("eval.out", &e.out, "report folder; empty: <eval.input>/eval for a folder, <eval.input>.eval for a file", any());
  f("eval.max_rows", &e.max_rows,
    "0: all; else evaluate the first N records of a samples file (infill ones too), rows of a CSV or blocks of a CIF "
    "folder", at_least(0));
  f("eval.min_distance", &e.min_distance, "structural validity: smallest allowed interatomic distance (Å)",
    at_least(0));
  f("eval.min_volume", &e.min_volume, "structural validity: smallest allowed cell volume (Å^3)", at_least(0));
  f("eval.invariance", &e.invariance,
    "log-likelihood change, atoms permuted vs elements swapped, on data.test_csv (model loaded as cgsample does)",
    any());
  f("eval.invariance_crystals", &e.invariance_crystals, "crystals used by the invariance check", at_least(1));
  f("eval.invariance_translations", &e.invariance_translations,
    "translated copies per crystal for the invariance check's IPT (increase in perplexity under translation); 0: off",
    at_least(0));
  f("eval.train_csv", &e.train_csv,
    "novelty reference: CSV path or CIF folder, data.train_csv (that key's value) or empty: skip", any());
  f("eval.ref_csv", &e.ref_csv,
    "distribution reference: CSV path or CIF folder, data.test_csv (that key's value) or empty: skip", any());
  f("eval.match_ltol", &e.match_ltol, "structure matcher: fractional tolerance on lattice lengths (pymatgen ltol)",
    above(0));
  f("eval.match_stol", &e.match_stol,
    "structure matcher: largest site displacement / (V/N)^(1/3) after volumes are scaled equal (pymatgen stol)",
    above(0));
  f("eval.match_angle_tol", &e.match_angle_tol, "structure matcher: lattice angle tolerance in degrees "
    "(pymatgen angle_tol)", above(0));
  f("eval.symprec", &e.symprec, "space groups (conditioned samples, eval.spacegroups): spglib distance tolerance "
    "in Å (0.1 as the Materials Project; angle tolerance 5 degrees)", above(0));
  f("eval.spacegroups", &e.spacegroups, "space groups of the valid crystals (spglib, 2-16 ms a crystal): P1 share and "
    "total variation vs the reference split's spacegroup.number", any());
}

}  // namespace

std::vector<Field> fields_of(Config& c) {
  std::vector<Field> out;
  visit_config(c, [&](const char* key, auto* ptr, const char* doc, Rule rule) {
    out.push_back({key, FieldPtr(ptr), doc, std::move(rule)});
  });
  return out;
}
std::vector<Field> fields_of(const Config& c) { return fields_of(const_cast<Config&>(c)); }

}  // namespace cg::config_detail
