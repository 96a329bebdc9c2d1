#!/usr/bin/env bash
# Every config key the docs name must be one the tools read: README.md, docs/*.md, the comments of configs/*.yaml and
# launch/sweeps/*.yaml, the launch scripts and the tools' usage text and messages (their main sources) may only name
# `section.key`s that cgconfigdoc lists (docs/config.md's table, generated from trainer/config_fields.cpp). A renamed
# or removed key otherwise lives on in a command a user copies, to be refused as unknown.
# The tests README.md and docs/ name (ctest names, GoogleTest Suite.Name) must be there too.
#   test_docs_keys.sh REPO_ROOT BUILD_DIR
set -euo pipefail
root=${1:?usage: test_docs_keys.sh REPO_ROOT BUILD_DIR}
build=${2:?usage: test_docs_keys.sh REPO_ROOT BUILD_DIR}

keys=$("$build/trainer/cgconfigdoc" | sed -n 's/^| `\([a-z_]*\.[a-z_0-9]*\)` |.*/\1/p')
[ "$(wc -l <<<"$keys")" -gt 80 ] ||
  { echo "FAIL: cgconfigdoc listed $(wc -l <<<"$keys") keys; expected its table of every key"; exit 1; }
sections=$(cut -d. -f1 <<<"$keys" | sort -u | paste -sd'|')

# The texts a user reads: the docs, the configs' and sweeps' comments, the launch scripts, and the sources of the
# tools' mains (their usage text and the messages they print; the config tools' --help is the key list itself). The
# sources, not the tools' --help: cgexport's loads libtorch and starts MPI first, half a minute on a loaded machine.
files=("$root/README.md" "$root"/docs/*.md "$root"/configs/*.yaml "$root"/launch/sweeps/*.yaml "$root"/launch/*.sh
  "$root/launch/slurm.sbatch" "$root"/{data/cgprep,data/cgtok,trainer/cgtrain,trainer/cgexport}.cpp
  "$root"/{sampler/cgsample,sampler/cgeval,launch/cgsweep_main}.cpp)

# A mention is `section.key` standing alone: not part of a path or a longer dotted name (data/mp20/train.csv.gz,
# base_model.model.model.layers, model.embed_tokens.weight, cfg.model.hf_dir), nor a C++ call. What remains and is
# not a key must be a file name (checkpoint.h, model.safetensors), the placeholder of a usage line (data.key=value)
# or the one JSON field the docs name this way (tokenizer.json's model.vocab).
not_keys='^(model\.safetensors|model\.vocab|[a-z]+\.key|[a-z]+\.(h|cpp|py|sh|md|json|jsonl|yaml|log|csv|gz))$'
# One grep over every file (FILE:LINE:MENTION), one awk to keep the mentions that are neither keys nor file names.
# (ENVIRON, not awk -v, which would read the backslashes as escapes.)
export keys not_keys root
bad=$(grep -HnoP "(?<![./\w])($sections)\.[A-Za-z_]\w*(?!\.\w|\(|\w)" "${files[@]}" |
  awk -F: '
    BEGIN { n = split(ENVIRON["keys"], k, "\n"); for (i = 1; i <= n; i++) known[k[i]] = 1
            root = ENVIRON["root"] "/" }
    !($3 in known) && $3 !~ ENVIRON["not_keys"] {
      name = $1; if (index(name, root) == 1) name = substr(name, length(root) + 1)
      printf "FAIL: %s:%s names %s, which is no config key (build/trainer/cgconfigdoc lists them)\n", name, $2, $3
    }') || true
[ -z "$bad" ] || { echo "$bad"; exit 1; }
echo "ok: every section.key named in ${#files[@]} files is a config key"

# Tests the docs name, for a reader to run or read: a `test_x` in backticks is a ctest test or the start of some
# (`test_train_e2e` for its parts, a group executable for its `_all_registered`), and a GoogleTest `Suite.Name`
# whose suite is one of tests/ names a TEST of that suite (`Suite.*` any). A renamed test otherwise leaves
# `ctest -R` matching nothing, and a reader with a name to grep for that is not there.
docs=("$root/README.md" "$root"/docs/*.md)
ctests=$(cd "$build" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p')
[ "$(wc -l <<<"$ctests")" -gt 50 ] || { echo "FAIL: ctest -N in $build listed $(wc -l <<<"$ctests") tests"; exit 1; }
gtests=$(grep -rhoE 'TEST(_F|_P)?\( *[A-Za-z0-9_]+, *[A-Za-z0-9_]+' "$root/tests" | sed -E 's/.*\( *//; s/, */./' |
  sort -u)
bad=$(
grep -HnoE '`test_[a-z0-9_]+`' "${docs[@]}" | tr -d '`' | while IFS=: read -r f n t; do
  grep -q "^$t" <<<"$ctests" ||
    echo "FAIL: ${f#"$root"/}:$n names $t, which no ctest test is (or starts): ctest -N lists them"
done
grep -HnoE '\b[A-Z][A-Za-z0-9]+\.([A-Z][A-Za-z0-9_]+|\*)' "${docs[@]}" | while IFS=: read -r f n t; do
  grep -q "^${t%%.*}\." <<<"$gtests" || continue  # no test suite: a class and its member, a file name
  [ "${t#*.}" = '*' ] || grep -qx "$t" <<<"$gtests" ||
    echo "FAIL: ${f#"$root"/}:$n names the test $t, which tests/ does not hold"
done)
[ -z "$bad" ] || { echo "$bad"; exit 1; }
echo "ok: every test named in README.md and docs/ is there"
