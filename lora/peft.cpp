// PEFT adapter export/import (see peft.h for the layout).
#include "lora/peft.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/folder_kind.h"
#include "common/json_int.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "trainer/config.h"

namespace cg::lora {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kConfigFile = "adapter_config.json";
// The embedding layers' names without the PEFT prefix (base_model.model.model.embed_tokens.weight, ...).
constexpr const char* kEmbedName = "model.embed_tokens.weight";
constexpr const char* kLmHeadName = "lm_head.weight";

const std::vector<std::string>& all_linear() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

// What to do with an adapter cgtrain cannot apply as LoRA factors: PEFT itself can fold it into its base.
constexpr const char* kMergeFirst = "merge it into its base with PEFT (PeftModel.from_pretrained(base, DIR)"
                                    ".merge_and_unload().save_pretrained(OUT)) and give OUT as model.hf_dir, "
                                    "without the adapter";

// A module LLaMA has (lm_head and embed_tokens too: not adaptable here, refused where the targets are used).
bool is_llama_module(const std::string& t) {
  for (const auto& k : all_linear())
    if (t == k) return true;
  return t == "lm_head" || t == "embed_tokens";
}

// PEFT's rank_pattern / alpha_pattern: {module pattern: r or alpha}. Empty, or every value `value`: no effect.
bool pattern_changes_nothing(const nlohmann::json& p, double value) {
  if (p.is_null()) return true;
  if (!p.is_object()) return false;
  for (const auto& v : p)
    if (!v.is_number() || v.get<double>() != value) return false;
  return true;
}

// Tensors of get_peft_model(LlamaModel) (task_type null or FEATURE_EXTRACTION) lack LlamaForCausalLM's inner
// "model.": "base_model.model.layers.0..." (and a saved "base_model.model.embed_tokens.weight") is read as
// "base_model.model.model.layers.0...", the same weights.
std::string with_causal_lm_prefix(const std::string& key) {
  for (const char* inner : {"layers.", "embed_tokens."})
    if (key.rfind(std::string(kPrefix) + inner, 0) == 0)
      return std::string(kPrefix) + "model." + key.substr(std::string(kPrefix).size());
  return key;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// "model.layers.0.self_attn.q_proj.lora_A.weight" -> ("model.layers.0.self_attn.q_proj", 'A'); throws otherwise.
std::pair<std::string, char> split_factor_name(const std::string& name) {
  for (char which : {'A', 'B'}) {
    std::string suf = std::string(".lora_") + which + ".weight";
    if (ends_with(name, suf)) return {name.substr(0, name.size() - suf.size()), which};
  }
  CG_FAIL("LoRA factor name '{}' must end with .lora_A.weight or .lora_B.weight", name);
}

// Every module has both factors with consistent shapes: A (r, in), B (out, r).
// `reading`: the factors were read from a folder whose adapter_config.json gave r.
void check_factors(const std::map<std::string, at::Tensor>& factors, int64_t r, const std::string& where,
                   bool reading) {
  CG_CHECK(!factors.empty(), "{}: no LoRA factors", where);
  for (const auto& [name, t] : factors) {
    auto [module, which] = split_factor_name(name);
    std::string other = module + (which == 'A' ? ".lora_B.weight" : ".lora_A.weight");
    CG_CHECK(factors.count(other), "{}: {} has no matching {}", where, name, other);
    CG_CHECK(t.dim() == 2, "{}: {} must be 2-D, got {} dims", where, name, t.dim());
    int64_t rank_dim = which == 'A' ? t.size(0) : t.size(1);
    if (rank_dim == r) continue;
    CG_CHECK(reading, "{}: {} has rank {} but r = {} (A is (r, in), B is (out, r))", where, name, rank_dim, r);
    // All tensors of one other rank: adapter_config.json is another adapter's. Tensors of several ranks: the file
    // itself is no one adapter's (one r for every module; a rank_pattern that changes r is refused before this).
    std::set<int64_t> ranks;
    for (const auto& [n, f] : factors) ranks.insert(split_factor_name(n).second == 'A' ? f.size(0) : f.size(1));
    if (ranks.size() == 1)
      CG_FAIL("{}: every tensor has rank {} but adapter_config.json's r = {} (A is (r, in), B is (out, r); e.g. {}): "
              "the two files come from different adapters; copy both from one export (or export again)", where,
              rank_dim, r, name);
    CG_FAIL("{}: tensor {} has rank {} (A is (r, in), B is (out, r)) but adapter_config.json's r = {}, and the file's "
            "tensors have ranks [{}]: an adapter's factors all have one rank, so this file was edited or put together "
            "from several adapters; copy the adapter folder again whole from where it was saved (or export it again)",
            where, name, rank_dim, r, fmt::join(ranks, ", "));
  }
}

// A Python (re) regular expression as std::regex's ECMAScript reads it: Python's \A and \Z (start and end of the
// string) would be a literal A and Z there, without an error, so a pattern anchored with them would match nothing;
// over a module path (one line) they are ^ and $. Inside [...] they are left as they are (an error in Python).
std::string ecmascript_of_python_re(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '\\' && i + 1 < re.size()) {
      const char next = re[++i];
      out += !in_class && next == 'A' ? "^" : !in_class && next == 'Z' ? "$" : std::string{'\\', next};
      continue;
    }
    if (re[i] == '[') in_class = true;
    if (re[i] == ']') in_class = false;
    out += re[i];
  }
  return out;
}

// PEFT's test of a module path against exclude_modules (check_target_module_exists): a string is a regular
// expression (Python's re.fullmatch) the whole path must match; a list entry matches the path itself or its end
// after a dot.
bool excluded(const nlohmann::json& exclude, const std::string& path, const std::string& where) {
  if (exclude.is_string()) {
    try {
      return std::regex_match(path, std::regex(ecmascript_of_python_re(exclude.get<std::string>())));
    } catch (const std::regex_error& e) {
      CG_FAIL("{}: \"exclude_modules\" = {} is not a regular expression this reader understands ({}); write it as "
              "a list of module names, or as a plain regular expression", where, exclude.dump(), e.what());
    }
  }
  for (const auto& e : exclude) {
    const std::string entry = e.get<std::string>();
    if (path == entry || ends_with(path, "." + entry)) return true;
  }
  return false;
}

// Leaves out the factors of modules exclude_modules names. PEFT writes none (an excluded module has no LoRA layer),
// and its loader would drop them (unexpected keys of a non-strict load_state_dict): they are dropped here too, and
// named (excluded_factors) for the caller's warning. bare: a LlamaModel adapter, whose module paths lack "model.".
void drop_excluded(PeftAdapter& out, const nlohmann::json& exclude, bool bare, const std::string& where) {
  for (auto it = out.factors.begin(); it != out.factors.end();) {
    const std::string module = it->first.substr(0, it->first.rfind(".lora_"));
    const std::string path = bare && module.rfind("model.", 0) == 0 ? module.substr(6) : module;
    if (!excluded(exclude, path, where)) {
      ++it;
      continue;
    }
    out.excluded_factors.push_back(kPrefix + (bare ? it->first.substr(6) : it->first));
    it = out.factors.erase(it);
  }
  CG_CHECK(!out.factors.empty() || out.excluded_factors.empty(), "{}: exclude_modules {} names the module of every "
           "LoRA factor in {} (e.g. {}): PEFT would apply none of them, an adapter that changes nothing; save the "
           "adapter again with PEFT, the modules it trained not in exclude_modules", where, exclude.dump(),
           kWeightsFile, out.excluded_factors.empty() ? "" : out.excluded_factors.front());
}

}  // namespace

double PeftConfig::scale() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

PeftConfig peft_config_from(const LoraConfig& lora, const std::string& base_model_name_or_path) {
  PeftConfig c;
  c.r = lora.r;
  c.lora_alpha = lora.alpha;
  c.lora_dropout = lora.dropout;
  c.use_rslora = lora.rslora;
  c.base_model_name_or_path = base_model_name_or_path;
  for (const auto& t : lora.targets) {
    if (t == "all-linear") c.target_modules = all_linear();
    else c.target_modules.push_back(t);
  }
  return c;
}

std::string to_peft_name(const std::string& name) { return kPrefix + name; }

std::string from_peft_name(const std::string& peft_name) {
  CG_CHECK(peft_name.rfind(kPrefix, 0) == 0, "PEFT tensor name '{}' does not start with '{}', the prefix PEFT's "
           "save_pretrained writes: save the adapter with PEFT's save_pretrained", peft_name, kPrefix);
  return peft_name.substr(std::string(kPrefix).size());
}

at::ScalarType peft_dtype(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  CG_FAIL("adapter dtype '{}' is not one of fp32 | bf16 | fp16", name);
}

void write_peft_adapter(const std::string& dir, const PeftConfig& cfg, const std::map<std::string, at::Tensor>& factors,
                        at::ScalarType dtype) {
  CG_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf,
           "PEFT adapter dtype must be fp32, bf16 or fp16, got {}", c10::toString(dtype));
  CG_CHECK(cfg.bias == "none", "PEFT export supports bias = none only, got {}", cfg.bias);
  CG_CHECK(!cfg.target_modules.empty(), "PEFT export: target_modules is empty");
  check_factors(factors, cfg.r, "PEFT export to " + dir, /*reading=*/false);
  std::error_code ec;
  fs::create_directories(dir, ec);
  CG_CHECK(!ec, "cannot create adapter folder {}: {}", dir, ec.message());

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : factors)  // std::map: sorted, as PEFT's save (safetensors sorts keys anyway)
    tensors.emplace_back(to_peft_name(name), t.detach().to(torch::kCPU, dtype).contiguous());
  model::write_safetensors((fs::path(dir) / kWeightsFile).string(), tensors, {{"format", "pt"}});

  nlohmann::ordered_json j;
  double a = cfg.lora_alpha;
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = cfg.base_model_name_or_path;
  j["bias"] = cfg.bias;
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  if (a == std::floor(a) && std::fabs(a) < 1e15) j["lora_alpha"] = static_cast<int64_t>(a);  // PEFT writes an int
  else j["lora_alpha"] = a;
  j["lora_dropout"] = cfg.lora_dropout;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = cfg.r;
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = cfg.target_modules;
  j["task_type"] = cfg.task_type;
  j["use_dora"] = false;
  j["use_rslora"] = cfg.use_rslora;
  // Written next to its final name, flushed and renamed: a failed write never leaves a cut adapter_config.json.
  // base_model_name_or_path is a path, which need not be UTF-8 (JSON must: such bytes become U+FFFD).
  write_file_atomic((fs::path(dir) / kConfigFile).string(),
                    j.dump(2, ' ', false, decltype(j)::error_handler_t::replace) + "\n");
}

void check_peft_adapter_folder(const std::string& dir) {
  const fs::path cfg_path = fs::path(dir) / kConfigFile, w_path = fs::path(dir) / kWeightsFile;
  check_no_unfinished_export(dir, "adapter folder");
  CG_CHECK(fs::exists(cfg_path), "{} not found: {} is not a PEFT adapter folder{}", cfg_path.string(), dir,
           is_cgtrain_folder(dir)
               ? fmt::format(" but a cgtrain run or step folder: export its adapter first (cgexport {} --out DIR) and "
                             "give DIR", dir)
           : is_peft_adapter_folder((fs::path(dir) / "adapter").string())
               ? fmt::format(" but a model (a cgexport --merge folder): the adapter is in {}/adapter/, give that (or "
                             "give {} as model.hf_dir, without an adapter)", dir, dir)
           : fs::exists(fs::path(dir) / "config.json")
               ? std::string(" but a model (config.json): give it as model.hf_dir instead")
               : unfinished_export_note(dir));
  CG_CHECK(fs::exists(w_path), "{} not found{}", w_path.string(),
           fs::exists(fs::path(dir) / "adapter_model.bin")
               ? " (only adapter_model.bin: re-save it with safe_serialization=True)" : "");
}

PeftAdapter read_peft_adapter(const std::string& dir) {
  const fs::path cfg_path = fs::path(dir) / kConfigFile, w_path = fs::path(dir) / kWeightsFile;
  check_peft_adapter_folder(dir);
  PeftAdapter out;
  PeftConfig& c = out.config;
  bool target_regex = false;
  nlohmann::json exclude;  // exclude_modules as written (null: none)
  const std::string where = cfg_path.string();
  // A key's value as T; a missing or mistyped one names the key. `fallback` for an optional key (null read as
  // absent: PEFT writes "task_type": null when none was given).
  auto field = [&where](const nlohmann::json& j, const char* key, auto fallback, bool required = false) {
    using T = decltype(fallback);
    if (!j.contains(key) || j[key].is_null()) {
      CG_CHECK(!required, "{}: the key \"{}\" is missing", where, key);
      return fallback;
    }
    try {
      return j[key].get<T>();
    } catch (const nlohmann::json::exception& e) {
      CG_FAIL("{}: \"{}\" = {} has the wrong type ({})", where, key, j[key].dump(), e.what());
    }
  };
  try {
    // read_file: a folder named adapter_config.json is said so (an ifstream on it throws a bare ios failure).
    nlohmann::json j = nlohmann::json::parse(read_file(cfg_path.string(), "PEFT adapter config"));
    const std::string peft_type = field(j, "peft_type", std::string());
    CG_CHECK(peft_type == "LORA", "{}: peft_type is {}, expected LORA", where,
             peft_type.empty() ? "missing" : peft_type);
    CG_CHECK(j.contains("r"), "{}: the key \"r\" is missing", where);
    if (j["r"].is_number_float() && j["r"].get<double>() == std::floor(j["r"].get<double>()) &&
        std::fabs(j["r"].get<double>()) <= (1 << 20))
      j["r"] = static_cast<int64_t>(j["r"].get<double>());  // 8.0: a whole number written as a float, as lora_alpha
    c.r = json_int_at(j, "r", where, 1, 1 << 20);  // a rank: not 8.5, not 0 (scale alpha / r), not 1e30
    c.lora_alpha = field(j, "lora_alpha", 0.0, true);
    CG_CHECK(std::isfinite(c.lora_alpha) && c.lora_alpha > 0 && c.lora_alpha <= std::numeric_limits<float>::max(),
             "{}: lora_alpha = {} is not a positive number that fits a 32-bit float (the adapter's scale is "
             "lora_alpha / r)", where, j["lora_alpha"].dump());
    c.lora_dropout = field(j, "lora_dropout", 0.0);
    c.use_rslora = field(j, "use_rslora", false);
    c.bias = field(j, "bias", std::string("none"));
    c.task_type = field(j, "task_type", std::string());
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
    CG_CHECK(j.contains("target_modules") && !j["target_modules"].is_null(), "{}: the key \"target_modules\" is "
             "missing (a list such as [\"q_proj\", \"v_proj\"], \"all-linear\" or a regular expression)", where);
    const auto& tm = j["target_modules"];
    CG_CHECK(tm.is_string() || tm.is_array(), "{}: \"target_modules\" = {} is neither a list nor a string", where,
             tm.dump());
    // A string other than all-linear is a regular expression over module paths in PEFT (re.fullmatch): the
    // modules it chose are read from the tensor names below.
    // A list entry matches a module whose path ends with it ("q_proj", "self_attn.q_proj", a full path): entries
    // with a dot are read from the tensor names too.
    if (tm.is_string()) {
      if (tm.get<std::string>() == "all-linear") c.target_modules = all_linear();
      else target_regex = true;
    } else {
      c.target_modules = field(j, "target_modules", std::vector<std::string>());
      for (const auto& t : c.target_modules) target_regex = target_regex || t.find('.') != std::string::npos;
      // PEFT ignores entries that match no module of the model (a list shared with other architectures:
      // "query", "value"), as long as one matches.
      std::vector<std::string> known;
      for (const auto& t : c.target_modules)
        (is_llama_module(t) || t.find('.') != std::string::npos ? known : out.ignored_targets).push_back(t);
      CG_CHECK(!known.empty(), "{}: target_modules [{}] names no LLaMA module (q_proj, k_proj, v_proj, o_proj, "
               "gate_proj, up_proj, down_proj): an adapter of another architecture; give one trained on a LLaMA base",
               where, fmt::join(c.target_modules, ","));
      c.target_modules = known;
    }
    // exclude_modules takes modules out of target_modules; which ones are left is what the tensors hold.
    if (j.contains("exclude_modules") && !j["exclude_modules"].is_null() && !j["exclude_modules"].empty()) {
      target_regex = true;
      exclude = j["exclude_modules"];
      bool names = exclude.is_string() || exclude.is_array();
      for (const auto& e : exclude.is_array() ? exclude : nlohmann::json::array()) names = names && e.is_string();
      CG_CHECK(names, "{}: \"exclude_modules\" = {} is neither a list of module names nor a string (a regular "
               "expression); write it as PEFT's LoraConfig takes it", where, exclude.dump());
    }
    CG_CHECK(c.bias == "none", "{}: bias = {} is not supported (only none: cgtrain trains no biases); {}, or retrain "
             "with bias=\"none\"", where, c.bias, kMergeFirst);
    CG_CHECK(!field(j, "fan_in_fan_out", false), "{}: fan_in_fan_out = true (Conv1D-style transposed weights) is not "
             "supported; {}", where, kMergeFirst);
    CG_CHECK(!field(j, "use_dora", false), "{}: DoRA adapters (use_dora = true) are not supported; {}", where,
             kMergeFirst);
    CG_CHECK(!field(j, "use_qalora", false), "{}: use_qalora = true is not supported (QALoRA's lora_A acts on "
             "group-pooled inputs); {}", where, kMergeFirst);
    CG_CHECK(pattern_changes_nothing(j.value("rank_pattern", nlohmann::json()), double(c.r)), "{}: rank_pattern = {} "
             "gives modules another r than r = {}, which is not supported (one r for every module); {}, or retrain "
             "with one r", where, j["rank_pattern"].dump(), c.r, kMergeFirst);
    CG_CHECK(pattern_changes_nothing(j.value("alpha_pattern", nlohmann::json()), c.lora_alpha), "{}: alpha_pattern = "
             "{} gives modules another lora_alpha than {}, which is not supported (one scale for every module); {}, "
             "or retrain with one lora_alpha", where, j["alpha_pattern"].dump(), c.lora_alpha, kMergeFirst);
    // Adapters on some layers only, extra trained modules (e.g. lm_head) or LoRA biases: not this model's layout.
    for (const char* k : {"layers_to_transform", "layers_pattern", "modules_to_save", "layer_replication"})
      CG_CHECK(!j.contains(k) || j[k].is_null() || (j[k].is_array() && j[k].empty()),
               "{}: {} = {} is not supported (cgtrain adapts every layer's target modules and nothing else); {}",
               where, k, j[k].dump(), kMergeFirst);
    CG_CHECK(!field(j, "lora_bias", false), "{}: lora_bias = true is not supported (cgtrain trains no biases); {}",
             where, kMergeFirst);
    // PiSSA, OLoRA, CorDA and LoftQ start from a changed base (W - B0 A0, or a quantised W): their factors mean
    // nothing added to the original weights. Gaussian, EVA and orthogonal starts leave the base as it is.
    if (j.contains("init_lora_weights") && j["init_lora_weights"].is_string()) {
      const std::string init = j["init_lora_weights"].get<std::string>();
      CG_CHECK(init == "gaussian" || init == "eva" || init == "orthogonal",
               "{}: init_lora_weights = \"{}\" is not supported: such an adapter applies to a changed base "
               "(PiSSA/OLoRA/CorDA keep a residual base, LoftQ a quantised one), not to the original weights; "
               "convert it to a plain LoRA first (PEFT: save_pretrained(..., "
               "path_initial_model_for_weight_conversion=...))", where, init);
    }
  } catch (const nlohmann::json::exception& e) {
    CG_FAIL("{}: not a valid PEFT adapter_config.json: {}", cfg_path.string(), e.what());
  }
  model::SafetensorsFile f(w_path.string());
  // Keys of a LlamaModel adapter ("base_model.model.layers.") map onto ours unless mixed with LlamaForCausalLM's.
  bool bare = false, wrapped = false;
  for (const auto& key : f.keys()) {
    bare |= with_causal_lm_prefix(key) != key;
    wrapped |= key.rfind(std::string(kPrefix) + "model.", 0) == 0;
  }
  CG_CHECK(!(bare && wrapped), "{}: some tensor names start base_model.model.layers. (an adapter of LlamaModel), "
           "others base_model.model.model. (of LlamaForCausalLM): two adapters' tensors in one file; save the "
           "adapter again with PEFT's save_pretrained", w_path.string());
  for (const auto& key : f.keys()) {
    CG_CHECK(key.find(".default.") == std::string::npos && key.find("lora_magnitude_vector") == std::string::npos,
             "{}: tensor '{}' is not in PEFT's saved layout ({}); save the adapter with PEFT's save_pretrained",
             w_path.string(), key,
             key.find(".default.") != std::string::npos
                 ? "its name keeps the adapter name '.default', which save_pretrained strips"
                 : std::string("a DoRA magnitude vector, and DoRA adapters are not supported; ") + kMergeFirst);
    std::string name;
    try {
      name = from_peft_name(bare ? with_causal_lm_prefix(key) : key);
    } catch (const Error& e) {
      CG_FAIL("{}: {}", w_path.string(), message_of(e));
    }
    // Whole embedding layers, which PEFT saves beside the factors after a vocabulary resize (save_embedding_layers;
    // the reference script adds [PAD]): kept apart, in the file's dtype, for check_embedding_layers.
    if (name == kEmbedName || name == kLmHeadName) {
      out.embedding_layers[name] = f.read(key);
      continue;
    }
    CG_CHECK(ends_with(name, ".lora_A.weight") || ends_with(name, ".lora_B.weight"), "{}: tensor '{}' is neither a "
             "LoRA factor (.lora_A.weight / .lora_B.weight) nor a saved embedding layer: whole trained modules "
             "(modules_to_save) are not supported, as cgtrain applies LoRA factors only; use an adapter of LoRA "
             "factors alone, or merge this one into the base with PEFT (merge_and_unload) and set model.hf_dir to it",
             w_path.string(), key);
    at::Tensor t = f.read(key).to(torch::kFloat);
    CG_CHECK(t.isfinite().all().item<bool>(), "{}: tensor '{}' holds NaN or infinite values: the adapter is damaged, "
             "or was saved from a run that diverged (export an earlier checkpoint: cgexport --step N)", w_path.string(),
             key);
    out.factors[name] = std::move(t);
  }
  if (!exclude.is_null()) drop_excluded(out, exclude, bare, where);
  check_factors(out.factors, c.r, w_path.string(), /*reading=*/true);
  if (target_regex) {
    out.config.target_modules = adapted_modules(out);  // a regex or module paths
  } else {
    // Listed modules without factors: PEFT gives them a fresh LoRA layer (lora_B = 0, no update) and warns of missing
    // keys. Left out here, so cgsample and cgtrain apply what the tensors hold; while a tensor adapts a module the
    // list lacks, the files disagree and the list stays as written, for the caller to refuse.
    const std::vector<std::string> adapted = adapted_modules(out);
    std::vector<std::string> kept, untrained;
    for (const std::string& t : out.config.target_modules)
      (std::count(adapted.begin(), adapted.end(), t) ? kept : untrained).push_back(t);
    bool listed = true;  // every module the tensors adapt is in the list
    for (const std::string& m : adapted) listed = listed && std::count(kept.begin(), kept.end(), m) > 0;
    if (!untrained.empty() && listed) {
      out.config.target_modules = kept;
      out.untrained_targets = untrained;
    }
  }
  return out;
}

std::vector<std::string> adapted_modules(const PeftAdapter& a) {
  std::set<std::string> kinds;
  for (const auto& [name, t] : a.factors) {  // "model.layers.0.self_attn.q_proj.lora_A.weight" -> q_proj
    const std::string module = name.substr(0, name.rfind(".lora_"));
    kinds.insert(module.substr(module.rfind('.') + 1));
  }
  return {kinds.begin(), kinds.end()};
}

namespace {

// The dtype two tensors are compared in: the coarser of theirs (fp32 vs bf16: bf16; fp16 vs bf16: bf16, which has
// fewer mantissa bits), so a base converted to another dtype still compares equal to the weights it came from.
at::ScalarType coarser(at::ScalarType a, at::ScalarType b) {
  if (a == b) return a;
  const size_t sa = c10::elementSize(a), sb = c10::elementSize(b);
  if (sa != sb) return sa < sb ? a : b;
  return at::kBFloat16;
}

// The info line of embedding layers equal to the base's (check_embedding_layers), true to what was saved: the same
// rows as the base's, or the base's with rows appended (how many, when every layer has the same).
std::string embedding_layers_line(const std::vector<std::string>& shapes, const std::set<int64_t>& appended,
                                  int64_t vocab) {
  const std::string layers = fmt::format("its saved embedding layers ({})", fmt::join(shapes, ", "));
  if (appended == std::set<int64_t>{0})
    return fmt::format("{} equal the base's row for row ({} rows, none appended: the vocabulary was not resized, PEFT "
                       "saved them as asked, save_embedding_layers=True): ignored, LoRA factors applied", layers,
                       vocab);
  const int64_t k = appended.size() == 1 ? *appended.begin() : 0;
  const std::string rows = k == 1 ? "1 row appended" : k > 1 ? fmt::format("{} rows appended", k)
                                                             : std::string("rows appended to some");
  return fmt::format("{} equal the base's in the base's {} rows, {} (the vocabulary was resized, e.g. the "
                     "reference's [PAD]: tokens past the base's vocabulary, which the grammar never samples): "
                     "ignored, LoRA factors applied", layers, vocab, rows);
}

}  // namespace

std::string check_embedding_layers(const PeftAdapter& a, const std::string& dir, const std::string& hf_dir) {
  if (a.embedding_layers.empty()) return "";
  std::vector<std::string> names;
  for (const auto& [name, t] : a.embedding_layers) names.push_back(kPrefix + name);
  const std::string saved = fmt::format("{}/{} also saves {}", dir, kWeightsFile, fmt::join(names, " and "));
  const std::string why = "(PEFT saves them, save_embedding_layers, when the vocabulary was resized: the reference "
                          "script crystal-text-llm adds a [PAD] token; or when asked to, save_embedding_layers=True)";
  CG_CHECK(!hf_dir.empty(), "{} {}; they can only be checked against the base's, but model.hf_dir is empty: set "
           "model.hf_dir to the base the adapter was trained on", saved, why);
  const model::HfCheckpoint base(hf_dir);
  std::vector<std::string> shapes;
  std::set<int64_t> appended;  // rows past the base's, per layer
  int64_t vocab = 0;
  for (const auto& [name, t] : a.embedding_layers) {
    // A base with tied embeddings has no lm_head of its own: its head is embed_tokens.
    const std::string base_name = name == kLmHeadName && !base.contains(kLmHeadName) ? kEmbedName : name;
    CG_CHECK(base.contains(base_name), "{} {}, but the base {} has no {} to compare it with: set model.hf_dir to the "
             "base the adapter was trained on", saved, why, hf_dir, base_name);
    const at::Tensor b = base.read(base_name);
    CG_CHECK(t.dim() == 2 && b.dim() == 2 && t.size(1) == b.size(1) && t.size(0) >= b.size(0),
             "{} {}: its {} has shape [{}], which does not extend the base's [{}] (in {}) by rows: set "
             "model.hf_dir to the base the adapter was trained on", saved, why, kPrefix + name,
             fmt::join(t.sizes(), ", "), fmt::join(b.sizes(), ", "), hf_dir);
    const at::ScalarType dt = coarser(t.scalar_type(), b.scalar_type());
    const at::Tensor same = (t.narrow(0, 0, b.size(0)).to(dt) == b.to(dt)).all(1);
    if (!same.all().item<bool>()) {
      const int64_t row = (~same).nonzero()[0][0].item<int64_t>();
      CG_FAIL("{} {}, and {}'s rows differ from the base's {} (the first: row {} of {}): its embedding layers were "
              "trained (modules_to_save, trainable tokens) or it was trained on another base; cgtrain applies LoRA "
              "factors only and does not support trained embedding layers: set model.hf_dir to the base it was "
              "trained on, or merge the adapter into its base with PEFT (merge_and_unload) and sample that",
              saved, why, kPrefix + name, hf_dir, row, b.size(0));
    }
    shapes.push_back(fmt::format("{} [{}]", name, fmt::join(t.sizes(), ", ")));
    appended.insert(t.size(0) - b.size(0));
    vocab = b.size(0);
  }
  return embedding_layers_line(shapes, appended, vocab);
}

std::string some_layers_only(const PeftAdapter& a, int64_t num_layers, const std::string& what) {
  std::map<std::string, std::set<std::string>> layers;  // q_proj -> {"0", "1", ...}
  for (const auto& [name, t] : a.factors) {
    if (name.rfind("model.layers.", 0) != 0) continue;
    const std::string module = name.substr(0, name.rfind(".lora_"));
    layers[module.substr(module.rfind('.') + 1)].insert(name.substr(13, name.find('.', 13) - 13));
  }
  for (const auto& [kind, at] : layers)
    if (int64_t(at.size()) < num_layers)
      return fmt::format("{} has {} factors for {} of the model's {} layers: adapters on some layers only "
                         "(layers_to_transform, exclude_modules or target_modules naming some layers) are not "
                         "supported, cgtrain adapts every layer; {}", what, kind, at.size(), num_layers, kMergeFirst);
  return "";
}

void warn_ignored_targets(const PeftAdapter& a, const std::string& what) {
  if (!a.ignored_targets.empty())
    spdlog::warn("{}: adapter_config.json target_modules entries [{}] name no LLaMA module and are ignored, as PEFT "
                 "does; the adapted modules are [{}]", what, fmt::join(a.ignored_targets, ","),
                 fmt::join(a.config.target_modules, ","));
  if (!a.untrained_targets.empty())
    spdlog::warn("{}: adapter_config.json target_modules lists [{}], but {} holds no factors for {}: {} no update "
                 "(PEFT loads it so too, warning of missing keys), only [{}] are applied; if {} meant to be "
                 "trained, the two files come from different exports: copy both from one", what,
                 fmt::join(a.untrained_targets, ","), kWeightsFile, a.untrained_targets.size() == 1 ? "it" : "them",
                 a.untrained_targets.size() == 1 ? "that module gets" : "those modules get",
                 fmt::join(a.config.target_modules, ","), a.untrained_targets.size() == 1 ? "it was" : "they were");
  if (!a.excluded_factors.empty())
    spdlog::warn("{}: {} holds {} LoRA factors of modules its adapter_config.json exclude_modules names (e.g. {}): "
                 "PEFT never writes those and its loader drops them, so they are ignored here too (the file was "
                 "edited or assembled by hand?); if they were meant to apply, remove those modules from "
                 "exclude_modules", what, kWeightsFile, a.excluded_factors.size(), a.excluded_factors.front());
}

void check_adapter_against_base(PeftAdapter& a, const std::string& dir, const std::string& hf_dir,
                                const std::string& what, bool log) {
  const std::string ignored = check_embedding_layers(a, dir, hf_dir);
  if (!ignored.empty() && log) spdlog::info("{}: {}", what, ignored);
  a.embedding_layers.clear();
  if (log) warn_ignored_targets(a, what);
}

at::Tensor merge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scale) {
  TORCH_CHECK(W.dim() == 2 && A.dim() == 2 && B.dim() == 2, "merge_lora: W, A, B must be 2-D");
  TORCH_CHECK(A.size(1) == W.size(1) && B.size(0) == W.size(0) && B.size(1) == A.size(0),
              "merge_lora: shapes W ", W.sizes(), ", A ", A.sizes(), ", B ", B.sizes(),
              " do not fit W (out, in), A (r, in), B (out, r)");
  torch::NoGradGuard no_grad;
  at::Tensor delta = torch::matmul(B.to(W.device(), torch::kFloat), A.to(W.device(), torch::kFloat)) * scale;
  return (W.to(torch::kFloat) + delta).to(W.scalar_type());
}

}  // namespace cg::lora
