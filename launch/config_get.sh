# config_get.sh: read a few config keys in bash, without yq. Sourced by run.sh.
# It understands only the simple block layout cgtrain's configs and to_yaml() use:
#   section:
#     key: value   # comment
# (top-level `section:` lines, indented `key: value` lines, trailing `# comment`). Quoted values follow YAML's
# rules: "..." with \" \\ \t \n escapes, '...' with '' for a quote, spaces inside quotes kept.
# Flow maps ({...}), anchors and multi-line values are not understood; such a key reads as unset.
# Dotted overrides on the command line (section.key=value or --section.key=value, as the tools take them) win over
# the file. A key given twice is refused, as the tools refuse it (cg_merge_overrides merges layered settings first).

# scalar(v, comments): the text of a YAML scalar as written after "key:" or "key=": "..." with YAML's escapes, as the
# tools decode them (\" \\ \/ \t \n ..., \xXX \uXXXX \UXXXXXXXX as UTF-8: a folder named in them is the one the
# tool opens; ends at the first unescaped "), '...' with '' for a quote (ends at the first lone quote), else trimmed
# (and, with comments, ended by " #", as in a file; on the command line '#' is text). Run under LC_ALL=C, so that
# %c writes one byte (gawk would write a character in a UTF-8 locale).
_cg_awk_scalar='
function hexval(h,   i, n) {
  n = 0
  for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
  return n
}
function utf8(n) {
  if (n < 128) return sprintf("%c", n)
  if (n < 2048) return sprintf("%c%c", 192 + int(n / 64), 128 + n % 64)
  if (n < 65536) return sprintf("%c%c%c", 224 + int(n / 4096), 128 + int(n / 64) % 64, 128 + n % 64)
  return sprintf("%c%c%c%c", 240 + int(n / 262144), 128 + int(n / 4096) % 64, 128 + int(n / 64) % 64, 128 + n % 64)
}
function escaped(c,   k, code) {  # the text of \c (not x, u, U): YAML 1.2 section 5.7
  k = index("abtnvfre0N_LP", c)
  if (k == 0) return c  # \" \\ \/ \space are the character itself
  split("7 8 9 10 11 12 13 27 0 133 160 8232 8233", code, " ")
  return utf8(code[k] + 0)
}
function scalar(v, comments,   q, out, i, c, n) {
  sub(/^[ \t]+/, "", v)
  q = substr(v, 1, 1)
  if (q == "\"") {
    out = ""
    for (i = 2; i <= length(v); i++) {
      c = substr(v, i, 1)
      if (c == "\\") {
        c = substr(v, ++i, 1)
        n = c == "x" ? 2 : c == "u" ? 4 : c == "U" ? 8 : 0
        if (n) { out = out utf8(hexval(substr(v, i + 1, n))); i += n }
        else out = out escaped(c)
      } else if (c == "\"") break
      else out = out c
    }
    return out
  }
  if (q == "\047") {
    out = ""
    for (i = 2; i <= length(v); i++) {
      c = substr(v, i, 1)
      if (c == "\047") {
        if (substr(v, i + 1, 1) != "\047") break
        i++
      }
      out = out c
    }
    return out
  }
  if (comments) sub(/[ \t]+#.*$/, "", v)
  sub(/[ \t]+$/, "", v)
  return v
}'

# cg_yaml_get FILE SECTION KEY: the value of SECTION.KEY in FILE, or nothing.
cg_yaml_get() {
  LC_ALL=C awk -v sec="$2" -v key="$3" "$_cg_awk_scalar"'
    /^[^ \t#][^:]*:/ { cur = $0; sub(/:.*/, "", cur); next }
    cur == sec && $0 ~ "^[ \t]+" key "[ \t]*:" {
      v = $0; sub(/^[^:]*:/, "", v)
      print scalar(v, 1); exit
    }' "$1"
}

# _cg_override_key WORD: the key of a key=value word as the tools read it (split_override: a leading -- dropped, then
# spaces, tabs, CR and LF around the key: not \v or \f, which the tools keep in the key, an unknown one); nothing
# for a word without '='.
_cg_override_key() {
  local k ws=$' \t\r\n'
  [ "$1" != "${1#*=}" ] || return 0
  k=${1%%=*}; k=${k#--}; k=${k#"${k%%[!"$ws"]*}"}; k=${k%"${k##*[!"$ws"]}"}
  printf '%s' "$k"
}

# cg_repeated_override WORD ...: the tools refuse a key given twice on one command line (the later value would
# silently win over a typo); this prints their message for the first such key, nothing when every key comes once.
cg_repeated_override() {
  local keys=() values=() w k i
  for w in "$@"; do
    [ "$w" != "${w#*=}" ] || continue
    k=$(_cg_override_key "$w")
    for i in "${!keys[@]}"; do
      if [ "${keys[$i]}" = "$k" ]; then
        printf '%s is given twice on the command line (%s, then %s): give it once\n' "$k" "${values[$i]}" "${w#*=}"
        return 0
      fi
    done
    keys+=("$k"); values+=("${w#*=}")
  done
}

# cg_config_get FILE DOTTED.KEY DEFAULT [OVERRIDE ...]: override > file > default. Fails (status 2, the tools'
# message on stderr) when an override names a key twice, as the tool itself would refuse the same line.
cg_config_get() {
  local file=$1 key=$2 def=$3 val="" o twice
  shift 3
  twice=$(cg_repeated_override "$@")
  if [ -n "$twice" ]; then printf '%s\n' "$twice" >&2; return 2; fi
  if [ -n "$file" ] && [ -f "$file" ]; then val=$(cg_yaml_get "$file" "${key%%.*}" "${key#*.}"); fi
  for o in "$@"; do
    # An override's value reads as the tools read it (trimmed; YAML's quotes decoded; '#' is text).
    [ "$(_cg_override_key "$o")" = "$key" ] || continue
    val=$(printf '%s\n' "${o#*=}" | LC_ALL=C awk "$_cg_awk_scalar"'{ print scalar($0, 0) }')
  done
  printf '%s\n' "${val:-$def}"
}

# cg_merge_overrides WORD ...: the words into the array `merged`, a later key=value replacing an earlier one of the
# same key (`key=`, `--key=`, spaces around the key alike) where it stood. The tools refuse a key given twice on one
# command line, so a script that layers settings (its defaults, then the user's extras) merges them with this first.
cg_merge_overrides() {
  merged=()
  local keys=() w k i
  for w in "$@"; do
    k=$(_cg_override_key "$w")  # "" for a word without '=': kept as it is
    for i in "${!merged[@]}"; do
      [ -n "$k" ] && [ "${keys[$i]}" = "$k" ] && { merged[i]=$w; continue 2; }
    done
    merged+=("$w"); keys+=("$k")
  done
  return 0
}
