// Config parsing: every field of cg::Config is listed ONCE in visit_config() below, with its dotted key, doc string
// and rule; YAML parsing, dotted overrides, validation, --help, to_yaml, the hash and docs/config.md all walk that list.
// Adding a key: add the field (default + comment) to config.h, one line here, then regenerate docs/config.md with
// `build/trainer/cgconfigdoc > docs/config.md` (a test fails until you do).
#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "common/sha256.h"

namespace cg {
namespace {

using FieldPtr = std::variant<bool*, int64_t*, uint64_t*, double*, std::string*, std::vector<std::string>*>;

// What a value may be, beyond its type. Numbers: [min, max] (an open end when *_open); strings: one of `choices`
// (lists: each element), non-empty, or a number-or-empty.
struct Rule {
  std::optional<double> min, max;
  bool min_open = false, max_open = false;
  std::vector<std::string> choices;
  bool nonempty = false;
  bool numeric_or_empty = false;
};

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
  f("sample.out_dir", &s.out_dir, "where samples are written (samples.jsonl, cifs/, summary.json)", nonempty());
  f("sample.task", &s.task, "generate (unconditional or conditioned) | infill", one_of({"generate", "infill"}));
  f("sample.num_samples", &s.num_samples, "samples to draw; at most 1,000,000 a run (they are held in memory until "
    "written): for more, several runs with other sample.seed and sample.out_dir", in_range(1, 1000000));
  f("sample.batch_size", &s.batch_size, "sequences decoded together", at_least(1));
  f("sample.max_new_tokens", &s.max_new_tokens, "longest generated continuation (tokens; MP-20 crystals take up to "
    "384 LLaMA-2 tokens with EOS); a sample cut off here counts as unparsed", at_least(1));
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
  f("sample.spacegroup", &s.spacegroup, "condition: space group number 1..230; 0: not given", in_range(0, 230));
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
  f("eval.input", &e.input, "cgsample folder, CSV (CDVAE layout) or folder of CIFs", nonempty());
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

struct Field {
  std::string key;
  FieldPtr ptr;
  std::string doc;
  Rule rule;
};

std::vector<Field> fields_of(Config& c) {
  std::vector<Field> out;
  visit_config(c, [&](const char* key, auto* ptr, const char* doc, Rule rule) {
    out.push_back({key, FieldPtr(ptr), doc, std::move(rule)});
  });
  return out;
}
std::vector<Field> fields_of(const Config& c) { return fields_of(const_cast<Config&>(c)); }

const char* type_name(const FieldPtr& p) {
  struct V {
    const char* operator()(bool*) const { return "bool"; }
    const char* operator()(int64_t*) const { return "int"; }
    const char* operator()(uint64_t*) const { return "uint"; }
    const char* operator()(double*) const { return "float"; }
    const char* operator()(std::string*) const { return "string"; }
    const char* operator()(std::vector<std::string>*) const { return "list"; }
  };
  return std::visit(V{}, p);
}

// "an int", "a list": the type with its article, for messages.
std::string a_type_name(const FieldPtr& p) {
  const std::string t = type_name(p);
  return (t == "int" ? "an " : "a ") + t;
}

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string format_double(double v) {
  std::string s = fmt::format("{}", v);  // shortest representation that reads back exactly
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// Human/YAML form of a value: lists as [a, b], strings bare (quoting is the caller's business).
std::string value_string(const FieldPtr& p) {
  struct V {
    std::string operator()(bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(int64_t* v) const { return std::to_string(*v); }
    std::string operator()(uint64_t* v) const { return std::to_string(*v); }
    std::string operator()(double* v) const { return format_double(*v); }
    std::string operator()(std::string* v) const { return *v; }
    std::string operator()(std::vector<std::string>* v) const {
      std::string s = "[";
      for (size_t i = 0; i < v->size(); ++i) s += (i ? ", " : "") + (*v)[i];
      return s + "]";
    }
  };
  return std::visit(V{}, p);
}

std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
        else out += ch;
    }
  }
  return out + "\"";
}

std::string yaml_value(const FieldPtr& p) {
  if (auto* s = std::get_if<std::string*>(&p)) return yaml_quote(**s);
  if (auto* l = std::get_if<std::vector<std::string>*>(&p)) {
    std::string s = "[";
    for (size_t i = 0; i < (*l)->size(); ++i) s += (i ? ", " : "") + yaml_quote((**l)[i]);
    return s + "]";
  }
  return value_string(p);
}

// A string or list value as text (an override, or a plain YAML scalar) reads as the same text would in the config
// file, except that '#' starts no comment: "..." and '...' are YAML's quotes (decoded, escapes and all), and what
// YAML would read as another type (null, a list, a map) is refused with what to write, not taken as text.

bool is_null_word(const std::string& s) { return s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// The closing quote of the quoted scalar that opens at s[from] (' or "), or npos: '' is a quote inside '...',
// a backslash escapes the next character inside "...".
size_t closing_quote(const std::string& s, size_t from) {
  const char q = s[from];
  for (size_t i = from + 1; i < s.size(); ++i) {
    if (q == '"' && s[i] == '\\') {
      ++i;
    } else if (s[i] == q) {
      if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') ++i;
      else return i;
    }
  }
  return std::string::npos;
}

// The text of the quoted scalar s[from..end] (end: its closing quote), decoded as YAML does.
std::string decode_quoted(const std::string& key, const std::string& s, size_t from, size_t end) {
  const std::string quoted = s.substr(from, end - from + 1);
  try {
    return YAML::Load(quoted).Scalar();
  } catch (const YAML::Exception& e) {
    CG_FAIL("config key '{}': {} is not a valid YAML quoted string ({}); inside \"...\" a backslash starts an escape "
            "(\\\\ for a backslash), or use '...', where only '' is special", key, quoted, e.msg);
  }
}

// A value that opens a quote must be that quoted string, whole.
[[noreturn]] void fail_open_quote(const std::string& key, const std::string& raw, size_t at, bool closed) {
  const char q = raw[at];
  CG_FAIL("config key '{}': in {}, the {} at {} {}: a value (or list item) that starts with a quote is a YAML "
          "quoted string, whole ('' for a ' inside '...', \\\" for a \" inside \"...\"); quote all of it, or, for "
          "text that starts with a quote character, put it inside the other quotes (e.g. {}: these are the quotes the "
          "tool receives, inside the shell's own)", key, raw,
          q == '"' ? "double quote" : "single quote", at == 0 ? "the start" : "position " + std::to_string(at + 1),
          closed ? "closes before the value's end" : "never closes",
          q == '"' ? "'\"a b'" : "\"'a b\"");
}

// The quoted string that is all of raw (raw[0] a quote), decoded.
std::string whole_quoted(const std::string& key, const std::string& raw) {
  const size_t end = closing_quote(raw, 0);
  if (end != raw.size() - 1) fail_open_quote(key, raw, 0, end != std::string::npos);
  return decode_quoted(key, raw, 0, end);
}

// How to write TEXT quoted, as the tool must receive it and from a shell (whose own quotes it removes).
std::string quote_hint(const std::string& key, const std::string& text) {
  return fmt::format("\"{}\" (from a shell: {}='\"{}\"')", text, key, text);
}

// YAML's null, a list or a map where text is expected: the file would not give text either, so say what to write.
void refuse_other_type(const std::string& key, const std::string& raw, bool list) {
  if (is_null_word(raw))
    CG_FAIL("config key '{}': '{}' is YAML's null; write {}= (nothing after '=') for {}, or quote it for the text: {}",
            key, raw, key, list ? "an empty list" : "an empty value", quote_hint(key, raw));
  if (!list && (raw[0] == '[' || raw[0] == '{'))
    CG_FAIL("config key '{}' is a string, and {} reads as a YAML {}; quote it for the text: {}", key, raw,
            raw[0] == '[' ? "list" : "map", quote_hint(key, raw));
  if (list && raw[0] == '{')
    CG_FAIL("config key '{}': expected a list, got the map {}; write [a, b] or a,b", key, raw);
}

std::string string_value(const std::string& key, const std::string& raw) {
  if (raw.empty()) return raw;
  if (raw[0] == '"' || raw[0] == '\'') return whole_quoted(key, raw);
  refuse_other_type(key, raw, false);
  return raw;
}

// [a, b], a,b or a quoted string of either; items plain or quoted. A trailing comma ends the list ([a,] is [a]).
std::vector<std::string> list_value(const std::string& key, const std::string& raw_in) {
  std::string s = raw_in;
  if (!s.empty() && (s[0] == '"' || s[0] == '\'')) s = trim(whole_quoted(key, s));  // as a quoted scalar in the file
  std::vector<std::string> out;
  if (s.empty()) return out;
  refuse_other_type(key, s, true);
  if (s[0] == '[') {
    CG_CHECK(s.back() == ']', "config key '{}': {} opens '[' but does not end with ']'; write [a, b]", key, raw_in);
    s = trim(s.substr(1, s.size() - 2));
    if (s.empty()) return out;
  }
  for (size_t i = 0; i <= s.size();) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::string item;
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      const size_t end = closing_quote(s, i);
      size_t next = end == std::string::npos ? end : s.find_first_not_of(" \t", end + 1);
      if (end == std::string::npos || (next != std::string::npos && s[next] != ','))
        fail_open_quote(key, s, i, end != std::string::npos);
      item = decode_quoted(key, s, i, end);
      i = next == std::string::npos ? s.size() : next;
    } else {
      const size_t comma = std::min(s.find(',', i), s.size());
      item = trim(s.substr(i, comma - i));
      CG_CHECK(item.find_first_of("[]{}") == std::string::npos && !is_null_word(item),
               "config key '{}': list item '{}' in {} is not a plain value (nested lists, maps and null are not "
               "items); quote the item for the text: [\"{}\"]", key, item, raw_in, item);
      i = comma;
    }
    if (i >= s.size()) {  // the last item; after a trailing comma there is none
      if (!item.empty() || out.empty() || s.back() != ',') out.push_back(item);
      break;
    }
    out.push_back(item);
    ++i;  // past the comma
  }
  return out;
}

// Numbers are decimal, as YAML 1.2's core schema writes them: [-+]? digits with an optional fraction and exponent
// (5, +5, 5., .5, 1.5e-3, 2E5). Other spellings that strtod / strtoll would take, or that YAML readers disagree on,
// are refused with what to write instead.
struct DecimalParts {
  bool negative = false;
  std::string int_digits, frac_digits;  // "12" and "5" in 12.5e3
  int64_t exponent = 0;                 // 3 in 12.5e3 (clamped to +-100000: beyond, any nonzero value is out of range)
};

std::optional<DecimalParts> decimal_parts(const std::string& s) {
  DecimalParts p;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) p.negative = s[i++] == '-';
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return s.substr(from, i - from);
  };
  p.int_digits = digits();
  if (i < s.size() && s[i] == '.') ++i, p.frac_digits = digits();
  if (p.int_digits.empty() && p.frac_digits.empty()) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    const bool neg = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::string e = digits();
    if (e.empty()) return std::nullopt;
    p.exponent = e.size() > 6 ? 100000 : std::min<int64_t>(std::stoll(e), 100000);
    if (neg) p.exponent = -p.exponent;
  }
  if (i != s.size()) return std::nullopt;
  return p;
}

// Why `s` (trimmed, unquoted) is not a decimal number, with what to write ("" when nothing more can be said, as for
// "ten"); nullopt when it is one.
std::optional<std::string> number_problem(const std::string& s) {
  const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-');
  std::string lower = s.substr(sign);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  const std::string minus = sign && s[0] == '-' ? "-" : "";
  if (lower.size() > 2 && lower[0] == '0' && (lower[1] == 'x' || lower[1] == 'o')) {
    // Hexadecimal integers and floats (0x1p-10) as strtod reads them; octal as YAML 1.2 writes it.
    const bool hex = lower[1] == 'x';
    const std::string body = lower.substr(2);
    std::string decimal;
    if (body.find_first_not_of(hex ? "0123456789abcdef" : "01234567") == std::string::npos &&
        body.size() <= (hex ? 16u : 21u)) {  // fits 64 bits: the exact integer
      decimal = minus + std::to_string(std::stoull(body, nullptr, hex ? 16 : 8));
    } else if (hex) {
      char* end = nullptr;
      const double x = std::strtod(s.c_str(), &end);
      if (*end == '\0' && std::isfinite(x)) decimal = format_double(x);
    }
    return fmt::format("{} is not a decimal number; write {}", hex ? "hexadecimal" : "octal",
                       decimal.empty() ? "the value in decimal" : decimal);
  }
  if (lower == "inf" || lower == "infinity" || lower == "nan" || lower == ".inf" || lower == ".nan")
    return "give a finite decimal number";
  const auto p = decimal_parts(s);
  if (!p) {
    std::string plain = s;
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    if (plain != s && decimal_parts(plain) && plain.find_first_of("0123456789") != std::string::npos)
      return fmt::format("write {} (no '_' between digits: only YAML 1.1 reads them)", plain);
    return "";
  }
  // 010 is 8 to YAML 1.1 readers (PyYAML) and 10 to YAML 1.2 ones: which one was meant cannot be told.
  if (p->int_digits.size() > 1 && p->int_digits[0] == '0' && s.find_first_of(".eE") == std::string::npos) {
    const std::string ten = minus + p->int_digits.substr(std::min(p->int_digits.find_first_not_of('0'),
                                                                    p->int_digits.size() - 1));
    const std::string octal = p->int_digits.find_first_of("89") == std::string::npos && p->int_digits.size() <= 19
                                  ? fmt::format(" (or {}{} if octal was meant)", minus,
                                                std::stoull(p->int_digits, nullptr, 8))
                                  : "";
    return fmt::format("a leading zero reads as octal to YAML 1.1 readers (PyYAML), not to YAML 1.2 ones; write {}{}",
                       ten, octal);
  }
  return std::nullopt;
}

// A decimal number that is whole, exactly: 100000 for 1e5 and 1.0e5, nullopt for 1.5 or 1e-3. *overflow when it is
// whole but beyond 64 bits.
std::optional<std::string> whole_digits(const DecimalParts& p, bool* overflow) {
  std::string digits = p.int_digits + p.frac_digits;  // value = digits x 10^scale
  int64_t scale = p.exponent - static_cast<int64_t>(p.frac_digits.size());
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return std::string("0");
  while (scale < 0 && digits.back() == '0') digits.pop_back(), ++scale;
  if (scale < 0) return std::nullopt;
  *overflow = static_cast<int64_t>(digits.size()) + scale > 20;
  if (*overflow) return std::nullopt;
  return digits + std::string(scale, '0');
}

// An override's or a YAML scalar's text for a bool or number key: trimmed, and YAML's quotes decoded when the
// override has them (`quoted`: the file's scalar was quoted, and YAML has decoded it). "16" reads as 16 and "true" as
// true in the file and on the command line alike: the key's type says what the text is, and quotes cannot change it.
std::string scalar_text(const std::string& key, const std::string& raw_in, bool quoted) {
  const std::string raw = trim(raw_in);
  if (!quoted && !raw.empty() && (raw[0] == '"' || raw[0] == '\'')) return trim(whole_quoted(key, raw));
  return raw;
}

// Parses `raw_in` into the field's type; throws naming the key and the expected type. `quoted`: the text is a quoted
// YAML scalar from the file, already decoded. `label` names the value in errors (default: "config key '<key>'").
void assign(const Field& f, const std::string& raw_in, bool quoted = false, const std::string& label = "") {
  struct V {
    const Field& f;
    const std::string& raw_in;
    bool quoted;
    const std::string& label;
    [[noreturn]] void fail(const std::string& what, const std::string& why = "") const {
      CG_FAIL("{}: expected {}, got '{}'{}", label.empty() ? fmt::format("config key '{}'", f.key) : label, what,
              raw_in, why.empty() ? "" : ": " + why);
    }
    std::string text() const { return scalar_text(f.key, raw_in, quoted); }
    void operator()(bool* v) const {
      std::string s = text();
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      if (s == "true" || s == "yes" || s == "on" || s == "1") *v = true;
      else if (s == "false" || s == "no" || s == "off" || s == "0") *v = false;
      else fail("a bool (true | false; also yes | no, on | off, 1 | 0)");
    }
    // Integers are whole decimal numbers: 1e5 and 100.0 read as 100000 and 100, exactly; 1.5 is refused.
    std::string whole(const char* what, bool is_unsigned, const char* range) const {
      const std::string s = text();
      if (const auto why = number_problem(s)) fail(what, *why);
      const DecimalParts p = *decimal_parts(s);
      bool overflow = false;
      const auto digits = whole_digits(p, &overflow);
      if (overflow) fail(what, range);
      if (!digits) fail(what, "not a whole number");
      if (is_unsigned && p.negative && *digits != "0") fail(what);
      return (p.negative ? "-" : "") + *digits;
    }
    void operator()(int64_t* v) const {
      const char* range = "out of range (at most 9223372036854775807 in magnitude)";
      const std::string s = whole("an integer", false, range);
      errno = 0;
      const long long x = std::strtoll(s.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("an integer", range);
      *v = x;
    }
    void operator()(uint64_t* v) const {
      const char* range = "out of range (at most 18446744073709551615)";
      const std::string s = whole("a non-negative integer", true, range);
      errno = 0;
      const unsigned long long x = s == "-0" ? 0 : std::strtoull(s.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("a non-negative integer", range);
      *v = x;
    }
    void operator()(double* v) const {
      const std::string s = text();
      if (const auto why = number_problem(s)) fail("a finite number", *why);
      const double x = std::strtod(s.c_str(), nullptr);
      if (!std::isfinite(x)) fail("a finite number", "too large (it is used as a 32-bit float: at most 3.4e38)");
      *v = x;
    }
    void operator()(std::string* v) const { *v = string_value(f.key, trim(raw_in)); }
    void operator()(std::vector<std::string>* v) const { *v = list_value(f.key, trim(raw_in)); }
  };
  std::visit(V{f, raw_in, quoted, label}, f.ptr);
}

std::string describe_rule(const Rule& r) {
  std::string s;
  if (!r.choices.empty()) {
    for (size_t i = 0; i < r.choices.size(); ++i) s += (i ? " | " : "") + r.choices[i];
  }
  if (r.min || r.max) {
    if (r.min && r.max) {
      s = fmt::format("{}{}, {}{}", r.min_open ? "(" : "[", *r.min, *r.max, r.max_open ? ")" : "]");
    } else if (r.min) {
      s = fmt::format("{} {}", r.min_open ? ">" : ">=", *r.min);
    } else {
      s = fmt::format("{} {}", r.max_open ? "<" : "<=", *r.max);
    }
  }
  if (r.nonempty) s = s.empty() ? "non-empty" : s + " (non-empty)";
  if (r.numeric_or_empty) s = "a number or empty";
  return s;
}

void check_rule(const Field& f) {
  const Rule& r = f.rule;
  auto check_number = [&](double x) {
    bool ok = (!r.min || (r.min_open ? x > *r.min : x >= *r.min)) && (!r.max || (r.max_open ? x < *r.max : x <= *r.max));
    CG_CHECK(ok, "config key '{}': {} is out of range; allowed: {}", f.key, value_string(f.ptr), describe_rule(r));
  };
  auto check_choice = [&](const std::string& v) {
    if (r.choices.empty()) return;
    CG_CHECK(std::find(r.choices.begin(), r.choices.end(), v) != r.choices.end(),
             "config key '{}': '{}' is not allowed; allowed: {}", f.key, v, describe_rule(r));
  };
  if (auto* p = std::get_if<int64_t*>(&f.ptr)) check_number(static_cast<double>(**p));
  if (auto* p = std::get_if<uint64_t*>(&f.ptr)) check_number(static_cast<double>(**p));
  if (auto* p = std::get_if<double*>(&f.ptr)) {
    // The values are used as 32-bit floats (learning rate, epsilon, alpha, ...): 1e300 would overflow, 1e-300 be 0.
    const double x = **p, a = std::fabs(x);
    CG_CHECK(x == 0 || (a >= std::numeric_limits<float>::min() && a <= std::numeric_limits<float>::max()),
             "config key '{}': {} does not fit a 32-bit float, as which it is used (magnitudes from 1.2e-38 to "
             "3.4e38, or 0)", f.key, value_string(f.ptr));
    check_number(x);
  }
  if (auto* p = std::get_if<std::string*>(&f.ptr)) {
    CG_CHECK(!r.nonempty || !(*p)->empty(), "config key '{}' must not be empty", f.key);
    if (!(*p)->empty() || !r.choices.empty()) check_choice(**p);
    if (r.numeric_or_empty && !(*p)->empty()) {
      const auto why = number_problem(**p);
      CG_CHECK(decimal_number(**p), "config key '{}': '{}' is not a finite decimal number{}; give one (e.g. 1.25) or "
               "leave it empty", f.key, **p, why && !why->empty() ? " (" + *why + ")" : "");
    }
  }
  if (auto* p = std::get_if<std::vector<std::string>*>(&f.ptr)) {
    CG_CHECK(!r.nonempty || !(*p)->empty(), "config key '{}' must list at least one value; allowed: {}", f.key,
             describe_rule(r));
    for (const auto& v : **p) check_choice(v);
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

[[noreturn]] void unknown_key(const std::vector<Field>& fields, const std::string& key, const std::string& where) {
  const Field* best = nullptr;
  size_t best_d = 0;
  for (const auto& f : fields) {
    size_t d = edit_distance(key, f.key);
    if (!best || d < best_d) best = &f, best_d = d;
  }
  std::string hint = best && best_d <= 4 ? fmt::format("; did you mean '{}'?", best->key) : "";
  CG_FAIL("unknown config key '{}'{}{}; run with --help to list every key", key, where, hint);
}

Field* find_field(std::vector<Field>& fields, const std::string& key) {
  for (auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

bool is_section(const std::vector<Field>& fields, const std::string& prefix) {
  for (const auto& f : fields)
    if (f.key.compare(0, prefix.size() + 1, prefix + ".") == 0) return true;
  return false;
}

// Keys older versions had and wrote into run folders (config.yaml, point.yaml): ignored with one warning per process,
// so those folders still load (cgexport, cgsample, resuming). Nothing reads them any more.
bool is_retired(const std::string& key, const std::string& where) {
  // key -> what replaced it ("" for nothing)
  static const std::map<std::string, std::string> retired = {
      {"model.max_seq_len", ""},
      {"train.val_batches", "train.val_samples (validation scores the first N samples of the val split, the same "
                            "ones whatever the layout and seed)"}};
  const auto it = retired.find(key);
  if (it == retired.end()) return false;
  static std::set<std::string> warned;
  if (warned.insert(key).second)
    spdlog::warn("config key '{}'{} is no longer used and is ignored{} (nothing to change in run folders and "
                 "checkpoints; drop it from the configs you edit)", key, where,
                 it->second.empty() ? "" : "; see " + it->second);
  return true;
}

// A map key as a name. YAML allows lists, maps and null as keys ("? [a, b]: 1"); a config has none of them.
std::string key_name(const YAML::Node& k, const std::string& prefix, const std::string& where) {
  CG_CHECK(k.IsScalar(), "config{}: a key{} must be a plain name, not {}", where,
           prefix.empty() ? "" : " in section '" + prefix + "'", k.IsNull() ? "empty" : "'" + YAML::Dump(k) + "'");
  return k.Scalar();
}

void apply_yaml(std::vector<Field>& fields, const YAML::Node& node, const std::string& prefix,
                const std::string& where) {
  // yaml-cpp keeps a repeated key, and the last one would win unnoticed: refused, naming both lines.
  std::map<std::string, std::pair<YAML::Mark, YAML::Node>> seen;  // name -> where it was first, its value
  for (const auto& kv : node) {
    const std::string name = key_name(kv.first, prefix, where);
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    const YAML::Node& v = kv.second;
    if (const auto [it, fresh] = seen.emplace(name, std::pair{kv.first.Mark(), v}); !fresh) {
      const auto& [first, before] = it->second;
      const auto line = [](const YAML::Mark& m) { return m.is_null() ? std::string("?") : std::to_string(m.line + 1); };
      if (v.IsScalar() && before.IsScalar())
        CG_FAIL("config key '{}' is given twice{}: {} at line {}, then {} at line {}; keep one", key, where,
                before.Scalar(), line(first), v.Scalar(), line(kv.first.Mark()));
      CG_FAIL("config {} '{}' is given twice{}: at lines {} and {}; keep one{}", v.IsMap() ? "section" : "key", key,
              where, line(first), line(kv.first.Mark()), v.IsMap() ? " (its keys under one heading)" : "");
    }
    if (is_retired(key, where)) continue;
    if (Field* f = find_field(fields, key)) {
      if (v.IsMap()) CG_FAIL("config key '{}'{} is a value, not a section", key, where);
      if (v.IsSequence()) {
        auto* list = std::get_if<std::vector<std::string>*>(&f->ptr);
        CG_CHECK(list, "config key '{}'{}: expected {}, got a list", key, where, a_type_name(f->ptr));
        (*list)->clear();
        for (const auto& item : v) {
          CG_CHECK(item.IsScalar(), "config key '{}'{}: list items must be plain values", key, where);
          (*list)->push_back(item.Scalar());
        }
      } else if (v.IsNull()) {
        CG_CHECK(std::holds_alternative<std::string*>(f->ptr) ||
                     std::holds_alternative<std::vector<std::string>*>(f->ptr),
                 "config key '{}'{} has no value; expected {}", key, where, a_type_name(f->ptr));
        assign(*f, "");
      } else if (auto* str = std::get_if<std::string*>(&f->ptr); str && v.Tag() == "!") {
        **str = v.Scalar();  // a quoted YAML string is taken whole: its spaces and quote characters are the value's
      } else {
        assign(*f, v.Scalar(), /*quoted=*/v.Tag() == "!");
      }
    } else if (is_section(fields, key)) {
      CG_CHECK(v.IsMap(), "config key '{}'{} is a section: give it a map of keys, e.g. {}: {{...}}", key, where, name);
      apply_yaml(fields, v, key, where);
    } else {
      // Name the first full dotted key under an unknown section, so `trian: {lr: ..}` reports 'trian.lr'.
      std::string full = key;
      YAML::Node n = v;
      while (n.IsMap() && n.size() > 0) {
        auto first = n.begin();
        full += "." + key_name(first->first, full, where);
        n.reset(first->second);  // reset, not operator=: assignment would rewrite the node n refers to
      }
      unknown_key(fields, full, where);
    }
  }
}

// `origin` says where the override came from in errors ("command line", "sweep file s.yaml: grid", ...).
void apply_override(std::vector<Field>& fields, const std::string& word, const std::string& origin) {
  std::string w = word.rfind("--", 0) == 0 ? word.substr(2) : word;
  size_t eq = w.find('=');
  CG_CHECK(eq != std::string::npos, "override '{}' ({}) must look like section.key=value", word, origin);
  std::string key = trim(w.substr(0, eq));
  if (is_retired(key, " (" + origin + ")")) return;
  Field* f = find_field(fields, key);
  CG_CHECK(f || !is_section(fields, key), "override '{}' ({}) sets the section {}, not a key: name one of its keys, "
           "{}.key=value (run with --help to list them)", word, origin, key, key);
  if (!f) unknown_key(fields, key, " (" + origin + ")");
  try {
    assign(*f, w.substr(eq + 1));
  } catch (const Error& e) {
    throw Error(fmt::format("{} ({})", e.what(), origin));  // e.what() already names file:line
  }
}

// A key set twice by overrides of one origin (the same command line, a sweep file's one list): the later value
// would silently win, hiding a typo in a script or a sweep. Overrides of different origins are layers (a sweep
// file's overrides: < the command line < a sweep point's own setting) where the later one is meant to win.
void check_no_repeated_override(const std::vector<std::string>& overrides, const std::vector<std::string>& origins) {
  std::map<std::pair<std::string, std::string>, std::string> seen;  // (origin, key) -> first value
  for (size_t i = 0; i < overrides.size(); ++i) {
    const std::string w = overrides[i].rfind("--", 0) == 0 ? overrides[i].substr(2) : overrides[i];
    const size_t eq = w.find('=');
    if (eq == std::string::npos) continue;  // apply_override says what it must look like
    const std::string origin = i < origins.size() ? origins[i] : "command line";
    const std::string key = trim(w.substr(0, eq)), value = w.substr(eq + 1);
    const auto [it, fresh] = seen.emplace(std::pair{origin, key}, value);
    CG_CHECK(fresh, "{} is given twice {} ({}, then {}): give it once", key,
             origin == "command line" ? std::string("on the command line") : "in " + origin, it->second, value);
  }
}

Config load_impl(const YAML::Node* root, const std::string& where, const std::vector<std::string>& overrides,
                 const std::vector<std::string>& origins = {}, bool validate = true) {
  check_no_repeated_override(overrides, origins);
  Config c;
  auto fields = fields_of(c);
  if (root && !root->IsNull()) {
    CG_CHECK(root->IsMap(), "config{} must be a map of sections (model:, data:, train:, ...)", where);
    apply_yaml(fields, *root, "", where);
  }
  for (size_t i = 0; i < overrides.size(); ++i)
    apply_override(fields, overrides[i], i < origins.size() ? origins[i] : "command line");
  if (validate) validate_config(c);
  return c;
}

// The one YAML document of a config; a second one (after a `---` line) would be ignored by YAML::Load.
YAML::Node load_one_document(const std::string& text, const std::string& where) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    CG_FAIL("{}: YAML syntax error: {}", where, e.what());
  }
  CG_CHECK(docs.size() <= 1, "{}: {} YAML documents (separated by '---' lines), but a config is one: merge them into "
           "one, or remove the '---' between them", where, docs.size());
  return docs.empty() ? YAML::Node() : docs.front();
}

YAML::Node read_yaml_file(const std::string& yaml_path) {
  return load_one_document(read_file(yaml_path, "config file"), yaml_path);
}

}  // namespace

std::optional<double> decimal_number(const std::string& v) {
  if (number_problem(v)) return std::nullopt;  // the same numbers as a float key takes (no spaces: this is text)
  const double x = std::strtod(v.c_str(), nullptr);
  if (!std::isfinite(x) || std::fabs(x) >= 1e16) return std::nullopt;
  return x;
}

int64_t integer_value(const std::string& what, const std::string& text, bool quoted) {
  int64_t v = 0;
  assign(Field{what, FieldPtr(&v), "", {}}, text, quoted, what);
  return v;
}

void validate_config(const Config& c) {
  for (const auto& f : fields_of(c)) check_rule(f);
  const auto& t = c.lora.targets;
  CG_CHECK(std::find(t.begin(), t.end(), "all-linear") == t.end() || t.size() == 1,
           "config key 'lora.targets': all-linear stands alone; got {}", value_string(FieldPtr(const_cast<std::vector<std::string>*>(&t))));
  const auto& sm = c.sample;
  CG_CHECK(sm.conditions_from.empty() || (sm.formula.empty() && sm.spacegroup == 0 && sm.formation_energy.empty() &&
                                          sm.band_gap.empty() && sm.e_above_hull.empty() && sm.task == "generate"),
           "sample.conditions_from={} draws every sample's conditions from a CSV; it does not combine with the fixed "
           "sample.formula / spacegroup / formation_energy / band_gap / e_above_hull or with sample.task=infill: "
           "unset one side", sm.conditions_from);
  CG_CHECK(sm.task != "infill" || (sm.formula.empty() && sm.spacegroup == 0 && sm.formation_energy.empty() &&
                                   sm.band_gap.empty() && sm.e_above_hull.empty()),
           "sample.task=infill asks for a masked element of the test crystals; the conditions sample.formula / "
           "spacegroup / formation_energy / band_gap / e_above_hull are for task=generate: unset them");
  // A band gap and an energy above the hull are >= 0 by definition: a negative target is a prompt no training
  // crystal ever had (the sign dropped, or formation energy meant).
  for (const auto& [key, value] : {std::pair{"sample.band_gap", sm.band_gap}, {"sample.e_above_hull", sm.e_above_hull}})
    CG_CHECK(value.empty() || std::strtod(value.c_str(), nullptr) >= 0, "config key '{}' is {}, but it is >= 0 by "
             "definition (eV{}); give a value >= 0{}", key, value, std::string(key) == "sample.band_gap" ? "" : "/atom",
             std::string(key) == "sample.band_gap" ? "" : " (a negative energy is sample.formation_energy)");
  CG_CHECK(c.lora.enabled || c.lora.init_adapter.empty(), "config key 'lora.init_adapter' ({}) starts LoRA adapters, "
           "but lora.enabled=false trains the whole model: drop lora.init_adapter, or set lora.enabled=true",
           c.lora.init_adapter);
}

std::string resolve_csv(const std::string& value, const Config& c) {
  if (value == "data.train_csv") return c.data.train_csv;
  if (value == "data.test_csv") return c.data.test_csv;
  if (value == "data.val_csv") return c.data.val_csv;
  const bool key_like =
      value.rfind("data.", 0) == 0 && value.size() > 9 && value.compare(value.size() - 4, 4, "_csv") == 0;
  CG_CHECK(!key_like, "'{}' is no config key: give data.train_csv, data.val_csv or data.test_csv (that key's file), or "
           "a path", value);
  return value;
}

Config load_config_string(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  YAML::Node root = load_one_document(yaml_text, "config");
  return load_impl(&root, "", overrides);
}

Config load_config(const std::string& yaml_path, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& origins) {
  if (yaml_path.empty()) return load_impl(nullptr, "", overrides, origins);
  const YAML::Node root = read_yaml_file(yaml_path);
  return load_impl(&root, fmt::format(" (in {})", yaml_path), overrides, origins);
}

Config load_saved_config(const std::string& yaml_path) {
  const YAML::Node root = read_yaml_file(yaml_path);
  return load_impl(&root, fmt::format(" (in {})", yaml_path), {}, {}, /*validate=*/false);
}

std::string to_yaml(const Config& c) {
  std::string out, section;
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("{}{}:\n", out.empty() ? "" : "\n", sec);
      section = sec;
    }
    out += fmt::format("  {}: {}  # {}\n", f.key.substr(sec.size() + 1), yaml_value(f.ptr), f.doc);
  }
  return out;
}

std::string config_hash(const Config& c) {
  std::string canon;
  for (const auto& f : fields_of(c)) canon += f.key + "=" + yaml_value(f.ptr) + "\n";
  return sha256_hex(canon.data(), canon.size()).substr(0, 16);
}

std::vector<std::string> config_differences(const Config& before, const Config& after) {
  auto fa = fields_of(before), fb = fields_of(after);
  std::vector<std::string> out;
  for (size_t i = 0; i < fa.size(); ++i)
    if (yaml_value(fa[i].ptr) != yaml_value(fb[i].ptr))
      out.push_back(fmt::format("{} {} -> {}", fa[i].key, value_string(fa[i].ptr), value_string(fb[i].ptr)));
  return out;
}

bool operator==(const Config& a, const Config& b) { return config_differences(a, b).empty(); }

std::string config_reference_markdown() {
  Config c;
  std::string out =
      "# Configuration reference\n\n"
      "Generated from `trainer/config.cpp` by `build/trainer/cgconfigdoc > docs/config.md`; do not edit by hand\n"
      "(a test compares this file with the generated text).\n\n"
      "Every tool takes `[CONFIG.yaml] [section.key=value ...]`: defaults < YAML file < command-line overrides.\n"
      "Lists are written `lora.targets=[q_proj,v_proj]` or `lora.targets=q_proj,v_proj`. Unknown keys and bad\n"
      "values are errors that name the key. The resolved config is written to `<train.run_dir>/config.yaml`.\n"
      "A key given twice in CONFIG.yaml (the same map) or twice on the command line is an error naming both values\n"
      "(and lines): the later one would silently win. One override of a file value is the normal case.\n\n"
      "A `section.key=value` value reads as the same text would in CONFIG.yaml, except that `#` starts no comment:\n"
      "unquoted text is trimmed and taken as it is (`=` and quote characters inside it included); `\"...\"` and\n"
      "`'...'` are YAML's quotes (`\\\"` and `\\\\` inside `\"...\"`, `''` inside `'...'`; spaces inside kept), and a\n"
      "value that starts with a quote must be that quoted string, whole. What YAML reads as null, a list or a map\n"
      "(`~`, `null`, `[...]`, `{...}`) is an error for a string key: write `key=` for an empty value, or quote it\n"
      "for the text. A shell removes its own quotes first: `sample.formula='\"[x]\"'` gives the text `[x]`. List\n"
      "items are plain or quoted (`data.columns=['a,b', c]`); `key=` and `key=[]` are the empty list.\n\n"
      "Numbers are decimal, as YAML 1.2 writes them (`5`, `+5`, `-2.5`, `.5`, `5.`, `1e-4`, `2.5E3`), in the file and\n"
      "on the command line alike; an integer key takes any spelling of a whole number (`train.steps=1e5` is 100000,\n"
      "exactly; `1.5` is refused). Refused, with what to write instead: hexadecimal and octal (`0x10`, `0o17`,\n"
      "`0x1p-10`), an integer with a leading zero (`010` is 8 to YAML 1.1 readers such as PyYAML and 10 to YAML 1.2\n"
      "ones), `_` between digits (`1_000`), `inf` and `nan`; the same goes for the numbers that the text keys\n"
      "`sample.formation_energy`, `sample.band_gap` and `sample.e_above_hull` hold (no spaces around them).\n"
      "Bools: true/false, yes/no, on/off, 1/0, in any case.\n"
      "A number or bool may be quoted, in the file and on the command line alike (`seed: \"16\"` in the file,\n"
      "`train.seed='\"16\"'` from a shell: both 16): the key's type says how its text reads, and quotes do not\n"
      "change it, since a bool or number key cannot hold text.\n";
  std::string section;
  auto cell = [](std::string s) {
    std::string o;
    for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return o;
  };
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("\n## {}\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n", sec);
      section = sec;
    }
    std::string def = value_string(f.ptr);
    out += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", f.key, type_name(f.ptr), cell(def.empty() ? "\"\"" : def),
                       cell(describe_rule(f.rule)), cell(f.doc));
  }
  return out;
}

std::string config_help(const std::string& tool, const std::string& summary) {
  Config c;
  std::string out = fmt::format(
      "usage: {} [CONFIG.yaml] [section.key=value ...] [--help]\n\n{}\n\n"
      "Defaults < CONFIG.yaml < key=value overrides. Lists: key=[a,b] or key=a,b. A value reads as in the YAML\n"
      "file ('#' is text): \"...\"/'...' are YAML quotes; ~, null, [..] and {{..}} are refused for text\n"
      "(key= is empty). Numbers are decimal (1e-4, 1e5 for an integer; not 0x10 or 010), quoted or not.\n",
      tool, summary);
  std::string section;
  for (const auto& f : fields_of(c)) {
    std::string sec = section_of(f.key);
    if (sec != section) {
      out += fmt::format("\n{}:\n", sec);
      section = sec;
    }
    std::string rule = describe_rule(f.rule);
    out += fmt::format("  {:<32} {:<6} = {}{}\n      {}\n", f.key, type_name(f.ptr), value_string(f.ptr),
                       rule.empty() ? "" : "   (" + rule + ")", f.doc);
  }
  return out;
}

std::optional<Config> parse_cli(int argc, char** argv, const std::string& tool, const std::string& summary,
                                std::vector<std::string>* positional) {
  std::string yaml_path;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--help" || w == "-h") {
      std::cout << config_help(tool, summary);
      return std::nullopt;
    }
    auto ends_with = [&](const char* suf) {
      std::string s(suf);
      return w.size() >= s.size() && w.compare(w.size() - s.size(), s.size(), s) == 0;
    };
    // key=value where the key is dotted words; a config file's path (sweeps/lr=1e-3/config.yaml, lr=1e-3/a.yaml
    // from inside sweeps/) is not an override.
    const size_t eq = w.find('=');
    const bool yaml_name = ends_with(".yaml") || ends_with(".yml");
    std::error_code ec;
    const bool config_file = yaml_name && std::filesystem::is_regular_file(w, ec);
    if (eq != std::string::npos && eq > 0 && w.find('/') > eq && !config_file) {
      overrides.push_back(w);
    } else if (yaml_name) {
      CG_CHECK(yaml_path.empty(), "{}: two config files given ({} and {}); pass one and use key=value overrides",
               tool, yaml_path, w);
      yaml_path = w;
    } else if (w.rfind("-", 0) == 0) {
      CG_FAIL("{}: unknown option '{}'; run {} --help", tool, w, tool);
    } else {
      // What the word most likely meant: a config file under another name, a folder, an override without its value.
      std::string hint = "expected CONFIG.yaml or section.key=value";
      if (std::filesystem::is_directory(w, ec))
        hint = "it is a folder; give the config file (CONFIG.yaml) or section.key=value";
      else if (std::filesystem::is_regular_file(w, ec))
        hint = "a config file is read when its name ends in .yaml or .yml: rename it (or give section.key=value)";
      else if (eq == std::string::npos && w.find('.') != std::string::npos && w.find('/') == std::string::npos)
        hint = fmt::format("an override needs a value: write {}=VALUE", w);
      CG_CHECK(positional, "{}: unexpected argument '{}': {}", tool, w, hint);
      positional->push_back(w);
    }
  }
  return load_config(yaml_path, overrides);
}

}  // namespace cg
