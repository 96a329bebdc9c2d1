#!/bin/bash
# Errors every rank of `mpirun -np 3 cgtrain` meets alike after the config's first files (those are
# cgtrain_input_file_error_once_np3): the base's weights as they load and the checkpoint a relaunch resumes. Each is
# printed once, by rank 0 (cg::InputError, dist::run_main), not once per rank.
# Arguments: MPIEXEC CGTRAIN TINY.yaml CGPREP TRAIN.csv.gz WRITE_TINY_HF
set -u
mpiexec=$1 cgtrain=$2 cfg=$3 cgprep=$4 csv=$5 write_hf=$6
s=$(mktemp -d) && trap 'rm -rf "$s"' EXIT
"$cgprep" data.max_rows=30 data.tokenizer_vocab_size=400 data.shards_dir="$s/shards" data.train_csv="$csv" \
  data.val_csv= data.test_csv= >"$s/prep.log" 2>&1 || { echo "cgprep failed:"; cat "$s/prep.log"; exit 1; }
# Two random bases of the same shapes (seeds 7 and 8), with the shards' vocabulary.
"$write_hf" "$s/hfa" "$s/shards/tokenizer.model" 7 && "$write_hf" "$s/hfb" "$s/shards/tokenizer.model" 8 ||
  { echo "write_tiny_hf failed"; exit 1; }
mpi=("$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np 3 "$cgtrain" "$cfg" parallel.tp=1
     data.shards_dir="$s/shards" train.val_every=0 train.micro_batch=1 train.seq_len=256 checkpoint.every=1)
once() {  # words rank 0's one 'fatal:' line must hold, then the overrides
  local want=$1
  shift
  err=$("${mpi[@]}" "$@" 2>&1 >/dev/null)
  rc=$?
  n=$(grep -c "fatal:" <<<"$err")
  [ "$rc" != 0 ] && [ "$n" = 1 ] && grep -qF "[rank 0] fatal: " <<<"$err" && grep -qF -- "$want" <<<"$err" ||
    { echo "cgtrain $* on 3 ranks: rc $rc, $n 'fatal:' lines, expected one from rank 0 with '$want': $err"; exit 1; }
}

# The base's weights as they load (dist::build_llama, after the folder's headers were sampled): a config.json whose
# intermediate_size is not the weights' (the tensors' shapes), and a shard cut short.
cp -r "$s/hfa" "$s/hfshape" && sed -i 's/"intermediate_size": *128/"intermediate_size": 96/' "$s/hfshape/config.json"
grep -q '"intermediate_size": *96' "$s/hfshape/config.json" || { echo "could not edit $s/hfshape/config.json"; exit 1; }
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
# A manifest edited by hand: rank 0 alone verifies the step folders and refuses.
cp -r "$s/run" "$s/run2" && printf '{"magic": ' >"$s/run2/checkpoints/step-1/manifest.json"
once "none can be resumed" train.run_dir="$s/run2" train.steps=2 model.hf_dir="$s/hfa"
exit 0
