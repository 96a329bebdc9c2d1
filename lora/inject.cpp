// LoRA injection into model::Linear layers, freezing, merging, and the full-factor views used by export/resume.
#include "lora/inject.h"

#include <set>

#include "common/error.h"

namespace cg::lora {

const std::vector<std::string>& known_targets() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

namespace {
std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

Split split_of(model::ParallelStyle s, const std::string& name) {
  switch (s) {
    case model::ParallelStyle::None: return Split::None;
    case model::ParallelStyle::Column: return Split::Column;
    case model::ParallelStyle::Row: return Split::Row;
    case model::ParallelStyle::Vocab: break;
  }
  CG_FAIL("{}: LoRA cannot target a vocab-parallel layer", name);
}
}  // namespace

bool is_target(const std::string& hf_name, const std::vector<std::string>& targets) {
  const std::string last = last_component(hf_name);
  for (const auto& t : targets) {
    if (t == "all-linear") {
      for (const auto& k : known_targets())
        if (last == k) return true;
    } else if (t == last) {
      return true;
    }
  }
  return false;
}

namespace {
model::ParamSpec spec_of(const std::string& name, const at::Tensor& p, int64_t shard_dim, int64_t full_rows,
                         int64_t full_cols, int tp_rank, model::ParallelStyle style) {
  model::ParamSpec s;
  s.name = name;
  s.param = p;
  s.full_shape = {full_rows, full_cols};
  s.shard_dim = shard_dim;
  s.shard_len = shard_dim >= 0 ? p.size(shard_dim) : 0;
  s.shard_start = shard_dim >= 0 ? tp_rank * s.shard_len : 0;
  s.style = shard_dim >= 0 ? style : model::ParallelStyle::None;
  return s;
}
}  // namespace

std::vector<model::ParamSpec> LoraSet::params() const {
  std::vector<model::ParamSpec> out;
  out.reserve(2 * entries.size());
  for (const auto& e : entries) {
    const auto& a = e.adapter;
    const int rank = e.linear->tp.rank;
    out.push_back(spec_of(a->hf_name() + ".lora_A.weight", a->A, a->A_shard_dim(), a->spec().r, a->in_features(),
                          rank, model::ParallelStyle::Row));
    out.push_back(spec_of(a->hf_name() + ".lora_B.weight", a->B, a->B_shard_dim(), a->out_features(), a->spec().r,
                          rank, model::ParallelStyle::Column));
  }
  return out;
}

std::map<std::string, at::Tensor> LoraSet::gather_full() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& e : entries) {
    out[e.adapter->hf_name() + ".lora_A.weight"] = e.adapter->full_A();
    out[e.adapter->hf_name() + ".lora_B.weight"] = e.adapter->full_B();
  }
  return out;
}

void LoraSet::load_full(const std::map<std::string, at::Tensor>& full, const std::string& source,
                        const std::string& fix, const std::string& shape_fix, const std::set<std::string>& fresh) {
  std::set<std::string> used;
  for (auto& e : entries) {
    const std::string& name = e.adapter->hf_name();
    const std::string ka = name + ".lora_A.weight", kb = name + ".lora_B.weight";
    auto ia = full.find(ka), ib = full.find(kb);
    if (ia == full.end() && ib == full.end() && fresh.count(name.substr(name.rfind('.') + 1))) continue;
    CG_CHECK(ia != full.end() && ib != full.end(), "{} has no '{}' / '{}': {}", source, ka, kb, fix);
    try {
      e.adapter->load_full(ia->second, ib->second);
    } catch (const Error& err) {  // a shape of another r or base model: the caller's fix names the settings
      CG_FAIL("{}: {}; {}", source, message_of(err), shape_fix.empty() ? fix : shape_fix);
    }
    used.insert(ka);
    used.insert(kb);
  }
  for (const auto& [k, v] : full)
    CG_CHECK(used.count(k), "{} holds '{}', which is no LoRA layer of this model: {}", source, k, fix);
}

const LoraEntry* LoraSet::find(const std::string& hf_name) const {
  for (const auto& e : entries)
    if (e.adapter->hf_name() == hf_name) return &e;
  return nullptr;
}

LoraSet inject_lora(torch::nn::Module& model, const LoraSpec& spec, const std::vector<std::string>& targets,
                    const dist::CommPtr& tp, const c10::Device& device, DropoutGen dropout_gen,
                    const std::string& targets_from) {
  for (const auto& t : targets) {
    bool known = t == "all-linear";
    for (const auto& k : known_targets()) known = known || t == k;
    CG_CHECK(known, "{}: unknown module '{}'; LLaMA's adaptable modules are q_proj,k_proj,v_proj,o_proj,gate_proj,"
             "up_proj,down_proj (or all-linear)", targets_from, t);
  }
  LoraSet set;
  set.dropout_gen = std::move(dropout_gen);
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    auto linear = std::dynamic_pointer_cast<model::LinearImpl>(item.value());
    if (!linear || !is_target(linear->hf_name, targets)) continue;
    CG_CHECK(!linear->delta, "{}: already has a LoRA adapter (inject_lora called twice?)", linear->hf_name);
    CG_CHECK(linear->tp.size == (tp ? tp->size() : 1), "{}: built for tp {} but the tp group has {} ranks",
             linear->hf_name, linear->tp.size, tp ? tp->size() : 1);
    LoraAdapter adapter(linear->hf_name, linear->in_features, linear->out_features,
                        split_of(linear->style, linear->hf_name), spec, tp, set.dropout_gen);
    adapter->to(device);  // fp32 stays fp32; only the device changes
    linear->register_module("lora", adapter);
    linear->delta = [a = adapter.get()](const at::Tensor& x, const at::Tensor& y) { return a->forward_add(x, y); };
    set.entries.push_back({model::Linear(linear), adapter});
  }
  CG_CHECK(!set.entries.empty(), "{} {} matched no linear layer of the model", targets_from,
           fmt::format("[{}]", fmt::join(targets, ",")));
  return set;
}

void freeze_base(torch::nn::Module& model, const LoraSet& lora) {
  for (auto& p : model.parameters(/*recurse=*/true)) p.set_requires_grad(false);
  for (const auto& sp : lora.params()) sp.param.set_requires_grad(true);
}

void merge_lora(LoraSet& lora) {
  at::NoGradGuard no_grad;
  for (auto& e : lora.entries) {
    at::Tensor d = e.adapter->delta_weight_local();  // (out_local, in_local), fp32
    e.linear->weight.add_(d.to(e.linear->weight.scalar_type()));
    e.linear->delta = nullptr;
    e.linear->unregister_module("lora");
  }
  lora.entries.clear();
}

}  // namespace cg::lora
