#!/usr/bin/env python3
"""Hugging Face transformers + PEFT baseline for bench/gpu/run_7b_lora.sh: the same GPU and settings.

LlamaForCausalLM from a random-init LlamaConfig of LLaMA-2 7B's shape (d 4096, SwiGLU 11008, 32 heads, 32 layers,
vocab 32000), bf16 base weights, SDPA attention; PEFT LoRA r 8, alpha 16, dropout 0.05 on q_proj,v_proj or
all-linear (adapters fp32, PEFT's default autocast_adapter_dtype); random full-length sequences of 512 tokens, micro
batch 8; a standard step: forward with labels (mean CE), backward, clip_grad_norm_(1.0), torch.optim.AdamW (fused
when available), zero_grad. Prints one line per step and `RESULT {json}` (tokens/s of the best step, MFU with
cgtrain's FLOP count from model/accounting.h: 4 N matmul + 12 L T d + 6 N_lora per token).

  python3 bench/gpu/hf_peft_baseline.py [--targets q_proj,v_proj|all-linear] [--micro-batch 8] [--steps 10]
Needs transformers and peft (offline machine: `pip install --no-index --find-links bench/gpu/wheels transformers
peft`, wheels fetched elsewhere with bench/gpu/fetch_debs.sh --wheels).
"""
import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=790.0)
    a = ap.parse_args()

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32,
                      num_hidden_layers=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
                      tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:  # transformers >= 4.56 names it dtype (5.x dropped torch_dtype)
            model = LlamaForCausalLM._from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
        except TypeError:
            model = LlamaForCausalLM._from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    if next(model.parameters()).dtype != torch.bfloat16:
        model = model.to(torch.bfloat16)
    targets = "all-linear" if a.targets == "all-linear" else a.targets.split(",")
    model = get_peft_model(model, LoraConfig(r=a.r, lora_alpha=16, lora_dropout=0.05, target_modules=targets,
                                             task_type="CAUSAL_LM"))
    model.config.use_cache = False
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_lora = sum(p.numel() for p in trainable)
    try:
        opt = torch.optim.AdamW(trainable, lr=1e-4, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(trainable, lr=1e-4)

    B, T = a.micro_batch, a.seq_len
    tokens = torch.randint(3, cfg.vocab_size, (B, T), device="cuda")

    def step():
        loss = model(input_ids=tokens, labels=tokens).loss  # HF shifts labels inside
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        print(f"step {i}: {times[-1] * 1e3:.1f} ms, {B * T / times[-1]:.0f} tokens/s, loss {loss.item():.4f}")

    d, L, V, I = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size, cfg.intermediate_size
    n_matmul = L * (4 * d * d + 3 * d * I) + V * d
    flops_per_token = 4 * n_matmul + 12 * L * T * d + 6 * n_lora
    best = min(times)
    tps = B * T / best  # positions processed per second, as bench_train_step counts them
    import peft, transformers
    res = dict(side="hf+peft", gpu=torch.cuda.get_device_name(), torch=torch.__version__,
               transformers=transformers.__version__, peft=peft.__version__, targets=a.targets,
               micro_batch=B, seq_len=T, lora_params=n_lora, best_step_s=best,
               median_step_s=sorted(times)[len(times) // 2], tokens_per_s=tps,
               achieved_tflops=tps * flops_per_token / 1e12, mfu=tps * flops_per_token / (a.peak_tflops * 1e12),
               peak_memory_gb=torch.cuda.max_memory_allocated() / 1e9)
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    main()
