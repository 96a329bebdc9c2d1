#!/usr/bin/env bash
# The commands the docs tell a user to run work as written. Every fenced block that README.md or docs/*.md marks with
# an `<!-- docs_commands -->` line just above its opening fence is run, in file order, from one fresh folder laid
# out like the repository root (build/, data/, launch/ linked; configs/ copied):
# - a `bash` block line by line, each line as a user would paste it; a line whose comment says `-> PATH (a, b, ...)`
#   must leave PATH and each name in the parentheses in it (`x.md/.json` is x.md and x.json; a glob such as `*.h5`
#   must match): the output the doc promises;
# - a `python` block with /usr/bin/python3 (needs h5py and numpy; where they are missing the other blocks still run,
#   and the test then exits 77, skipped);
# - a plain block as a transcript: each `$ COMMAND` line is run and must print the lines below it, word for word
#   (cgtrain --plan's numbers).
# The changes from a user's run: configs/*.yaml's /shared/ paths point into the test's folder (below), and
# configs/tiny.yaml is made small (2 steps, 600 rows, 4 samples), so the test takes
# about a minute instead of ten; its keys are set by name here, so a tiny.yaml that loses one fails the test.
#   test_docs_commands.sh REPO_ROOT BUILD_DIR
set -uo pipefail
root=${1:?usage: test_docs_commands.sh REPO_ROOT BUILD_DIR}
build=$(cd "${2:?usage: test_docs_commands.sh REPO_ROOT BUILD_DIR}" && pwd)
root=$(cd "$root" && pwd)
have_py=1
/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null || have_py=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
ln -s "$build" build
ln -s "$root/data" data
ln -s "$root/launch" launch
mkdir configs
cp "$root"/configs/*.yaml configs/
# cluster.md's `cgtrain --plan configs/llama70b.yaml` transcript is the plan of a machine without the weights (from
# model.flavor's preset). So that it holds wherever the test runs, a machine with /shared/Llama-2-70b-hf included,
# the configs' /shared/ paths point into this test's folder (which holds no weights), and a transcript's output reads
# that folder back as /shared/.
sed -i "s|/shared/|$work/shared/|g" configs/*.yaml
grep -q "$work/shared/Llama-2-70b-hf" configs/llama70b.yaml || {
  echo "FAIL: configs/llama70b.yaml names no /shared/Llama-2-70b-hf (the test points it into its own folder)"; exit 1; }
# Small: each edit must change its line, or the test would run the ten-minute default unnoticed.
small() {  # small KEY FROM TO: the indented `KEY: FROM` line of tiny.yaml becomes `KEY: TO`
  local before
  before=$(cat configs/tiny.yaml)
  sed -i -E "s/^(  $1:) $2( |$)/\1 $3\2/" configs/tiny.yaml
  [ "$before" != "$(cat configs/tiny.yaml)" ] ||
    { echo "FAIL: configs/tiny.yaml has no line '  $1: $2' (the test makes the tiny run small with it)"; exit 1; }
}
small steps 60 2
small max_rows 5000 600
small val_every 20 2
small val_samples 64 8
small every 30 2
printf 'sample:\n  num_samples: 4\n' >>configs/tiny.yaml

# The marked blocks, as FILE:LINE<TAB>LANG<TAB>BODY, LANG `transcript` for a plain fence, BODY's lines joined by \036.
blocks=$(awk '
  FNR == 1 { mark = 0; inb = 0 }
  inb && /^```/ { print name "\t" (lang == "" ? "transcript" : lang) "\t" body; inb = 0; next }
  inb { body = body (body == "" ? "" : "\036") $0; next }
  /^<!-- docs_commands -->$/ { mark = 1; next }
  mark && /^```[a-z]*$/ { inb = 1; lang = substr($0, 4); name = FILENAME ":" FNR; body = ""; mark = 0; next }
  { mark = 0 }' "$root/README.md" "$root"/docs/*.md)
[ -n "$blocks" ] || { echo "FAIL: no block in README.md or docs/*.md is marked <!-- docs_commands -->"; exit 1; }

bad=0 skipped=0
# expect LINE: the outputs its `-> PATH (a, b)` comment promises.
expect() {
  local line=$1 comment=${1#*#} path names n f g
  [[ $comment =~ -\>\ *([^ ]+)(\ *\(([^\)]*)\))? ]] || return 0
  path=${BASH_REMATCH[1]%/} names=${BASH_REMATCH[3]}
  [ -e "$path" ] || { echo "FAIL: '$line' should leave $path, which is not there"; bad=1; return; }
  IFS=',' read -ra n <<<"$names"
  for f in "${n[@]}"; do
    f=$(xargs <<<"$f")
    [ -n "$f" ] || continue
    if [[ $f == *.*/.* ]]; then  # report.md/.json: report.md and report.json
      set -- "${f%%/*}" "${f%%.*}.${f##*/.}"
    else
      set -- "$f"
    fi
    for g in "$@"; do
      compgen -G "$path/$g" >/dev/null || { echo "FAIL: '$line' should leave $path/$g, which is not there"; bad=1; }
    done
  done
}
# transcript NAME CMD WANT: CMD prints WANT.
transcript() {
  local out
  echo "== $1: \$ $2"
  out=$(CUDA_VISIBLE_DEVICES='' timeout 600 bash -c "$2" 2>&1 </dev/null)$'\n'
  out=${out//"$work/shared/"/\/shared\/}
  [ "$out" = "$3" ] || { echo "FAIL: $1: '$2' printed other than the doc shows (< doc, > now):"
    diff <(printf '%s' "$3") <(printf '%s' "$out"); bad=1; }
}
while IFS=$'\t' read -r name lang body; do
  name=${name#"$root"/}
  case $lang in
    bash|sh)
      while IFS= read -r line; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        echo "== $name: $line"
        out=$(timeout 600 bash -c "set -eo pipefail; $line" 2>&1 </dev/null)
        rc=$?
        if [ $rc != 0 ]; then
          echo "FAIL: $name: '$line' exited $rc:"
          tail -15 <<<"$out"
          exit 1
        fi
        expect "$line"
      done < <(tr '\036' '\n' <<<"$body")
      ;;
    python)
      [ $have_py = 1 ] || { echo "skip: $name: /usr/bin/python3 has no h5py/numpy (scripts/install.sh installs them)"
        skipped=1; continue; }
      echo "== $name: python block"
      out=$(tr '\036' '\n' <<<"$body" | timeout 120 /usr/bin/python3 - 2>&1) ||
        { echo "FAIL: $name: the python block failed:"; tail -15 <<<"$out"; exit 1; }
      ;;
    transcript)
      # A transcript: `$ COMMAND` lines, each followed by the output it prints, word for word (stdout and stderr).
      # No GPU visible, as on the laptop the docs quote (cgtrain --plan says which device memory it assumed).
      cmd='' want=''
      while IFS= read -r line; do
        if [[ $line == '$ '* ]]; then
          [ -z "$cmd" ] || transcript "$name" "$cmd" "$want"
          cmd=${line#'$ '} want=''
        else
          want+=$line$'\n'
        fi
      done < <(tr '\036' '\n' <<<"$body")
      [ -n "$cmd" ] ||
        { echo "FAIL: $name: a docs_commands block without a language holds no '$ COMMAND' line"; exit 1; }
      transcript "$name" "$cmd" "$want"
      ;;
    *) echo "FAIL: $name: a docs_commands block in '$lang': the test runs bash and python blocks"; exit 1 ;;
  esac
done <<<"$blocks"
[ $bad = 0 ] || exit 1
[ $skipped = 0 ] || { echo "skip: the other blocks ran as written; a python block could not run"; exit 77; }
echo "ok: every marked docs block ran as written ($(wc -l <<<"$blocks") blocks)"
