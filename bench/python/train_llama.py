#!/usr/bin/python3
"""Reference side of bench/compare_cpu.sh: a plain PyTorch LLaMA-2 + LoRA training step, timed.

A faithful, straightforward LLaMA-2 (as Hugging Face's modeling_llama writes it: RMSNorm in fp32, rotate-half RoPE,
GQA by repeat_kv, causal attention, SwiGLU MLP, untied lm_head) with PEFT-style LoRA (dropout -> A -> B, scale
alpha / r, A Kaiming-uniform, B zero) on the target projections, the base frozen, fp32 throughout. One training step
is the standard one: forward, mean token cross-entropy, backward, clip_grad_norm_, torch.optim.AdamW.step,
zero_grad(set_to_none=True). Inputs are random full-length sequences (every position carries loss), the same kind of
batch bench_train_step feeds cgtrain, so tokens/s compare one to one.

Shapes default to cgtrain's `tiny` flavor (model/llama_config.cpp) and trainer/config.h's defaults:
d 256, SwiGLU 688, 8 heads, 4 kv heads, 4 layers, vocab 512; micro_batch 8, seq_len 512; LoRA r 8, alpha 32,
dropout 0.05 on q_proj, v_proj; AdamW lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0; clip 1.0.

  /usr/bin/python3 bench/python/train_llama.py [--threads N] [--steps N] [--warmup N] [--targets q_proj,v_proj]
Prints one line per timed step and a final `RESULT {json}` line (tokens_per_s is the best step).
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
FLAVORS = {  # model/llama_config.cpp
    "tiny": dict(d=256, ffn=688, heads=8, kv_heads=4, layers=4, vocab=512),
    "7b": dict(d=4096, ffn=11008, heads=32, kv_heads=32, layers=32, vocab=32000),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class LoraLinear(nn.Module):
    """A frozen nn.Linear (no bias) plus PEFT's LoRA path: base(x) + B(A(dropout(x))) * alpha / r."""

    def __init__(self, d_in, d_out, r=0, alpha=32.0, dropout=0.0):
        super().__init__()
        self.base = nn.Linear(d_in, d_out, bias=False)
        self.r = r
        if r > 0:
            self.lora_A = nn.Linear(d_in, r, bias=False)
            self.lora_B = nn.Linear(r, d_out, bias=False)
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)
            self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            self.scale = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.r > 0:
            y = y + self.lora_B(self.lora_A(self.drop(x))) * self.scale
        return y


def lora_kwargs(lora):
    return dict(r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"])


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, n_rep):  # (B, n_kv, T, hd) -> (B, n_kv * n_rep, T, hd), HF's layout
    if n_rep == 1:
        return x
    b, n_kv, t, hd = x.shape
    return x[:, :, None, :, :].expand(b, n_kv, n_rep, t, hd).reshape(b, n_kv * n_rep, t, hd)


class Attention(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        d, self.h, self.kv = cfg["d"], cfg["heads"], cfg["kv_heads"]
        self.hd = d // self.h
        mk = lambda name, i, o: LoraLinear(i, o, **(lora_kwargs(lora) if name in lora["targets"] else {}))
        self.q_proj = mk("q_proj", d, d)
        self.k_proj = mk("k_proj", d, self.kv * self.hd)
        self.v_proj = mk("v_proj", d, self.kv * self.hd)
        self.o_proj = mk("o_proj", d, d)
        self.attn = cfg["attn"]

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)  # (B, h, T, hd)
        k = self.k_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)  # (B, kv, T, hd)
        v = self.v_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, self.h // self.kv), repeat_kv(v, self.h // self.kv)
        if self.attn == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif self.attn == "fused113":  # torch 1.13's private fused op: the kernel cgtrain calls in C++ on 1.13
            out = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        else:  # HF eager attention
            att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd) + mask  # (B, h, T, T)
            att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(att, v)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


class Mlp(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        d, f = cfg["d"], cfg["ffn"]
        mk = lambda name, i, o: LoraLinear(i, o, **(lora_kwargs(lora) if name in lora["targets"] else {}))
        self.gate_proj, self.up_proj, self.down_proj = mk("gate_proj", d, f), mk("up_proj", d, f), mk("down_proj", f, d)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["d"], 1e-5)
        self.self_attn = Attention(cfg, lora)
        self.post_attention_layernorm = RMSNorm(cfg["d"], 1e-5)
        self.mlp = Mlp(cfg, lora)

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg["vocab"], cfg["d"])
        self.layers = nn.ModuleList(Layer(cfg, lora) for _ in range(cfg["layers"]))
        self.norm = RMSNorm(cfg["d"], 1e-5)
        self.lm_head = nn.Linear(cfg["d"], cfg["vocab"], bias=False)

    def forward(self, tokens):
        B, T = tokens.shape
        hd = self.cfg["d"] // self.cfg["heads"]
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.outer(torch.arange(T).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1) if self.cfg["attn"] == "eager" else None  # (T, T) causal
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x)).float()  # (B, T, V)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flavor", default="tiny", choices=sorted(FLAVORS))
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--targets", default="q_proj,v_proj", help="comma list, or all-linear")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0))
    ap.add_argument("--attn", default="auto", choices=["auto", "eager", "sdpa", "fused113"],
                    help="auto: F.scaled_dot_product_attention when this torch has it (>= 2.0), else HF eager; "
                         "fused113: torch 1.13's private F._scaled_dot_product_attention (for the profile only)")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    attn = a.attn if a.attn != "auto" else ("sdpa" if has_sdpa else "eager")
    cfg = dict(FLAVORS[a.flavor], attn=attn)
    targets = ALL_LINEAR if a.targets == "all-linear" else a.targets.split(",")
    lora = dict(r=a.r, alpha=a.alpha, dropout=a.dropout, targets=targets)
    model = Llama(cfg, lora)
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.requires_grad_(True)
        else:  # frozen base: normal(0, 0.02) matrices, unit norm scales (like model::init_weights)
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    model.train()

    B, T, V = a.micro_batch, a.seq_len, cfg["vocab"]
    g = torch.Generator().manual_seed(1)
    seqs = torch.randint(3, V, (B, T + 1), generator=g)  # full-length: every position carries loss
    tokens, targets_t = seqs[:, :-1].contiguous(), seqs[:, 1:].reshape(-1).contiguous()

    def step():
        logits = model(tokens)  # (B, T, V)
        loss = F.cross_entropy(logits.view(B * T, V), targets_t)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print(f"step {i}: {times[-1] * 1e3:.1f} ms, {B * T / times[-1]:.0f} tokens/s, loss {loss:.4f}", flush=True)
    best = min(times)
    res = dict(side="pytorch", torch=torch.__version__, threads=torch.get_num_threads(),
               attention=attn, flavor=a.flavor, micro_batch=B, seq_len=T,
               lora_r=a.r, targets=a.targets, trainable_params=sum(p.numel() for p in trainable),
               best_step_s=best, median_step_s=sorted(times)[len(times) // 2], tokens_per_s=B * T / best)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
