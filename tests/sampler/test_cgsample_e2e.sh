#!/bin/sh
# cgsample and cgeval end to end, through their command lines: cgprep trains a tiny tokenizer on 300 MP-20 rows,
# write_tiny_hf writes a random micro LLaMA as an HF checkpoint, then
#   cgsample (grammar on)  -> samples.jsonl, one CIF per parsed crystal, summary.json with parse rate and crystals/s
#   cgsample (grammar off) -> the summary states its (lower) parse rate
#   cgsample, 25 new tokens -> samples cut off there are unparsed (no CIF) whatever their prefix parses to
#   cgsample infill        -> every answer is an element symbol; in another site order or angle mode than the
#                             model's training text (its shards' record, else its run's config.yaml) -> refused,
#                             naming each setting; generation prompts (no crystal text) -> not compared
#   cgsample greedy at tp 1 and under mpirun at tp 2 -> identical texts
#   cgeval eval.invariance=true -> report.json has the invariance block; in another site order or angle mode than
#                             the model's training text -> refused as infill is
#   cgeval on the NaCl / 225 conditioned samples -> report.json counts 8 conditioned items, formula matches as here
#   cgsample and cgeval given train.run_dir alone -> the samples and their report in <train.run_dir>/samples
#   cgsample sample.conditions_from=data.test_csv -> every prompt states a test row's formula, space group, band gap;
#     the same prompts at dp 2 (read on rank 0 alone), and rank 0's error on a missing file ends both ranks
# Two ctest entries, so that ctest -j2 runs the one-process runs beside another test: test_cgsample_e2e (this
# script alone, PROCESSORS 1) runs everything but the mpirun launches; test_cgsample_e2e_mpi (the argument mpi,
# PROCESSORS 2, the first one its fixture) runs those (tp 2, dp 2), each compared with the one-process run the first
# one left. They share the folder $CG_FIXTURE_DIR, made for each ctest invocation (tests/scripts/fixture_dir.sh, which
# ctest runs both through: the ctest fixture cgsample_e2e_dir), removed after the last of them when both passed, kept
# and named when one failed.
# usage: fixture_dir.sh BASE run test_cgsample_e2e.sh BUILD_DIR SOURCE_DIR MPIEXEC [mpi]
set -eu
B=$1; S=$2; MPIEXEC=$3; PART=${4:-serial}  # serial or mpi
PY=/usr/bin/python3
D=${CG_FIXTURE_DIR:?run it through tests/scripts/fixture_dir.sh, as ctest does (tests/sampler/CMakeLists.txt)}
cd "$S"
# Start-up, paid by each of the ~75 launches: PASSIVE is the policy the tools set for themselves when it is unset
# (common/omp_env.h; test_omp_env tests it), given here so that the runs do not depend on that; and a process
# started without mpirun (an MPI singleton) starts no orted daemon (~0.2 s).
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_MCA_ess_singleton_isolated=1
# Shared by both parts: the resume runs' settings and how to stop a run once it has journaled some sequences.
RESUME="sample.num_samples=64 sample.batch_size=1 sample.max_new_tokens=300"
# journaled FILE: the sequences FILE holds (its lines after the key line; 0 while it does not exist).
journaled() { echo $(($(cat "$1" 2>/dev/null | wc -l) - 1)); }
# stop_when_journaled PID SIGNAL N FILE...: once every FILE holds N sequences or more (or after 120 s: on a loaded
# machine the ranks may take a while to start; the wait ends as soon as the sequences are there), sends SIGNAL to
# PID and waits for it to end.
stop_when_journaled() {
  pid=$1; sig=$2; want=$3; shift 3
  for _ in $(seq 6000); do
    enough=1
    for f in "$@"; do [ "$(journaled "$f")" -ge "$want" ] || enough=0; done
    [ "$enough" -eq 1 ] && break
    sleep 0.02
  done
  kill -"$sig" "$pid" 2>/dev/null || true
  wait "$pid" || true
}

# The mpirun part (test_cgsample_e2e_mpi, PROCESSORS 2): the runs at tp 2 or dp 2, each compared with the one-process
# run of the serial part (test_cgsample_e2e, PROCESSORS 1, its fixture) in the folder they share.
if [ "$PART" = mpi ]; then
  for f in greedy1 rows whole; do
    [ -f "$D/$f/samples.jsonl" ] || { echo "no $D/$f/samples.jsonl: test_cgsample_e2e (the serial part) did not run\
 in this ctest invocation" >&2
      exit 1; }
  done
  set -- "$D/base.yaml"
  "$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$B/sampler/cgsample" "$@" parallel.tp=2 \
    sample.out_dir="$D/greedy2" sample.max_new_tokens=80 sample.temperature=0 sample.formula=NaCl sample.spacegroup=225
  # Under mpirun (dp 2) rank 0 alone reads the rows and sends the prompts: the same prompts as one process asks.
  "$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$B/sampler/cgsample" "$@" \
    sample.out_dir="$D/rows_dp2" sample.max_new_tokens=40 sample.conditions_from=data.test_csv \
    sample.condition_on=[formula,spacegroup,band_gap] data.test_csv=data/mp20/test.csv.gz
  prompts() { "$PY" -c "import json, sys; print([json.loads(l)['prompt'] for l in open(sys.argv[1])])" "$1"; }
  [ "$(prompts "$D/rows/samples.jsonl")" = "$(prompts "$D/rows_dp2/samples.jsonl")" ] ||
    { echo "prompts at dp 2 differ from one process's" >&2; exit 1; }
  # Rank 0's error there (the rows' file missing) ends every rank with its message, none waiting for the prompts.
  rc=0
  timeout 120 "$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$B/sampler/cgsample" "$@" \
    sample.out_dir="$D/gone_dp2" sample.conditions_from="$D/no_such_rows.csv" >"$D/gone_dp2.err" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then echo "a missing conditions_from at 2 ranks: exit $rc" >&2; exit 1; fi
  grep -q "\[rank 0\] fatal: .*no_such_rows.csv" "$D/gone_dp2.err"
  # A base folder every rank reads alike and finds broken (its weights file gone; the ranks' copies of the base are
  # sampled and compared, check_base_folder) is said once, by rank 0, not by each rank.
  mkdir -p "$D/hf_noweights" && cp "$D/hf/config.json" "$D/hf_noweights/"
  rc=0
  timeout 120 "$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$B/sampler/cgsample" "$@" \
    sample.out_dir="$D/noweights_dp2" model.hf_dir="$D/hf_noweights" >"$D/noweights_dp2.err" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$(grep -c "fatal:" "$D/noweights_dp2.err")" -ne 1 ] ||
     ! grep -q "\[rank 0\] fatal: .*hf_noweights has no model.safetensors" "$D/noweights_dp2.err"; then
    echo "a base without weights at 2 ranks: exit $rc, expected one 'fatal:' line, by rank 0:" >&2
    cat "$D/noweights_dp2.err" >&2
    exit 1
  fi
  # At dp 2 under mpirun, stopped as Slurm stops a job step (USR1 to mpirun): each dp group has journaled what it
  # finished, and a run at dp 1 goes on from both groups' journals to the same samples.
  "$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$B/sampler/cgsample" "$@" $RESUME \
    sample.out_dir="$D/stopped_dp2" 2>"$D/stopped_dp2.err" &
  stop_when_journaled $! USR1 4 "$D/stopped_dp2/.cgsample.journal.jsonl" "$D/stopped_dp2/.cgsample.journal.dp1.jsonl"
  kept0=$(journaled "$D/stopped_dp2/.cgsample.journal.jsonl")
  kept1=$(journaled "$D/stopped_dp2/.cgsample.journal.dp1.jsonl")
  if [ "$kept0" -lt 4 ] || [ "$kept1" -lt 4 ] || [ $((kept0 + kept1)) -ge 64 ] || [ -e "$D/stopped_dp2/samples.jsonl" ]
  then echo "the dp-2 stop kept $kept0 + $kept1 sequences" >&2; cat "$D/stopped_dp2.err" >&2; exit 1; fi
  grep -q "sequences (the resumed ones and dp group 0's) are kept in sample.out_dir's .cgsample.journal.jsonl, \
the other groups' finished ones in" \
    "$D/stopped_dp2.err" || { echo "no word of what the dp-2 stop keeps" >&2; cat "$D/stopped_dp2.err" >&2; exit 1; }
  "$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/stopped_dp2" log.level=info 2>"$D/resumed_dp2.err"
  grep -q "cgsample: resuming: $((kept0 + kept1)) of 64 sequences" "$D/resumed_dp2.err"
  cmp "$D/whole/samples.jsonl" "$D/stopped_dp2/samples.jsonl"
  [ -z "$(ls -A "$D/stopped_dp2" | grep journal)" ]
  "$PY" - "$D" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
def records(name):
    with open(os.path.join(d, name, "samples.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]
with open(os.path.join(d, "greedy2", "summary.json")) as f:
    s_g2 = json.load(f)
g1, g2 = records("greedy1"), records("greedy2")
assert [r["text"] for r in g1] == [r["text"] for r in g2], "tp 2 greedy differs from tp 1"
assert s_g2["tp"] == 2
PYEOF
  exit 0
fi

find "$D" -mindepth 1 -delete  # what an earlier try in this ctest invocation left (ctest --repeat)

"$B/data/cgprep" data.max_rows=300 data.shards_dir="$D/shards" data.tokenizer=train data.tokenizer_vocab_size=400 \
  log.level=warn
"$B/tests/sampler/write_tiny_hf" "$D/hf" "$D/shards/tokenizer.model" 7

# The settings every call shares, as a config file: a call's own key=value then overrides one of them (the tools
# refuse a key given twice on one command line).
cat >"$D/base.yaml" <<EOF
model: {hf_dir: "$D/hf", device: cpu}
data: {tokenizer: "$D/shards/tokenizer.model"}
log: {level: warn}
sample: {num_samples: 8, batch_size: 4, temperature: 1.0, top_p: 1.0, seed: 3}
EOF
set -- "$D/base.yaml"
"$B/sampler/cgsample" "$@" sample.out_dir="$D/on" sample.max_new_tokens=300 log.level=info >"$D/on.log" 2>&1 ||
  { cat "$D/on.log" >&2; exit 1; }
# Progress: a line once batch_size (4) more sequences are done, with the time left; the last one says none is.
grep -Eq "cgsample: [4-7]/8 sequences, [0-9]+ tokens, [0-9.]+ seq/s, [0-9.]+ tok/s, ETA [0-9]+(s|m[0-9]{2}s)$" \
  "$D/on.log" && grep -Eq "cgsample: 8/8 sequences, .* ETA 0s$" "$D/on.log" || { cat "$D/on.log" >&2; exit 1; }
"$B/sampler/cgsample" "$@" sample.out_dir="$D/off" sample.max_new_tokens=60 sample.constrained=false
"$B/sampler/cgsample" "$@" sample.out_dir="$D/short" sample.max_new_tokens=25
# A write that fails once the sequences are sampled (a full disk; here a folder where summary.json.tmp goes) leaves the
# earlier run's samples.jsonl, summary.json and CIFs as they were (not a new samples.jsonl beside the old summary),
# says what to put right and to run again, and the rerun takes the sequences from the journal.
cp "$D/short/samples.jsonl" "$D/short_samples.jsonl"; cp "$D/short/summary.json" "$D/short_summary.json"
mkdir "$D/short/summary.json.tmp"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/short" sample.max_new_tokens=25 sample.seed=4 2>"$D/full.err"; then
  echo "cgsample wrote its outputs over a summary.json.tmp folder" >&2; exit 1; fi
grep -q "summary.json.tmp.*run the same command again: the 8 sequences are kept in its journal" "$D/full.err" ||
  { cat "$D/full.err" >&2; exit 1; }
# A folder in a file's place is no full disk: said as what it is, not "free space" (it was, for any failure).
grep -q "summary.json.tmp: Is a directory (errno 21); a folder is where a file should be" "$D/full.err" &&
  ! grep -q "free space\|disk is full" "$D/full.err" || { cat "$D/full.err" >&2; exit 1; }
cmp "$D/short/samples.jsonl" "$D/short_samples.jsonl" && cmp "$D/short/summary.json" "$D/short_summary.json" ||
  { echo "a failed write replaced the earlier run's samples.jsonl or summary.json" >&2; exit 1; }
rmdir "$D/short/summary.json.tmp"
"$B/sampler/cgsample" "$@" sample.out_dir="$D/short" sample.max_new_tokens=25 sample.seed=4 log.level=info \
  >"$D/rerun.log" 2>&1
grep -q "resuming: 8 of 8 sequences" "$D/rerun.log" || { cat "$D/rerun.log" >&2; exit 1; }
# A stop signal while the outputs replace an earlier run's (CG_TEST_SIGNAL_IN_SAMPLE_COMMIT raises SIGTERM once
# samples.jsonl and summary.json are in place, before cifs/ is) waits until all are: the folder then holds the new
# samples.jsonl with its own CIFs (not the earlier run's cifs/ beside them, which cgeval read as these samples') and
# no journal, and cgsample dies of the signal (143).
cp -r "$D/on" "$D/commit"
rc=0
CG_TEST_SIGNAL_IN_SAMPLE_COMMIT=15 "$B/sampler/cgsample" "$@" sample.out_dir="$D/commit" sample.max_new_tokens=300 \
  sample.seed=4 2>"$D/commit.err" || rc=$?
[ "$rc" -eq 143 ] && grep -q "cgsample: signal 15 came while the outputs replaced the earlier ones; they are whole" \
  "$D/commit.err" || { echo "cgsample with a SIGTERM in its commit exited $rc (not 143) or said nothing" >&2
  cat "$D/commit.err" >&2; exit 1; }
"$B/sampler/cgsample" "$@" sample.out_dir="$D/commit_ref" sample.max_new_tokens=300 sample.seed=4
[ -n "$(ls "$D/commit_ref/cifs")" ] || { echo "no CIF to compare in $D/commit_ref/cifs" >&2; exit 1; }
cmp "$D/commit/samples.jsonl" "$D/commit_ref/samples.jsonl" && diff -r "$D/commit/cifs" "$D/commit_ref/cifs" &&
  [ ! -e "$D/commit/.cgsample.journal.jsonl" ] ||
  { echo "a SIGTERM while the outputs were replaced left them half old, half new" >&2; exit 1; }
# The checks below read the seed-3 samples.
"$B/sampler/cgsample" "$@" sample.out_dir="$D/short" sample.max_new_tokens=25
"$B/sampler/cgsample" "$@" sample.out_dir="$D/infill" sample.task=infill sample.max_new_tokens=8
# Unconstrained infill as the reference samples it: at most 10 new tokens, the answer their first line.
"$B/sampler/cgsample" "$@" sample.out_dir="$D/infill_off" sample.task=infill sample.max_new_tokens=40 \
  sample.constrained=false
# The space group by its symbol at tp 1, by its number at tp 2: the same prompts, so the same greedy texts.
"$B/sampler/cgsample" "$@" sample.out_dir="$D/greedy1" sample.max_new_tokens=80 sample.temperature=0 \
  sample.formula=NaCl sample.spacegroup=Fm-3m
"$B/sampler/cgeval" model.hf_dir="$D/hf" data.tokenizer="$D/shards/tokenizer.model" model.device=cpu log.level=warn \
  eval.input="$D/on" eval.train_csv="" eval.ref_csv="" eval.invariance=true eval.invariance_crystals=4 >/dev/null
"$B/sampler/cgeval" log.level=warn eval.input="$D/greedy1" eval.train_csv="" eval.ref_csv="" >/dev/null
# Without sample.out_dir and eval.input, the samples and their report follow train.run_dir (not runs/tiny/samples,
# whatever the run): cgsample writes the same samples into <train.run_dir>/samples as into a folder given, and cgeval
# with the same overrides reads them there. Before any cgsample of that run, cgeval names the folder it looked for.
"$B/sampler/cgsample" "$@" train.run_dir="$D/own_run" sample.max_new_tokens=25
"$B/sampler/cgeval" "$@" train.run_dir="$D/own_run" eval.train_csv= eval.ref_csv= >/dev/null
cmp "$D/own_run/samples/samples.jsonl" "$D/short/samples.jsonl" && [ -f "$D/own_run/samples/eval/report.json" ] ||
  { echo "cgsample and cgeval with train.run_dir=$D/own_run did not use $D/own_run/samples" >&2; exit 1; }
grep -q '"total": 8' "$D/own_run/samples/eval/report.json" || { cat "$D/own_run/samples/eval/report.json" >&2; exit 1; }
if "$B/sampler/cgeval" "$@" train.run_dir="$D/unsampled" 2>"$D/unsampled.err"; then
  echo "cgeval evaluated a run that has no samples" >&2; exit 1; fi
grep -q "eval.input is empty, so cgeval reads the samples cgsample writes with this config, in $D/unsampled/samples \
(<train.run_dir>/samples), which does not exist; run cgsample with the same config and overrides first" \
  "$D/unsampled.err" || { cat "$D/unsampled.err" >&2; exit 1; }
"$B/sampler/cgsample" "$@" sample.out_dir="$D/rows" sample.max_new_tokens=40 sample.conditions_from=data.test_csv \
  sample.condition_on=[formula,spacegroup,band_gap] data.test_csv=data/mp20/test.csv.gz
"$B/sampler/cgeval" log.level=warn eval.input="$D/rows" eval.train_csv="" eval.ref_csv="" >/dev/null
"$B/sampler/cgeval" log.level=warn eval.input="$D/infill" eval.train_csv="" eval.ref_csv="" >/dev/null
# A missing input: said so, and no <input>.eval folder left behind.
if "$B/sampler/cgeval" eval.input="$D/nofile.jsonl" eval.train_csv="" eval.ref_csv="" 2>"$D/nofile.err" >&2; then
  echo "cgeval read a missing input" >&2; exit 1; fi
grep -q "nofile.jsonl' does not exist" "$D/nofile.err"
[ ! -e "$D/nofile.jsonl.eval" ] || { echo "cgeval left $D/nofile.jsonl.eval" >&2; exit 1; }
# An input with nothing in it (a CSV of its header alone): refused, no folder left.
zcat data/mp20/test.csv.gz | head -1 > "$D/header_only.csv"
if "$B/sampler/cgeval" eval.input="$D/header_only.csv" eval.train_csv="" eval.ref_csv="" 2>"$D/empty.err" >&2; then
  echo "cgeval scored an empty CSV" >&2; exit 1; fi
grep -q "holds nothing to evaluate" "$D/empty.err"
[ ! -e "$D/header_only.csv.eval" ] || { echo "cgeval left $D/header_only.csv.eval" >&2; exit 1; }
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/both" sample.conditions_from=data.test_csv sample.formula=NaCl \
    2>"$D/both.err"; then echo "conditions_from with sample.formula must be refused" >&2; exit 1; fi
grep -q "does not combine with the fixed" "$D/both.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.formula=nacl 2>"$D/bad.err"; then
  echo "a formula that is not one must be refused" >&2; exit 1; fi
grep -q "sample.formula=nacl is not a formula" "$D/bad.err"
# Checks of the config alone come before any file is read: a bad formula is said, not the missing tokenizer or model
# (nor anything slower on a 70B run); so are infill without a test split and a condition CSV key that is empty.
for missing in data.tokenizer="$D/no.model" model.hf_dir="$D/nohf"; do
  if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.formula=nacl "$missing" 2>"$D/bad.err"; then
    echo "a formula that is not one must be refused" >&2; exit 1; fi
  grep -q "sample.formula=nacl is not a formula" "$D/bad.err" ||
    { echo "with $missing, a bad formula is not what was said first:" >&2; cat "$D/bad.err" >&2; exit 1; }
done
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.task=infill data.test_csv= data.tokenizer="$D/no.model" \
    2>"$D/bad.err"; then echo "infill without data.test_csv must be refused" >&2; exit 1; fi
grep -q "sample.task=infill masks elements of the crystals of data.test_csv, which is empty" "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.task=infill sample.min_new_tokens=10 2>"$D/bad.err"; then
  echo "infill with more new tokens held than its answer takes must be refused" >&2; exit 1; fi
grep -q "sample.min_new_tokens=10 with sample.task=infill: an infill answer is the first line of at most 10 new" \
  "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.conditions_from=data.val_csv data.val_csv= \
    model.hf_dir="$D/nohf" 2>"$D/bad.err"; then echo "conditions_from naming an empty key must be refused" >&2; exit 1
fi
grep -q "sample.conditions_from=data.val_csv names a key that is empty in this config" "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.task=infill sample.spacegroup=225 2>"$D/bad.err"; then
  echo "infill with a condition must be refused" >&2; exit 1; fi
grep -q "sample.task=infill asks for a masked element" "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.task=infill data.test_csv= 2>"$D/bad.err"; then
  echo "infill without data.test_csv must be refused" >&2; exit 1; fi
grep -q "sample.task=infill masks elements of the crystals of data.test_csv, which is empty" "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.conditions_from=data.val_csv data.val_csv= \
    2>"$D/bad.err"; then echo "conditions_from naming an empty key must be refused" >&2; exit 1; fi
grep -q "sample.conditions_from=data.val_csv names a key that is empty in this config: set data.val_csv" "$D/bad.err"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.task=infill data.test_csv="$D/header_only.csv" \
    2>"$D/bad.err"; then echo "infill of a test split without rows must be refused" >&2; exit 1; fi
grep -q "sample.task=infill: data.test_csv $D/header_only.csv holds no crystal that reads (0 data rows)" "$D/bad.err"
# A CIF folder with one CIF that does not read: scored without it, and the log names the file and why.
mkdir -p "$D/mixed"
cp "$(ls "$D"/on/cifs/*.cif | head -1)" "$D/mixed/good.cif"
printf 'data_broken\n_cell_length_a 3\n' > "$D/mixed/broken.cif"
"$B/sampler/cgeval" eval.input="$D/mixed" eval.train_csv="" eval.ref_csv="" eval.spacegroups=false >"$D/mixed.log" 2>&1
grep -q "1 of 2 CIF blocks in $D/mixed did not read" "$D/mixed.log"
grep -q "CIF block [01]: broken" "$D/mixed.log"
# Conditions from rows: a CSV of no rows says so; rows whose formula cell is not a formula state the formula derived
# from their structure instead (as cgprep's prompts do), counted, the first named, none left out.
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/bad" sample.conditions_from="$D/header_only.csv" \
    2>"$D/bad.err"; then echo "conditions from a CSV without rows must be refused" >&2; exit 1; fi
grep -q "no row of $D/header_only.csv (0 data rows) has all of sample.condition_on \[formula, spacegroup\]" "$D/bad.err"
python3 - "$D/odd_rows.csv" <<'PY'
import csv, gzip, sys
with gzip.open("data/mp20/test.csv.gz", "rt", newline="") as f:
    rows = list(csv.DictReader(f))[:3]
for r in rows[:2]:
    r["pretty_formula"] = "xx2"
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
PY
"$B/sampler/cgsample" "$@" sample.out_dir="$D/odd" sample.conditions_from="$D/odd_rows.csv" sample.num_samples=2 \
  sample.max_new_tokens=25 2>"$D/odd.err" >&2
grep -q "2 row(s) of $D/odd_rows.csv have a formula cell that is not a formula or not the composition of their structure; their prompts state the formula derived from the structure instead (the first: mp-[0-9]*: 'xx2' is not a formula such as Fe2O3; [A-Z][A-Za-z0-9]* stated instead)" \
  "$D/odd.err"
if grep -q "rows left out" "$D/odd.err"; then echo "rows with a formula cell that is not one were left out" >&2; exit 1; fi
if grep -q "formula is xx2" "$D/odd/samples.jsonl"; then echo "a prompt states formula xx2" >&2; exit 1; fi
if "$B/sampler/cgeval" "$@" eval.input="$D/on" eval.out="$D/inv_eval" eval.invariance=true data.test_csv= \
    2>"$D/inv.err"; then echo "the invariance check ran without a test split" >&2; exit 1; fi
grep -q "eval.invariance=true scores crystals of data.test_csv, which is empty: set data.test_csv" "$D/inv.err"
# References that do not exist, or hold nothing that reads: refused, naming the key (every crystal would be novel).
if "$B/sampler/cgeval" "$@" eval.input="$D/on" eval.out="$D/ref_eval" eval.train_csv="$D/nosuch.csv" \
    2>"$D/ref1.err"; then echo "a missing novelty reference was accepted" >&2; exit 1; fi
grep -q "eval.train_csv: $D/nosuch.csv does not exist from" "$D/ref1.err"
printf 'material_id,cif\n' > "$D/header_only.csv"
if "$B/sampler/cgeval" "$@" eval.input="$D/on" eval.out="$D/ref_eval" eval.ref_csv="$D/header_only.csv" \
    2>"$D/ref2.err"; then echo "an empty distribution reference was accepted" >&2; exit 1; fi
grep -q "eval.ref_csv $D/header_only.csv holds no crystal that reads (0 rows skipped)" "$D/ref2.err"
# The cifs/ of a run (its parsed samples only): evaluated, with a warning pointing at the run folder.
"$B/sampler/cgeval" "$@" eval.input="$D/on/cifs" eval.out="$D/cifs_eval" eval.train_csv= eval.ref_csv= 2>"$D/cifs.err"
grep -q "is the cifs/ folder of a cgsample run, which holds its parsed samples only" "$D/cifs.err"
# A folder whose cifs/ no cgsample wrote (no samples.jsonl): refused, the user's CIF left where it was.
mkdir -p "$D/mine/cifs"
echo "data_mine" > "$D/mine/cifs/mine.cif"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/mine" sample.max_new_tokens=25 2>"$D/mine.err"; then
  echo "cgsample replaced a cifs/ folder it did not write" >&2; exit 1; fi
grep -q "holds cifs/ but no samples.jsonl, so no earlier cgsample wrote it" "$D/mine.err"
grep -q "data_mine" "$D/mine/cifs/mine.cif"
# Loose CIFs (a folder of structures, as cgeval reads them): refused too, left as they were.
mkdir -p "$D/loose"
echo "data_loose" > "$D/loose/a.CIF"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/loose" sample.max_new_tokens=25 2>"$D/loose.err"; then
  echo "cgsample wrote into a folder of CIFs" >&2; exit 1; fi
grep -q "holds CIF files (a.CIF ...) but no samples.jsonl" "$D/loose.err"
[ "$(ls "$D/loose")" = "a.CIF" ]
# cgprep's shards folder and a cgtrain run's folder: refused, naming what they are, nothing written there.
mkdir -p "$D/shards_like" "$D/run_like/checkpoints"
echo "{}" > "$D/shards_like/cgprep_config.yaml"
for f in shards_like run_like; do
  if "$B/sampler/cgsample" "$@" sample.out_dir="$D/$f" sample.max_new_tokens=25 2>"$D/$f.err"; then
    echo "cgsample wrote into $f" >&2; exit 1; fi
  [ ! -e "$D/$f/samples.jsonl" ]
done
grep -q "sample.out_dir $D/shards_like holds cgprep_config.yaml, so it is cgprep's shards folder: give a folder" \
  "$D/shards_like.err"
grep -q "sample.out_dir $D/run_like holds checkpoints, so it is a cgtrain run's folder" "$D/run_like.err"
# A folder another cgsample is writing into (its lock held): refused, nothing written.
if command -v flock >/dev/null; then
  mkdir -p "$D/busy"
  if flock "$D/busy/.cgsample.lock" "$B/sampler/cgsample" "$@" sample.out_dir="$D/busy" sample.max_new_tokens=25 \
      2>"$D/busy.err"; then echo "cgsample wrote into a folder another cgsample holds" >&2; exit 1; fi
  grep -q "is being written by another cgsample, or evaluated by a cgeval" "$D/busy.err"
  [ ! -e "$D/busy/samples.jsonl" ] || { echo "cgsample wrote into a locked folder" >&2; exit 1; }
  # cgeval of a folder a cgsample is writing (its lock held): refused, no report made.
  cp "$D/on/samples.jsonl" "$D/busy/"
  if flock "$D/busy/.cgsample.lock" "$B/sampler/cgeval" "$@" eval.input="$D/busy" eval.train_csv= eval.ref_csv= \
      2>"$D/busy_eval.err"; then echo "cgeval read a folder a cgsample holds" >&2; exit 1; fi
  grep -q "is being written by a cgsample right now" "$D/busy_eval.err"
  [ ! -e "$D/busy/eval" ] || { echo "cgeval wrote into a locked folder" >&2; exit 1; }
fi
# An energy or band gap asked of an adapter trained on CIF files alone (cgprep derives their formula and space group,
# nothing else, so no training prompt stated one): warned, before the model is loaded (this adapter folder holds
# only what the warning reads, so the load then fails). Formula and space group alone: no warning.
mkdir -p "$D/cifrun/ck" "$D/cifs_only" "$D/cifad"
printf 'data:\n  train_csv: %s\n' "$D/cifs_only" > "$D/cifrun/ck/config.yaml"
printf '{"checkpoint": "%s", "run_dir": "%s"}\n' "$D/cifrun/ck" "$D/cifrun" > "$D/cifad/cgtrain_source.json"
cp "$D/shards/tokenizer.model" "$D/cifad/"
"$B/sampler/cgsample" "$@" sample.adapter="$D/cifad" sample.formula=NaCl sample.band_gap=1.5 \
  sample.out_dir="$D/cifad_out" 2>"$D/cifad.err" || true
grep -q "but sample.adapter $D/cifad was trained on CIF files ($D/cifs_only: data.train_csv of its run)" "$D/cifad.err"
"$B/sampler/cgsample" "$@" sample.adapter="$D/cifad" sample.formula=NaCl sample.spacegroup=225 \
  sample.out_dir="$D/cifad_out" 2>"$D/cifad_fs.err" || true
grep -q "sample.adapter" "$D/cifad_fs.err"  # it did get as far as the adapter
if grep -q "trained on CIF files" "$D/cifad_fs.err"; then echo "warned of formula and space group" >&2; exit 1; fi
"$B/sampler/cgsample" "$@" sample.adapter="$D/cifad" sample.out_dir="$D/cifad_out" 2>"$D/cifad_unc.err" || true
if grep -q "trained on CIF files" "$D/cifad_unc.err"; then echo "warned without conditions" >&2; exit 1; fi
# With the training_data record cgtrain writes into every step folder: the conditions its data never carried are
# named, wherever the data went (a formula is stated only beside another property that was carried).
mkdir -p "$D/recad"
printf '{"source_path": "/gone/data.csv", "property_counts": {"crystals": 7, "formula": 7, "spacegroup": 0, %s}}\n' \
  '"formation_energy": 7, "band_gap": 0, "e_above_hull": 0' > "$D/recad/training_data.json"
cp "$D/shards/tokenizer.model" "$D/recad/"
"$B/sampler/cgsample" "$@" sample.adapter="$D/recad" sample.formula=NaCl sample.spacegroup=225 sample.band_gap=1.5 \
  sample.out_dir="$D/recad_out" 2>"$D/recad.err" || true
msg="the training prompts of sample.adapter $D/recad never stated them"
grep -qF "the prompts state band_gap, spacegroup, but $msg (/gone/data.csv, 7 crystals: band_gap 0, spacegroup 0)" \
  "$D/recad.err"
"$B/sampler/cgsample" "$@" sample.adapter="$D/recad" sample.formula=NaCl sample.formation_energy=-1.5 \
  sample.out_dir="$D/recad_out" 2>"$D/recad_ok.err" || true
if grep -q "never stated" "$D/recad_ok.err"; then echo "warned of carried properties" >&2; exit 1; fi
# Formula and band gap of a model whose data carried formulas alone: the formula was never stated either.
printf '{"property_counts": {"crystals": 3, "formula": 3, "spacegroup": 0, "formation_energy": 0, "band_gap": 0, %s}}\n' \
  '"e_above_hull": 0' > "$D/recad/training_data.json"
"$B/sampler/cgsample" "$@" sample.adapter="$D/recad" sample.formula=NaCl sample.band_gap=1.5 \
  sample.out_dir="$D/recad_out" 2>"$D/recad_f.err" || true
grep -qF "the prompts state band_gap, formula, but $msg (its train split, 3 crystals: band_gap 0, formula 3; a formula \
is stated only beside another property)" "$D/recad_f.err"
# A count that is no number (a record of another making): no warning of it, and no failure before the model load.
printf '{"property_counts": {"crystals": 3, "band_gap": "x"}}\n' > "$D/recad/training_data.json"
"$B/sampler/cgsample" "$@" sample.adapter="$D/recad" sample.formula=NaCl sample.band_gap=1.5 \
  sample.out_dir="$D/recad_out" 2>"$D/recad_x.err" || true
if grep -q "never stated" "$D/recad_x.err"; then echo "warned of a count that is no number" >&2; exit 1; fi
grep -q "sample.adapter" "$D/recad_x.err"  # it went on to the adapter
# A record of shards from an older cgprep (no counts) that names a CIF folder as their source: the folder is read.
printf '{"source_path": "%s", "property_counts": null}\n' "$D/cifs_only" > "$D/recad/training_data.json"
"$B/sampler/cgsample" "$@" sample.adapter="$D/recad" sample.formula=NaCl sample.band_gap=1.5 \
  sample.out_dir="$D/recad_out" 2>"$D/recad_src.err" || true
grep -qF "but sample.adapter $D/recad was trained on CIF files ($D/cifs_only: the source its record names)" \
  "$D/recad_src.err"
# Infill prompts in another site order than the model's training text: refused before the model loads, naming the
# setting; the order is the one the train shards its training_data record names hold (made above with cgprep's
# default, pymatgen), else data.site_order of its run's config.yaml. The same order goes on to the adapter.
mkdir -p "$D/orderad" "$D/orderrun/ck"
printf '{"shards_dir": "%s"}\n' "$D/shards" > "$D/orderad/training_data.json"
cp "$D/shards/tokenizer.model" "$D/orderad/"
if "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill data.site_order=file \
    sample.out_dir="$D/order_out" 2>"$D/order.err"; then
  echo "infill in another site order than the run's" >&2; exit 1; fi
grep -qF "but sample.adapter $D/orderad was trained on text in pymatgen's order ($D/shards/train-00000.h5 records \
text.site_order pymatgen): its prompts would list the sites as it never saw them; set data.site_order=pymatgen" \
  "$D/order.err" || { cat "$D/order.err" >&2; exit 1; }
[ ! -e "$D/order_out" ] || { echo "a refused infill left $D/order_out" >&2; exit 1; }
"$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill sample.out_dir="$D/order_out" \
  2>"$D/order_ok.err" || true
if grep -q "site_order" "$D/order_ok.err"; then echo "refused infill in the run's own site order" >&2; exit 1; fi
grep -q "sample.adapter" "$D/order_ok.err"  # it went on to the adapter
# data.angle_mode the same way (the shards record text.angle_mode round, cgprep's default); two settings that differ
# are named in one error. Generation prompts carry no crystal text: there neither setting is compared.
if "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill data.angle_mode=truncate \
    sample.out_dir="$D/order_out" 2>"$D/angle.err"; then
  echo "infill with other angles than the run's" >&2; exit 1; fi
grep -qF "with their angles made integers by data.angle_mode=truncate, but sample.adapter $D/orderad was trained on \
text with its angles made integers by round ($D/shards/train-00000.h5 records text.angle_mode round): its prompts \
would state angles as it never saw them (89.6 is 90 by round, 89 by truncate); set data.angle_mode=round" \
  "$D/angle.err" || { cat "$D/angle.err" >&2; exit 1; }
if grep -q "site_order" "$D/angle.err"; then echo "site_order named though it is the run's" >&2; exit 1; fi
if "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill data.angle_mode=truncate \
    data.site_order=file sample.out_dir="$D/order_out" 2>"$D/both_text.err"; then
  echo "infill with other angles and site order than the run's" >&2; exit 1; fi
grep -qF "set data.site_order=pymatgen; and sample.task=infill would write" "$D/both_text.err" &&
  grep -qF "set data.angle_mode=round" "$D/both_text.err" || { cat "$D/both_text.err" >&2; exit 1; }
# cgeval's invariance check writes the test crystals the same way: refused in another site order or angle mode than
# the training text's, before the model loads (no report); in the run's own it goes on to the adapter.
if "$B/sampler/cgeval" "$@" sample.adapter="$D/orderad" eval.input="$D/on" eval.out="$D/inv_order" eval.train_csv= \
    eval.ref_csv= eval.invariance=true eval.invariance_crystals=2 data.site_order=file data.angle_mode=truncate \
    2>"$D/inv_order.err"; then echo "an invariance check in another site order and angle mode than the run's" >&2
  exit 1; fi
grep -qF "eval.invariance=true would write the crystals of data.test_csv with their sites in data.site_order=file's \
order, but sample.adapter $D/orderad was trained on text in pymatgen's order ($D/shards/train-00000.h5 records \
text.site_order pymatgen): the texts it scores would list the sites as it never saw them; set data.site_order=pymatgen" \
  "$D/inv_order.err" && grep -qF "set data.angle_mode=round" "$D/inv_order.err" || { cat "$D/inv_order.err" >&2; exit 1; }
[ ! -e "$D/inv_order" ] || { echo "a refused invariance check left $D/inv_order" >&2; exit 1; }
"$B/sampler/cgeval" "$@" sample.adapter="$D/orderad" eval.input="$D/on" eval.out="$D/inv_order" eval.train_csv= \
  eval.ref_csv= eval.invariance=true eval.invariance_crystals=2 2>"$D/inv_order_ok.err" || true
if grep -q "angle_mode\|site_order" "$D/inv_order_ok.err"; then
  echo "refused an invariance check in the run's own text settings" >&2; cat "$D/inv_order_ok.err" >&2; exit 1; fi
grep -q "sample.adapter" "$D/inv_order_ok.err"  # it went on to the adapter
for task in "sample.task=generate" "sample.conditions_from=data.test_csv sample.condition_on=[formula]"; do
  # shellcheck disable=SC2086
  "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" $task data.angle_mode=truncate data.site_order=file \
    data.test_csv=data/mp20/test.csv.gz sample.out_dir="$D/order_out" 2>"$D/gen_text.err" || true
  if grep -q "angle_mode\|site_order" "$D/gen_text.err"; then
    echo "$task compared text settings its prompts do not use" >&2; cat "$D/gen_text.err" >&2; exit 1; fi
  grep -q "sample.adapter" "$D/gen_text.err"  # it went on to the adapter
done
rm "$D/orderad/training_data.json"
printf 'data:\n  site_order: file\n' > "$D/orderrun/ck/config.yaml"
printf '{"checkpoint": "%s", "run_dir": "%s"}\n' "$D/orderrun/ck" "$D/orderrun" > "$D/orderad/cgtrain_source.json"
if "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill sample.out_dir="$D/order_out" \
    2>"$D/order_cfg.err"; then echo "infill in another site order than the run's config" >&2; exit 1; fi
grep -qF "was trained on text in file's order (its run's config.yaml has data.site_order file): its prompts" \
  "$D/order_cfg.err" || { cat "$D/order_cfg.err" >&2; exit 1; }
printf 'data:\n  site_order: file\n  angle_mode: truncate\n' > "$D/orderrun/ck/config.yaml"
if "$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill data.site_order=file \
    sample.out_dir="$D/order_out" 2>"$D/angle_cfg.err"; then echo "infill with other angles than the run's config" >&2
  exit 1; fi
grep -qF "text with its angles made integers by truncate (its run's config.yaml has data.angle_mode truncate): its" \
  "$D/angle_cfg.err" || { cat "$D/angle_cfg.err" >&2; exit 1; }
"$B/sampler/cgsample" "$@" sample.adapter="$D/orderad" sample.task=infill data.site_order=file \
  data.angle_mode=truncate sample.out_dir="$D/order_out" 2>"$D/angle_cfg_ok.err" || true
if grep -q "angle_mode" "$D/angle_cfg_ok.err"; then echo "refused infill in the run's own angles" >&2; exit 1; fi
grep -q "sample.adapter" "$D/angle_cfg_ok.err"
# A broken config.json in model.hf_dir: the error names the file and the field.
mkdir -p "$D/badhf"
printf '{"hidden_size": "64"}' > "$D/badhf/config.json"
if "$B/sampler/cgsample" "$@" model.hf_dir="$D/badhf" sample.out_dir="$D/badhf_out" 2>"$D/badhf.err"; then
  echo "cgsample read a broken config.json" >&2; exit 1; fi
grep -qF "$D/badhf/config.json: \"hidden_size\" is \"64\", not an integer" "$D/badhf.err" ||
  { cat "$D/badhf.err" >&2; exit 1; }
# A run that fails before it writes anything (a base that is not there) leaves no folder behind.
if "$B/sampler/cgsample" "$@" model.hf_dir="$D/no_such_hf" sample.out_dir="$D/never" 2>"$D/never.err"; then
  echo "cgsample ran without its base" >&2; exit 1; fi
[ ! -e "$D/never" ] || { echo "a failed cgsample left $D/never" >&2; ls -A "$D/never" >&2; exit 1; }
# Into a cgtrain run's checkpoints folder, where rotation would delete the samples: refused before anything is made.
mkdir -p "$D/run/checkpoints/step-3"; touch "$D/run/config.yaml" "$D/run/model_config.json"
if "$B/sampler/cgsample" "$@" sample.out_dir="$D/run/checkpoints/step-3/s" 2>"$D/ck.err"; then
  echo "cgsample wrote into a checkpoint folder" >&2; exit 1; fi
grep -q "is inside $D/run/checkpoints, a cgtrain run's checkpoints folder" "$D/ck.err"
[ ! -e "$D/run/checkpoints/step-3/s" ]
# A folder named checkpoints in a project of one's own (a config.yaml beside it, but no cgtrain run) is fine.
mkdir -p "$D/proj"; touch "$D/proj/config.yaml"
"$B/sampler/cgsample" "$@" sample.out_dir="$D/proj/checkpoints/s" sample.num_samples=2 sample.max_new_tokens=20
# A second run into a used folder: its CIFs and report are this run's only.
cp -r "$D/on" "$D/again"
test -f "$D/again/eval/report.json"
"$B/sampler/cgeval" log.level=warn eval.input="$D/again/samples.jsonl" eval.train_csv="" eval.ref_csv="" >/dev/null
test -f "$D/again/samples.jsonl.eval/report.json"
"$B/sampler/cgsample" "$@" sample.out_dir="$D/again" sample.max_new_tokens=25
test ! -e "$D/again/eval"
test ! -e "$D/again/samples.jsonl.eval"
# Stopped while sampling (SIGTERM, as a scheduler's): it says that nothing of this run was written and dies of the
# signal; the earlier run's files stay as they were.
sum_before=$(md5sum < "$D/again/samples.jsonl")
"$B/sampler/cgsample" "$@" sample.out_dir="$D/again" sample.num_samples=100000 log.level=info 2>"$D/stop.err" &
pid=$!
# Sampling: up to 120 s for the ranks to start on a loaded machine (the loop ends as soon as they do).
for _ in $(seq 1200); do grep -q "100000 generate prompts on" "$D/stop.err" && break; sleep 0.1; done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 143 ] || { echo "cgsample stopped by SIGTERM exited $rc, not 143" >&2; cat "$D/stop.err" >&2; exit 1; }
grep -q "cgsample: stopped by signal 15; [0-9]* of 100000 sequences are kept in sample.out_dir's .cgsample.journal.jsonl" "$D/stop.err" \
  || { echo "no word of what a stop keeps" >&2; cat "$D/stop.err" >&2; exit 1; }
[ "$(md5sum < "$D/again/samples.jsonl")" = "$sum_before" ]
rm -f "$D/again/.cgsample.journal.jsonl"
# Stopped after some sequences, then run again: it goes on from the journal, and writes what an unstopped run writes,
# byte for byte.
"$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/whole"
"$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/stopped" 2>"$D/stopped.err" &
stop_when_journaled $! TERM 8 "$D/stopped/.cgsample.journal.jsonl"
kept=$(journaled "$D/stopped/.cgsample.journal.jsonl")
if [ "$kept" -lt 8 ] || [ "$kept" -ge 64 ] || [ -e "$D/stopped/samples.jsonl" ]; then
  echo "the stop kept $kept sequences (expected 8 or more, not all)" >&2; cat "$D/stopped.err" >&2; exit 1; fi
# A line no run of this key wrote (a token id past the vocabulary) is not read: that sequence is drawn again.
echo '{"i": 63, "eos": true, "tokens": [99999999]}' >> "$D/stopped/.cgsample.journal.jsonl"
# The base named another way (a trailing /) is the same weights: resumed.
"$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/stopped" model.hf_dir="$D/hf/" log.level=info 2>"$D/resumed.err"
grep -q "cgsample: resuming: $kept of 64 sequences from $D/stopped/.cgsample.journal.jsonl" "$D/resumed.err"
cmp "$D/whole/samples.jsonl" "$D/stopped/samples.jsonl"
"$PY" -c "import json; s = json.load(open('$D/stopped/summary.json')); assert s['resumed'] == $kept, s['resumed']"
[ ! -e "$D/stopped/.cgsample.journal.jsonl" ]
# Other settings (another seed): the journal is set aside, with a warning, and every sequence drawn anew.
"$B/sampler/cgsample" "$@" sample.batch_size=1 sample.max_new_tokens=300 sample.out_dir="$D/stopped2" \
  sample.num_samples=16 2>/dev/null
printf '{"key": "0123456789abcdef"}\n{"i": 0, "eos": true, "tokens": [5]}\n' > "$D/stopped2/.cgsample.journal.jsonl"
"$B/sampler/cgsample" "$@" sample.batch_size=1 sample.max_new_tokens=300 sample.out_dir="$D/stopped2" \
  sample.num_samples=16 2>"$D/other.err"
grep -q "is the journal of a stopped run with other settings (model, tokenizer, prompts or sampling): set aside as .cgsample.journal.aside-0123456789ab.jsonl" "$D/other.err"
test -f "$D/stopped2/.cgsample.journal.aside-0123456789ab.jsonl"  # kept for that run
# Other weights at the same path (a model folder written again): another model, whose journal is not this one's.
cp -r "$D/hf" "$D/hfswap"
"$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/swap" model.hf_dir="$D/hfswap" 2>/dev/null &
stop_when_journaled $! TERM 3 "$D/swap/.cgsample.journal.jsonl"
rm -rf "$D/hfswap"; "$B/tests/sampler/write_tiny_hf" "$D/hfswap" "$D/shards/tokenizer.model" 8
"$B/sampler/cgsample" "$@" $RESUME sample.out_dir="$D/swap" model.hf_dir="$D/hfswap" log.level=info 2>"$D/swap.err"
grep -q "set aside as .cgsample.journal.aside-" "$D/swap.err"
if grep -q "resuming" "$D/swap.err"; then echo "another model's journal was resumed" >&2; exit 1; fi

"$PY" - "$D" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
def records(name):
    with open(os.path.join(d, name, "samples.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]
def summary(name):
    with open(os.path.join(d, name, "summary.json")) as f:
        return json.load(f)

again = records("again")
assert sorted(os.listdir(os.path.join(d, "again", "cifs"))) == sorted(r["id"] + ".cif" for r in again if r["parsed"])

on, s_on = records("on"), summary("on")
assert len(on) == 8 == s_on["num_samples"], s_on
parsed = [r for r in on if r["parsed"]]
assert s_on["parsed"] == len(parsed) and abs(s_on["parse_rate"] - len(parsed) / 8) < 1e-9, s_on
assert len(parsed) >= 1, [r["reason"] for r in on]
cifs = sorted(os.listdir(os.path.join(d, "on", "cifs")))
assert cifs == sorted(r["id"] + ".cif" for r in parsed), cifs
for r in on:  # with the grammar, a sample fails only by running out of tokens
    assert r["parsed"] or r["reason"] == "no EOS within sample.max_new_tokens", r
for c in cifs:
    text = open(os.path.join(d, "on", "cifs", c)).read()
    assert "_cell_length_a" in text and "_atom_site_fract_x" in text, text[:200]
assert s_on["crystals_per_s"] > 0 and s_on["constrained"] is True
# Decode accounting: every sampled token (EOS included) came from a sequence's prefill (its first) or from a row of
# a decode step, so decode rows = tokens + EOS - samples; at most batch_size rows a step; every row attends to at
# least one position; the 8 identical prompts are one shared prefix (computed once more).
assert s_on["decode_rows"] == s_on["tokens"] + s_on["hit_eos"] - 8, s_on
assert s_on["decode_steps"] * 4 >= s_on["decode_rows"] and s_on["prefill_passes"] >= 3, s_on
assert s_on["cache_positions_needed"] >= s_on["decode_rows"] and s_on["cache_positions_read"] > 0, s_on
assert s_on["shared_prefix"] >= 8, s_on
try:  # readable by pymatgen and ASE (Debian's python3-pymatgen / python3-ase, installed by scripts/install.sh)
    import warnings
    warnings.filterwarnings("ignore")
    from pymatgen.core import Structure
    import ase.io
    have_pmg = True
except ImportError:
    have_pmg = False
    print("pymatgen/ASE not installed: their reading of the CIFs is not checked")
def real_cell(path):  # the random micro model can write angles no cell has (e.g. 10 10 170): ASE refuses those
    import math
    ang = {}
    for line in open(path):
        for k in ("alpha", "beta", "gamma"):
            if line.startswith("_cell_angle_" + k):
                ang[k] = math.radians(float(line.split()[1]))
    ca, cb, cg = (math.cos(ang[k]) for k in ("alpha", "beta", "gamma"))
    return 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg > 1e-6
if have_pmg:
    checked = 0
    for c in cifs:
        path = os.path.join(d, "on", "cifs", c)
        if not real_cell(path):
            continue
        s, a = Structure.from_file(path), ase.io.read(path)
        assert len(s) == len(a) > 0 and abs(s.volume - a.get_volume()) < 1e-3 * s.volume, (c, len(s), len(a))
        checked += 1
    print("pymatgen and ASE read %d of %d CIFs (the others have impossible angles)" % (checked, len(cifs)))

# Cut off at max_new_tokens (no EOS: the record holds every generated token): unparsed, whatever its prefix parses to;
# a parsed sample ended with EOS, i.e. within the limit.
short = records("short")
cut = [r for r in short if r["num_tokens"] == 25]
assert len(cut) >= 1, [r["num_tokens"] for r in short]
for r in cut:
    assert not r["parsed"] and r["reason"] == "no EOS within sample.max_new_tokens" and "crystal" not in r, r
assert all(r["num_tokens"] < 25 for r in short if r["parsed"]), short
assert summary("short")["parsed"] == sum(r["parsed"] for r in short)

s_off = summary("off")
assert s_off["constrained"] is False and 0 <= s_off["parse_rate"] <= 1, s_off
assert s_off["parse_rate"] <= s_on["parse_rate"], (s_off["parse_rate"], s_on["parse_rate"])

infill = records("infill")
assert len(infill) == 8 and all(r["parsed"] and r["element"] for r in infill), infill
assert "infill_accuracy" in summary("infill")
inf = json.load(open(os.path.join(d, "infill", "eval", "report.json")))["infill"]
assert inf["items"] == 8 and inf["with_truth"] == 8 and all(r["truth"] for r in infill), inf
assert inf["recovered"] == sum(r["element"] == r["truth"] for r in infill), inf
assert abs(inf["recovered"] / 8 - summary("infill")["infill_accuracy"]) < 1e-9, inf
# Unconstrained infill: 10 new tokens at most (sample.max_new_tokens=40 asked for more), EOS or not, the answer
# the completion's first line (after sentencepiece's leading space) when it is an element symbol.
off = records("infill_off")
assert len(off) == 8 and all(0 < r["num_tokens"] <= 10 for r in off), [r["num_tokens"] for r in off]
assert summary("infill_off")["max_new_tokens"] == 10, summary("infill_off")
for r in off:
    line = (r["text"][1:] if r["text"].startswith(" ") else r["text"]).split("\n")[0]
    if r["parsed"]:
        assert r["element"] == line, r
    else:
        assert r["reason"] == "not an element symbol" and "element" not in r, r

g1 = records("greedy1")
assert "NaCl" in g1[0]["prompt"]
assert summary("greedy1")["conditions"] == {"formula": "NaCl", "spacegroup": 225}, summary("greedy1")
assert summary("on")["conditions"] == {}, summary("on")

# cgeval on the conditioned samples: the formula tally equals one made here from the records.
from collections import Counter
from math import gcd
from functools import reduce
def reduced(species):
    c = Counter(species)
    g = reduce(gcd, c.values())
    return {k: v // g for k, v in c.items()}
cond = json.load(open(os.path.join(d, "greedy1", "eval", "report.json")))["conditions"]
want = sum(1 for r in g1 if r["parsed"] and reduced(r["crystal"]["species"]) == {"Na": 1, "Cl": 1})
assert cond["formula_items"] == 8 and cond["spacegroup_items"] == 8 and cond["formula_match"] == want, (cond, want)

# Conditions drawn from test rows: every prompt states a row's formula, space group and band gap; 8 distinct rows.
import csv, gzip
with gzip.open("data/mp20/test.csv.gz", "rt", newline="") as f:
    test_rows = {(r["pretty_formula"], r["spacegroup.number"], r["band_gap"]) for r in csv.DictReader(f) if r["band_gap"]}
rows = records("rows")
stated = set()
for r in rows:
    p = r["prompt"]
    formula = p.split("The chemical formula is ")[1].split(". ")[0]
    sg = p.split("The spacegroup number is ")[1].split(". ")[0]
    gap = float(p.split("The band gap is ")[1].split(". ")[0])
    assert any(t[0] == formula and t[1] == sg and abs(float(t[2]) - gap) < 5e-5 for t in test_rows), p
    stated.add((formula, sg))
assert len(rows) == 8 and len(stated) == 8, stated
cond = json.load(open(os.path.join(d, "rows", "eval", "report.json")))["conditions"]
assert cond["formula_items"] == 8 and cond["spacegroup_items"] == 8 and cond["property_items"] == 8, cond
assert summary("rows")["condition_on"] == ["formula", "spacegroup", "band_gap"]

rep = json.load(open(os.path.join(d, "on", "eval", "report.json")))
inv = rep["invariance"]
assert inv["crystals"] >= 1 and inv["mean_ll"] < 0, inv
assert inv["translations"] == 4 and inv["mean_ipt"] >= 0, inv
print("cgsample e2e: %d/8 parse with the grammar, %.0f%% without; infill %s; invariance %s" % (
    len(parsed), 100 * s_off["parse_rate"], [r["element"] for r in infill], inv))
PYEOF
