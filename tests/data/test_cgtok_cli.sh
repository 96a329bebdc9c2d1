#!/usr/bin/env bash
# cgtok's output checks: the converted model never replaces its input or another file; a rerun that writes the same
# bytes is fine; a missing folder or a folder as the output is named.
# Usage: test_cgtok_cli.sh CGTOK TOKENIZER_JSON
set -uo pipefail
CGTOK=$1 JSON=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
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

echo "$((n - fails))/$n cgtok output checks passed"
[ "$fails" -eq 0 ]
