#!/bin/bash
# An error every rank of `mpirun cgtrain` meets alike is printed once, by rank 0 (cg::InputError, dist::run_main), not
# once per rank. Two parts, two ctest tests:
#   input_file (cgtrain_input_file_error_once_np3): a file the config names that is missing or broken, read by every
#     rank at the same point (every_rank_alike); and a file rank 0 has and the others lack, said by a rank that lacks
#     it.
#   resume (cgtrain_resume_error_once_np2): what comes after the config's first files: the base's weights as they
#     load and the checkpoint a relaunch resumes. Two ranks show what three would (rank 1 meets each error as rank 0
#     does, and says nothing) in about 5/6 of the time: its 7 launches, 3-5 s each, are mostly the ranks' start-up.
#   export (cgexport_error_once_np2): cgexport under mpirun (a job script that starts each tool on all its tasks):
#     rank 0 alone exports, so an error in its run folder or --out is said once, and no second rank writes into --out.
# Its files go in a folder of its own made in $TEST_TMPDIR (ctest: the build's tests/tmp; else $TMPDIR or /tmp):
# removed when every check passed, kept and named when one failed.
# usage: test_error_once.sh input_file|resume|export MPIEXEC CGTRAIN TINY.yaml CGPREP TRAIN.csv.gz
#          [WRITE_TINY_HF (resume) | CGEXPORT (export)]
set -u
part=$1 mpiexec=$2 cgtrain=$3 cfg=$4 cgprep=$5 csv=$6 write_hf=${7:-} cgexport=${7:-}
case $part in
  input_file) ;;
  resume) [ -n "$write_hf" ] || { echo "the resume part takes WRITE_TINY_HF, the 7th argument"; exit 2; } ;;
  export) [ -n "$cgexport" ] || { echo "the export part takes CGEXPORT, the 7th argument"; exit 2; } ;;
  *) echo "the first argument is the part, input_file, resume or export, not '$part'"; exit 2 ;;
esac
work=${TEST_TMPDIR:-${TMPDIR:-/tmp}}
mkdir -p "$work" && s=$(mktemp -d "$work/error_once_$part.XXXXXX") || exit 1
trap 'if [ $? -eq 0 ]; then rm -rf "$s"; else echo "the files of the checks are kept in $s"; fi' EXIT
"$cgprep" data.max_rows=30 data.tokenizer_vocab_size=400 data.shards_dir="$s/shards" data.train_csv="$csv" \
  data.val_csv= data.test_csv= >"$s/prep.log" 2>&1 || { echo "cgprep failed:"; cat "$s/prep.log"; exit 1; }

source "$(dirname "$0")/../said_once.sh"  # once WANT OVERRIDES...: the launch is "${mpi[@]}"

edit_checked() {  # run folder, file of step-1, sed script of the same length: the manifest's checksum follows
  local f=$1/checkpoints/step-1/$2 old new
  old=$(sha256sum "$f" | cut -d' ' -f1)
  LC_ALL=C sed -i "$3" "$f" && new=$(sha256sum "$f" | cut -d' ' -f1) &&
    [ "$old" != "$new" ] && sed -i "s/$old/$new/" "$1/checkpoints/step-1/manifest.json" ||
    { echo "could not edit $f"; exit 1; }
}
damage_train_state() {  # run folder, rank file: '{' of its train_state becomes '['
  edit_checked "$1" "$2" 's/"train_state":"{/"train_state":"[/'
}

# No tokenizer (data.shards_dir without one), no train shards, a model.hf_dir that does not exist or whose config.json
# is not JSON, no lora.init_adapter. Each rank runs in its own folder, r0 to r2, so that a relative path can name a
# file rank 0 alone has (node-local disks).
input_file_part() {
  mkdir -p "$s/empty" "$s/badhf" "$s/r0" "$s/r1" "$s/r2" && printf '{"hidden_size": 256,' >"$s/badhf/config.json"
  cp "$s/shards/tokenizer.model" "$s/r0/tok.model"
  np=3
  mpi=("$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np $np bash -c 'cd "$0/r$OMPI_COMM_WORLD_RANK" &&
    exec "$@"' "$s" "$cgtrain" "$cfg" parallel.tp=1 train.val_every=0 train.run_dir="$s/run")
  once "tokenizer $s/none/tokenizer.model does not exist" data.shards_dir="$s/none"
  once "no 'train' shards in '$s/empty'" data.shards_dir="$s/empty" data.tokenizer="$s/shards/tokenizer.model"
  once "checkpoint folder $s/nohf does not exist (model.hf_dir)" data.shards_dir="$s/shards" model.hf_dir="$s/nohf"
  once "$s/badhf/config.json is not valid JSON" data.shards_dir="$s/shards" model.hf_dir="$s/badhf"
  # A path std::filesystem cannot look at (a symbolic link to itself): said with the path and what to correct.
  ln -s "$s/loop" "$s/loop" &&
    once "cannot look at $s/loop/tokenizer.model: Too many levels of symbolic links; correct the setting" \
      data.shards_dir="$s/loop"
  # The adapter folder is checked before the base's weights are read (there are none in noweights/).
  mkdir -p "$s/noweights" && printf '{"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_key_value_heads": 4, "num_hidden_layers": 2, "rms_norm_eps": 1e-05, "vocab_size": 512,
    "max_position_embeddings": 512}' >"$s/noweights/config.json"
  once "$s/noadapter/adapter_config.json not found" data.shards_dir="$s/shards" model.hf_dir="$s/noweights" \
    lora.init_adapter="$s/noadapter"
  # A tokenizer rank 0 has and the other ranks lack: said by a rank that lacks it, and by rank 0 as that rank's.
  err=$("${mpi[@]}" data.shards_dir="$s/shards" data.tokenizer=tok.model 2>&1 >/dev/null)
  rc=$?
  # A data.tokenizer given as a path is the user's file: set it right (not 'run cgprep', which does not write it).
  [ "$rc" != 0 ] && grep -qE "^\[rank [12]\] fatal: .*tokenizer tok.model does not exist in $s/r[12] \(relative paths \
are read from the folder cgtrain runs in\): set data.tokenizer to the sentencepiece .model the shards" <<<"$err" &&
    ! grep -qE "^\[rank 0\] fatal: [^ ]+ tokenizer tok.model" <<<"$err" ||
    { echo "a tokenizer only rank 0 has: rc $rc, expected rank 1 or 2 to say it is missing: $err"; exit 1; }
}

resume_part() {
  # Two random bases of the same shapes (seeds 7 and 8), with the shards' vocabulary.
  "$write_hf" "$s/hfa" "$s/shards/tokenizer.model" 7 && "$write_hf" "$s/hfb" "$s/shards/tokenizer.model" 8 ||
    { echo "write_tiny_hf failed"; exit 1; }
  np=2
  mpi=("$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np $np "$cgtrain" "$cfg" parallel.tp=1
       data.shards_dir="$s/shards" train.val_every=0 train.micro_batch=1 train.seq_len=256 checkpoint.every=1)
  # The base's weights as they load (dist::build_llama, after the folder's headers were sampled): a config.json whose
  # intermediate_size is not the weights' (the tensors' shapes), and a shard cut short.
  cp -r "$s/hfa" "$s/hfshape" &&
    sed -i 's/"intermediate_size": *128/"intermediate_size": 96/' "$s/hfshape/config.json"
  grep -q '"intermediate_size": *96' "$s/hfshape/config.json" ||
    { echo "could not edit $s/hfshape/config.json"; exit 1; }
  once "but the model expects" train.run_dir="$s/shape" model.hf_dir="$s/hfshape"
  cp -r "$s/hfa" "$s/hfcut" && truncate -s -100 "$s/hfcut/model.safetensors"
  once "$s/hfcut/model.safetensors is truncated" train.run_dir="$s/cut" model.hf_dir="$s/hfcut"

  # A run of one step on base a, with a checkpoint to resume.
  "${mpi[@]}" train.run_dir="$s/run" model.hf_dir="$s/hfa" train.steps=1 >"$s/train.log" 2>&1 ||
    { echo "the training run failed:"; cat "$s/train.log"; exit 1; }
  [ -f "$s/run/checkpoints/step-1/manifest.json" ] || { echo "no checkpoint step-1:"; cat "$s/train.log"; exit 1; }
  resume=(train.run_dir="$s/run" train.steps=2)
  # Checked on every rank from the checkpoint's own files before the model is built: another base, settings that
  # change the trainable tensors, another train.seed (the loader position).
  once "the trained adapter would sit on another base" "${resume[@]}" model.hf_dir="$s/hfb"
  once "cannot go on with lora.r" "${resume[@]}" model.hf_dir="$s/hfa" lora.r=8
  once "loader state has seed 0, this run 5" "${resume[@]}" model.hf_dir="$s/hfa" train.seed=5
  # A rank file whose train state is damaged where its checksum does not tell (the manifest agrees with it): every
  # rank reads rank-00000's before the model is built, and the line names that file.
  cp -r "$s/run" "$s/run3" && damage_train_state "$s/run3" rank-00000.safetensors
  once "$s/run3/checkpoints/step-1/rank-00000.safetensors: train state is not valid JSON" train.run_dir="$s/run3" \
    train.steps=2 model.hf_dir="$s/hfa"
  # One only rank 1 reads (its own dp replica's) is no error of every rank: rank 1 says it, after run_main's wait for
  # rank 0, and rank 0, still listening for such errors until every rank got through the launch, ends the job with it
  # (without train.val_every's step-0 validation, rank 0 had gone on to train, and rank 1 waited 10 s more).
  cp -r "$s/run" "$s/run4" && damage_train_state "$s/run4" rank-00001.safetensors
  err=$("${mpi[@]}" train.run_dir="$s/run4" train.steps=2 model.hf_dir="$s/hfa" 2>&1 >/dev/null)
  rc=$?
  want="$s/run4/checkpoints/step-1/rank-00001.safetensors: train state is not valid JSON"
  [ "$rc" != 0 ] && grep -qF "[rank 1] fatal: " <<<"$err" && grep -qF "$want" <<<"$err" &&
    grep -qF "[rank 0] fatal: rank 1 failed, ending the job: " <<<"$err" ||
    { echo "rank 1's own damaged rank file: rc $rc, expected rank 1 to say '$want' and rank 0 to end the job: $err"
      exit 1; }
  # A manifest edited by hand: rank 0 alone verifies the step folders and refuses.
  cp -r "$s/run" "$s/run2" && printf '{"magic": ' >"$s/run2/checkpoints/step-1/manifest.json"
  once "none can be resumed" train.run_dir="$s/run2" train.steps=2 model.hf_dir="$s/hfa"
}

# Each of cgexport's errors below was said by every rank (each ran the whole export, and two ranks would write one
# --out). A failed export leaves no --out folder where there was none, and one that was there as it was.
export_part() {
  "$cgtrain" "$cfg" parallel.tp=1 data.shards_dir="$s/shards" train.val_every=0 train.micro_batch=1 \
    train.seq_len=256 train.steps=1 checkpoint.every=1 train.run_dir="$s/run" >"$s/train.log" 2>&1 ||
    { echo "the training run failed:"; cat "$s/train.log"; exit 1; }
  [ -f "$s/run/checkpoints/step-1/manifest.json" ] || { echo "no checkpoint step-1:"; cat "$s/train.log"; exit 1; }
  mpi=("$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$cgexport")
  gone() { [ ! -e "$1" ] || { echo "a failed export left $1: $(ls -la "$1")"; exit 1; }; }
  once "cgexport: $s/none is not a cgtrain run folder" "$s/none" --out "$s/out"
  gone "$s/out"
  once "cgexport: unknown option --bogus; run cgexport --help" "$s/run" --out "$s/out" --bogus
  # A checkpoint whose save did not finish: its manifest (written last) missing.
  cp -r "$s/run" "$s/cut" && rm "$s/cut/checkpoints/step-1/manifest.json"
  once "the newest checkpoint of $s/cut, $s/cut/checkpoints/step-1, is unfinished (it has no manifest.json" \
    "$s/cut" --out "$s/out"
  gone "$s/out"
  once "$s/run has no checkpoint of step 7 (no $s/run/checkpoints/step-7); its checkpoints are of steps 1" \
    "$s/run" --step 7 --out "$s/out"
  # --out a file, a folder that cannot be made (a file on its way), a folder of another tool's files.
  echo "a file" >"$s/file"
  once "cgexport --out = $s/file is a file, not a folder: choose a folder" "$s/run" --out "$s/file"
  once "cgexport --out = $s/file/out: cannot create the folder: Not a directory" "$s/run" --out "$s/file/out"
  once "cgexport: --out $s/shards holds" "$s/run" --out "$s/shards"
  # The checkpoint's config.yaml with a setting this build does not know (a newer cgtrain's, an edit by hand; its
  # manifest agrees).
  cp -r "$s/run" "$s/key" && edit_checked "$s/key" config.yaml '0,/^  steps:/s//  stepz:/'
  once "unknown config key 'train.stepz' (in $s/key/checkpoints/step-1/config.yaml)" "$s/key" --out "$s/out"
  gone "$s/out"

  # Exported once, by rank 0: one 'exported' line, the adapter whole, no staging folder left.
  out=$("${mpi[@]}" "$s/run" --out "$s/out" 2>&1) || { echo "the export under mpirun failed: $out"; exit 1; }
  n=$(grep -c "exported $s/run/checkpoints/step-1 to $s/out" <<<"$out")
  [ "$n" = 1 ] && [ -f "$s/out/adapter_config.json" ] && [ -f "$s/out/adapter_model.safetensors" ] &&
    [ -z "$(ls -A "$s/out" | grep -i 'tmp\|moving')" ] ||
    { echo "the export under mpirun: expected one 'exported' line and the adapter in $s/out: $out; $(ls -A "$s/out")"
      exit 1; }
  # An export that fails into a folder that holds one leaves that one as it was.
  before=$(cd "$s/out" && ls -A && sha256sum *)
  once "unknown config key 'train.stepz'" "$s/key" --out "$s/out"
  [ "$(cd "$s/out" && ls -A && sha256sum *)" = "$before" ] ||
    { echo "a failed export changed the earlier one in $s/out: $(ls -A "$s/out")"; exit 1; }
}

"${part}_part"
exit 0
