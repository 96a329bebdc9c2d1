#!/usr/bin/env bash
# Sampling throughput of a 7B-shaped model on one GPU (after bench/gpu/build.sh): cgsample with the KV cache and the
# grammar, LLaMA-2's tokenizer, bf16; crystals/s from cgsample's summary.json (target >= 150 crystals/s).
#   bench/gpu/sample_7b.sh                          random weights (throughput only; what they write is noise)
#   HF_DIR=/path/llama-2-7b-hf ADAPTER=runs/x/checkpoints/step-N bench/gpu/sample_7b.sh   a trained model
# Env: N (1024 samples), BS (256 rows decoded together; lowered to what fits the GPU, below), MAX_NEW (400 tokens:
#      MP-20 crystals take up to 384 with EOS), TOKENIZER (third_party/llama2/tokenizer.model, made by
#      scripts/build.sh or `cgtok llama-js`), EXTRA ("key=value ...": they replace the script's own), TAG (a suffix
#      for the output folders), RESULTS (bench/gpu/results: where they go). CG_KERNEL_PROFILE=1 makes cgsample print
#      the GPU kernels per decode step.
# The KV cache is allocated whole, for BS rows of prompt + MAX_NEW positions (0.5 MB a position at 7B in bf16): 512
# rows x 438 positions is 117 GB, beyond an 80 GB H100. On a GPU (nvidia-smi, or GPU_MEM_MIB) with the 7B flavor and
# random weights, BS is lowered to the largest multiple of 64 whose cache fits beside the 13.5 GB of weights and
# ~6 GB of work space, and the log says so (batch_for_gpu below).
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BUILD_DIR:-build-gpu}/env.sh"
source launch/config_get.sh  # cg_merge_overrides
N=${N:-1024}; BS=${BS:-256}; MAX_NEW=${MAX_NEW:-400}
RESULTS=${RESULTS:-bench/gpu/results}
TOKENIZER=${TOKENIZER:-third_party/llama2/tokenizer.model}
# A failure names the command that failed (device_check.sh's summary shows the log's last lines).
trap 'rc=$?; echo "sample_7b.sh: failed (exit $rc): $BASH_COMMAND" >&2' ERR
if [ ! -f "$TOKENIZER" ]; then
  mkdir -p "$(dirname "$TOKENIZER")"
  "$CG_BUILD/data/cgtok" llama-js third_party/llama-tokenizer-js/llama-tokenizer.js "$TOKENIZER"
fi

# batch_for_gpu BS MAX_NEW MIB: the largest batch <= BS (a multiple of 64, else BS) whose 7B bf16 KV cache, for
# prompts of up to 64 tokens (the unconditional one is 38), fits in MIB MiB of GPU memory beside the weights
# (6.74e9 parameters) and 6 GB of work space (CUDA's context, activations, logits, the graphs' pool).
batch_for_gpu() {
  awk -v bs="$1" -v new="$2" -v mib="$3" 'BEGIN {
    row = (64 + new) * 524288; free = mib * 1048576 - 6.74e9 * 2 - 6e9
    fit = int(free / row); if (fit >= bs) { print bs; exit }
    fit = int(fit / 64) * 64; print (fit < 1 ? 1 : fit) }'
}

# SHARE (both): run with the shared prompt prefix (sample.share_prompt=true), without, or both one after the other:
# on paper sharing saves ~30% of the cache a step reads; it costs ~11 more kernel launches per layer and chunk.
SHARE=${SHARE:-both}
BACKEND=${BACKEND:-$CG_BACKEND}  # build-gpu/env.sh's
case "$SHARE" in both) variants=(true false) ;; true|false) variants=("$SHARE") ;;
  *) echo "sample_7b.sh: SHARE=$SHARE; use both, true or false" >&2; exit 2 ;; esac
for share in "${variants[@]}"; do
out=$RESULTS/sample_7b${TAG:-}; [ "$share" = false ] && out=$RESULTS/sample_7b_own_prompt${TAG:-}
rm -rf "$out"
args=(model.flavor=7b model.device=cuda model.dtype=bf16 "data.tokenizer=$TOKENIZER" "sample.num_samples=$N"
      "sample.batch_size=$BS" "sample.max_new_tokens=$MAX_NEW" sample.temperature=0.7 sample.top_p=0.9
      sample.constrained=true "sample.out_dir=$out" "parallel.backend=$BACKEND" "sample.share_prompt=$share")
[ -n "${HF_DIR:-}" ] && args+=("model.hf_dir=$HF_DIR")
[ -n "${ADAPTER:-}" ] && args+=("sample.adapter=$ADAPTER")
read -r -a extra <<< "${EXTRA:-}"
cg_merge_overrides "${args[@]}" ${extra[@]+"${extra[@]}"}  # EXTRA replaces the script's own settings
args=("${merged[@]}")
# The settings as merged: a 7B random-weight run on a GPU gets the batch that fits it.
declare -A given=()
for w in "${args[@]}"; do given[${w%%=*}]=${w#*=}; done
mib=${GPU_MEM_MIB:-$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -n 1 || true)}
if [[ "$mib" =~ ^[0-9]+$ ]] && [ "${given[model.device]:-}" = cuda ] && [ "${given[model.flavor]:-}" = 7b ] &&
   [ -z "${given[model.hf_dir]:-}" ]; then
  bs=${given[sample.batch_size]} new=${given[sample.max_new_tokens]}
  fit=$(batch_for_gpu "$bs" "$new" "$mib")
  if [ "$fit" != "$bs" ]; then
    gb=$(awk -v b="$bs" -v n="$new" 'BEGIN { printf "%.0f", b * (64 + n) * 524288 / 1e9 }')
    echo "note: sample.batch_size=$bs needs a KV cache of $gb GB for $((64 + new)) positions a row; this GPU has" \
      "$mib MiB: sample.batch_size=$fit"
    cg_merge_overrides "${args[@]}" "sample.batch_size=$fit"
    args=("${merged[@]}")
  fi
fi
cmd=$(printf '%q ' "$CG_BUILD/sampler/cgsample" "${args[@]}")
echo "+ $cmd"  # the exact command line
"$CG_BUILD/sampler/cgsample" "${args[@]}" || { rc=$?; trap - ERR
  echo "sample_7b.sh: cgsample failed (exit $rc; its error is above): $cmd" >&2; exit $rc; }
python3 - "$out/summary.json" "$share" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
keys = ("seconds", "sequences_per_s", "crystals_per_s", "tokens_per_s")
n = s["num_samples"]
per = s["tokens"] / max(1, n)
print(f"7B sampling (share_prompt={sys.argv[2]}, batch {s['batch_size']}, cuda_graphs {s.get('cuda_graphs', 0)}): "
      + ", ".join(f"{k} {s[k]:.1f}" for k in keys if k in s)
      + f" at {per:.0f} tokens/sample (target >= 150 crystals/s at ~200)")
# crystals_per_s counts the samples that parse; one cut at max_new_tokens (no EOS) does not, though its time counts.
print(f"  {s['parsed']} of {n} parsed, {s['hit_eos']} ended at EOS, {n - s['hit_eos']} cut at "
      f"max_new_tokens {s['max_new_tokens']}; EOS held back for the first {s.get('min_new_tokens', 0)} tokens")
if s.get("decode_steps"):
    print(f"  {s['decode_steps']} decode steps, {s['decode_rows'] / s['decode_steps']:.1f} of {s['batch_size']} rows busy, "
          f"{s['prefill_passes']} prefill passes, {s.get('shared_prefix', 0)} prompt tokens shared, attention read "
          f"{s['cache_positions_read'] / max(1, s['cache_positions_needed']):.2f}x the cached positions attended")
    if per > 200 and s.get("tokens_per_s"):  # the issue's crystals are ~200 tokens
        print(f"  crystals of 200 tokens at this rate: {s['tokens_per_s'] / 200:.1f}/s (a floor: these samples are "
              f"{per:.0f} tokens, and a step's cost grows with the positions attended)")
if s.get("logits_full"):
    print(f"  logits to the host: {100 * s['logits_to_host'] / s['logits_full']:.2f}% of whole rows"
          + (f", {s['whole_rows']} rows brought whole" if s.get("whole_rows") else ""))
if "decode_kernels" in s:
    print(f"  decode_kernels: {s['decode_kernels']}, one-pass attention: {s.get('one_pass_attention')} "
          "(cgtrain's kernels; false: libtorch's operators)")
if "cuda_graphs" in s:
    print(f"  cuda_graphs: {s['cuda_graphs']} decode-step graphs captured (0: eager steps)")
# Host-bound when model calls + host work outweigh the wait for the device (in to_host_s).
print(f"  loop time: model calls (enqueue) {s['model_s']:.2f} s, logits to host (waits for the GPU) "
      f"{s['to_host_s']:.2f} s, host work {s['host_s']:.2f} s")
PY
done
