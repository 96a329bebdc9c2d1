#include "dist/tp_plan.h"

#include <torch/torch.h>

#include <optional>

#include "common/error.h"
#include "common/log.h"
#include "dist/tp_ops.h"
#include "dist/vocab_parallel_ce.h"
#include "dist/vocab_parallel_embedding.h"
#include "model/hf_checkpoint.h"

namespace cg::dist {

void apply_tensor_parallel(model::Llama& m, const ParallelDims& dims) {
  const auto tp = m->tp();
  CG_CHECK(tp.size == dims.tp && tp.rank == dims.tp_rank,
           "model built for tp rank {} of {} but this rank is tp rank {} of {}; build it with dist::tp_shape(dims)",
           tp.rank, tp.size, dims.tp_rank, dims.tp);
  if (dims.tp == 1) return;
  CG_CHECK(dims.tp_comm && dims.tp_comm->size() == dims.tp, "ParallelDims has no tp group of size {}", dims.tp);
  const CommPtr comm = dims.tp_comm;
  // Column-parallel layers that read the same input (q, k, v; gate, up) share one copy_to_tp: one all-reduce of
  // the input gradient per group in backward.
  auto row = [comm](const at::Tensor& y) { return reduce_from_tp(y, comm); };
  for (const auto& layer : *m->model->layers) {
    auto* l = layer->as<model::DecoderLayerImpl>();
    const auto attn_in = shared_copy_to_tp(comm, 3), mlp_in = shared_copy_to_tp(comm, 2);
    l->self_attn->q_proj->pre = attn_in, l->self_attn->k_proj->pre = attn_in, l->self_attn->v_proj->pre = attn_in;
    l->mlp->gate_proj->pre = mlp_in, l->mlp->up_proj->pre = mlp_in;
    l->self_attn->o_proj->post = row, l->mlp->down_proj->post = row;
  }
  const auto column = [comm](const at::Tensor& x) { return copy_to_tp(x, comm); };
  m->lm_head->pre = column;  // local logits (B, T, V_local); the loss works on them without a gather
  auto& emb = *m->model->embed_tokens;
  const int64_t start = emb.vocab_start;
  emb.lookup = [comm, start](const at::Tensor& ids, const at::Tensor& w) {
    return vocab_parallel_embedding(ids, w, start, comm);
  };
}

at::Tensor token_cross_entropy(const model::LlamaImpl& m, const at::Tensor& logits_local, const at::Tensor& targets,
                               const ParallelDims& dims) {
  const int64_t V_local = logits_local.size(-1);
  const auto loss = vocab_parallel_cross_entropy(logits_local.reshape({-1, V_local}), targets.reshape({-1}),
                                                 m.model->embed_tokens->vocab_start, dims.tp_comm);  // (B * T)
  return loss.view(targets.sizes());
}

model::Llama build_llama(const ModelBuildOptions& o, const ParallelDims& dims,
                         const std::function<void(model::Llama&)>& inject_lora) {
  // 0. the base folder's config and tensor headers against the model, before anything is allocated
  std::optional<model::HfCheckpoint> base;
  if (!o.hf_dir.empty()) {
    model::check_hf_config(o.hf_dir, o.config, o.config_from);  // a base of the same shapes may differ (rope_theta)
    base.emplace(o.hf_dir);
    model::check_hf_folder_fits(*base, o.config);
  }
  // 1. build at this rank's sizes
  model::Llama m(o.config, tp_shape(dims), at::TensorOptions().dtype(o.dtype).device(o.device));
  m->activation_checkpointing = o.activation_checkpointing;
  // 2. base weights: this rank's slices only
  if (base) {
    model::load_hf_weights(*m, *base);
  } else {
    spdlog::info("random init (seed {}) of {} layers, hidden {}", o.init_seed, o.config.num_hidden_layers,
                 o.config.hidden_size);
    model::init_weights(*m, o.init_seed);
  }
  // 3. tensor parallelism
  apply_tensor_parallel(m, dims);
  // 4. LoRA, sharded like the layers it wraps
  if (inject_lora) inject_lora(m);
  // 5. freeze
  m->set_base_trainable(o.train_base);
  return m;
}

}  // namespace cg::dist
