#!/usr/bin/env bash
# bench/gpu/device_check.sh's sampling stages, run here with a stand-in cgsample (a script that writes the
# summary.json fields the stages read), as the lease runs them: "long" first; the batch lowered to what fits an
# 80 GB GPU's memory (GPU_MEM_MIB) and left alone on a 141 GB one; a stage whose cgsample fails (here the graphs
# stage, as a CUDA error would) names its failing command in the summary, and the stages after it still report.
#   test_gpu_device_check.sh SOURCE_DIR
set -uo pipefail
src=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; echo "--- summary.txt:" >&2; cat "$T"/out*/summary.txt >&2 2>/dev/null; exit 1; }

mkdir -p "$T/build/sampler"
printf 'export CG_BUILD=%s CG_BACKEND=mpi\n' "$T/build" > "$T/env.sh"
: > "$T/tok.model"
cat > "$T/build/sampler/cgsample" <<'PY'
#!/usr/bin/env python3
# Stand-in for cgsample: the summary.json of N samples of 100 + min_new_tokens tokens; fails as a CUDA error would
# where CG_FAKE_FAIL (a key=value) is among its arguments.
import json, os, sys
a = dict(w.split("=", 1) for w in sys.argv[1:])
if os.environ.get("CG_FAKE_FAIL") in sys.argv[1:]:
    sys.exit("fatal: CUDA error: an illegal memory access was encountered")
n, bs = int(a["sample.num_samples"]), int(a["sample.batch_size"])
per = 100 + int(a.get("sample.min_new_tokens", 0))
s = {"num_samples": n, "parsed": n - 3, "hit_eos": n - 3, "tokens": n * per, "seconds": 10.0,
     "sequences_per_s": n / 10, "crystals_per_s": (n - 3) / 10, "tokens_per_s": n * per / 10, "batch_size": bs,
     "max_new_tokens": int(a["sample.max_new_tokens"]), "min_new_tokens": int(a.get("sample.min_new_tokens", 0)),
     "decode_steps": 100, "decode_rows": 100 * bs // 2, "prefill_passes": 9, "shared_prefix": 38,
     "cache_positions_read": 10, "cache_positions_needed": 10, "logits_to_host": 1, "logits_full": 100,
     "whole_rows": 0, "decode_kernels": a.get("sample.decode_kernels", "auto"), "one_pass_attention": True,
     "cuda_graphs": 1 if a.get("sample.cuda_graphs") == "true" else 0, "model_s": 1, "to_host_s": 2, "host_s": 3}
os.makedirs(a["sample.out_dir"], exist_ok=True)
json.dump(s, open(os.path.join(a["sample.out_dir"], "summary.json"), "w"))
PY
chmod +x "$T/build/sampler/cgsample"

run() {  # run OUT_NAME GPU_MEM_MIB STAGES
  env OUT="$T/$1" LOGS="$T/$1/logs" RESULTS="$T/results_$1" BUILD_DIR="$T" TOKENIZER="$T/tok.model" GPU_MEM_MIB="$2" \
    STAGES="$3" N=4096 BS=512 SAMPLE_SHARE=true TOTAL_S=300 CG_FAKE_FAIL="${4:-none}" \
    bash "$src/bench/gpu/device_check.sh" > "$T/$1.stdout" 2>&1
}

# An H100 (81,559 MiB), the stages of the lease, the graphs stage's cgsample failing.
run out 81559 "sample ops graphs long" sample.cuda_graphs=true
S=$T/out/summary.txt
[ -f "$S" ] || fail "no summary.txt"
# The two long runs take the fake failure's key too (sample.cuda_graphs=true in one of them): only graphs=false and
# the stages without graphs report results.
grep -q "sample_7b_long_graphs_false: rc 0" "$S" || fail "the long stage's eager run did not pass"
grep -q "sample_7b_long_graphs_true: rc 1" "$S" || fail "the long stage's graphs run did not fail as set up"
grep -q "sample_7b_graphs: rc 1" "$S" || fail "the graphs stage did not fail as set up"
grep -q "sample_7b_ops: rc 0" "$S" || fail "the ops stage after the failed graphs stage did not run"
# The failing command, exactly, in the summary (the log's last line).
grep -q "sample_7b.sh: cgsample failed (exit 1; its error is above): .*/sampler/cgsample .*sample.cuda_graphs=true" \
  "$S" || fail "the summary does not name the cgsample command that failed"
grep -q "CUDA error: an illegal memory access" "$S" || fail "the summary does not show cgsample's error"
# Each stage's command line with its settings.
grep -q "sample_7b_ops (limit [0-9]* s): env RESULTS=.* N=4096 BS=512 SHARE=true TAG=_ops" "$S" \
  || fail "the ops stage's command line is not in the summary"
# 512 rows of 64 + 400 positions (124 GB of cache) do not fit 80 GB: 256 do; of 64 + 300 (the long stage), 320.
note="note: sample.batch_size=512 needs a KV cache of"
grep -q "$note 125 GB for 464 positions a row; this GPU has 81559 MiB: sample.batch_size=256" "$S" \
  || fail "no note of the batch lowered to 256"
grep -q "$note 98 GB for 364 positions a row; this GPU has 81559 MiB: sample.batch_size=320" "$S" \
  || fail "no note of the long stage's batch lowered to 320"
grep -q "7B sampling (share_prompt=true, batch 320, cuda_graphs 0): .*crystals_per_s 409.3,.* at 260 tokens/sample" \
  "$S" \
  || fail "no result line of the long stage (batch 320, 260 tokens a sample)"
grep -q "4093 of 4096 parsed, 4093 ended at EOS, 3 cut at max_new_tokens 300; EOS held back for the first 160" "$S" \
  || fail "the long stage does not say how many samples were cut"
grep -q "7B sampling (share_prompt=true, batch 256, cuda_graphs 0): .*at 100 tokens/sample" "$S" \
  || fail "no result line of the sample stage at batch 256"
# "long" runs before the other sampling stages: it is the issue's measurement.
order=$(grep -o -E '^== \[[0-9:]+\] sample_7b[a-z_]* \(limit' "$S" | sed -E 's/.*\] (sample_7b[a-z_]*) .*/\1/' \
  | tr '\n' ' ')
[ "$order" = "sample_7b_long_graphs_true sample_7b_long_graphs_false sample_7b sample_7b_graphs sample_7b_ops " ] \
  || fail "stage order: $order"
# (The listing into a file first: under pipefail, a grep -q that stops reading early fails tar with SIGPIPE.)
tar tzf "$T/out/logs.tar.gz" > "$T/logs.list" || fail "cannot list logs.tar.gz"
grep -q "sample_7b_graphs.log" "$T/logs.list" || fail "logs.tar.gz lacks the failed stage's log"

# An H200 (143,771 MiB): batch 512 fits (117 GB of cache beside 13.5 GB of weights); nothing lowered.
run out2 143771 "sample"
grep -q "sample_7b: rc 0" "$T/out2/summary.txt" || fail "the sample stage failed on the H200's memory"
grep -q "note:" "$T/out2/summary.txt" && fail "batch lowered on a 141 GB GPU"
grep -q "7B sampling (share_prompt=true, batch 512," "$T/out2/summary.txt" || fail "no batch 512 result on the H200"
echo "device_check.sh sampling stages: ok"
