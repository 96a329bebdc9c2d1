#!/usr/bin/env bash
# cgtok's output checks: the converted model never replaces its input or another file; a rerun that writes the same
# bytes is fine; a missing folder or a folder as the output is named.
# Its files go in a folder of its own made in WORK_DIR (the build's tests/tmp; default $TMPDIR or /tmp): removed when
# every check passed, kept and named when one failed.
# Usage: test_cgtok_cli.sh CGTOK TOKENIZER_JSON [WORK_DIR]
set -uo pipefail
CGTOK=$1 JSON=$2 WORK=${3:-${TMPDIR:-/tmp}}
mkdir -p "$WORK" && T=$(mktemp -d "$WORK/cgtok_cli.XXXXXX") || exit 1
trap 'if [ $? -eq 0 ]; then rm -rf "$T"; else echo "the files of the checks are kept in $T" >&2; fi' EXIT
EXPECT_LOG=$T/log
. "$(dirname "$0")/../launch/expect.sh"
cd "$T"
cp "$JSON" tok.json
sum=$(md5sum < tok.json)

expect_rc 1 "output = input" "$CGTOK" hf-json tok.json tok.json
expect_out "the output tok.json is the input file" "output = input is named"
[ "$(md5sum < tok.json)" = "$sum" ] && ok || bad "cgtok replaced its input"
ln -s tok.json link.json
expect_rc 1 "output = the input through a link" "$CGTOK" hf-json tok.json link.json
[ "$(md5sum < tok.json)" = "$sum" ] && ok || bad "cgtok replaced its input through a link"

expect_rc 0 "a fresh output" "$CGTOK" hf-json tok.json out.model
expect_rc 0 "the same output again" "$CGTOK" hf-json tok.json out.model
echo "a model's own tokenizer" > other.model
expect_rc 1 "an output that holds another file" "$CGTOK" hf-json tok.json other.model
expect_out "the output other.model exists and holds another file" "another file is named"
[ "$(cat other.model)" = "a model's own tokenizer" ] && ok || bad "cgtok replaced another file"
expect_rc 1 "an output in a missing folder" "$CGTOK" hf-json tok.json nosuch/out.model
expect_out "the folder $T/nosuch does not exist; create it first" "the missing folder is named"
ln -s nosuch.model dangling.model
expect_rc 1 "a dangling link as the output" "$CGTOK" hf-json tok.json dangling.model
expect_out "the output dangling.model is a link to nosuch.model, which does not exist" "a dangling link is named"
[ -L dangling.model ] && [ ! -e nosuch.model ] && ok || bad "cgtok replaced a dangling link"
mkdir adir
expect_rc 1 "a folder as the output" "$CGTOK" hf-json tok.json adir
expect_out "the output adir is a folder" "a folder output is named"

# decode: the text of ids, as encode prints them, as separate arguments or one list; bad ids are named.
text="Na 0.5 0.25"
ids=$("$CGTOK" encode out.model "$text" | cut -f1)
[ -n "$ids" ] && [ "$(echo "$ids" | head -1)" = 1 ] && ok || bad "encode printed no ids starting with BOS: $ids"
[ "$("$CGTOK" decode out.model $ids)" = "$text" ] && ok || bad "decode of encode's ids (separate arguments) is not '$text'"
list="[$(echo $ids | tr ' ' ',')]"
[ "$("$CGTOK" decode out.model "$list")" = "$text" ] && ok || bad "decode of one list argument $list is not '$text'"
[ "$("$CGTOK" decode out.model $(echo "$ids" | sed -n 3p))" != "$text" ] && ok || bad "decode of one id gave the whole text"
# A byte piece <0x00> (id 3 in the fixture) is a NUL byte in the text, and the text goes on after it.
tail_ids=$(echo "$ids" | sed 1d)
[ "$("$CGTOK" decode out.model 3 $tail_ids 3 | od -An -tx1 | tr -d ' \n' | head -c 2)" = 00 ] && ok \
  || bad "decode of <0x00> does not start with a NUL byte"
[ "$("$CGTOK" decode out.model 3 $tail_ids 3 | od -An -tx1 | tr -d ' \n' | tail -c 4)" = 000a ] && ok \
  || bad "decode drops what follows a <0x00> byte (no NUL before the newline)"
# (the word after the byte keeps its space: only a text's first piece loses it)
[ "$("$CGTOK" decode out.model 3 $tail_ids 3 | tr -d '\0')" = " $text" ] && ok \
  || bad "decode of <0x00>, '$text', <0x00> lost the text after the NUL"
# the fixture tokenizer.json (llama_style.json) has 274 pieces
expect_rc 1 "an id outside the vocabulary" "$CGTOK" decode out.model 1 274
expect_out "id 274 is outside this model's vocabulary of 274 pieces \\(ids 0..273\\)" "an out-of-vocabulary id is named"
expect_rc 0 "the last id of the vocabulary" "$CGTOK" decode out.model 273
numpy="array([$(echo $ids | sed 's/ /, /g')], dtype=int32)"
[ "$("$CGTOK" decode out.model "$numpy")" = "$text" ] && ok || bad "decode of numpy's repr $numpy is not '$text'"
[ "$("$CGTOK" decode out.model "($(echo $ids | tr ' ' ','))")" = "$text" ] && ok || bad "decode of a tuple"
expect_rc 1 "a word that is not an id" "$CGTOK" decode out.model 1 x2
expect_out "'x2' is not a token id" "a non-id is named"
expect_rc 1 "a signed id" "$CGTOK" decode out.model 1 +5
expect_out "'\+5' is not a token id" "a sign is no part of an id"
expect_rc 1 "a missing model" "$CGTOK" decode nosuch.model 1
expect_out "cgtok decode: the model nosuch.model does not exist: give a sentencepiece tokenizer.model" \
  "a missing model is named as cgtok's argument"
expect_rc 2 "decode without ids" "$CGTOK" decode out.model
expect_out "cgtok decode: takes a model and at least one id, 1 arguments given" "missing ids are named"

echo "$((n - fails))/$n cgtok output checks passed"
[ "$fails" -eq 0 ]
