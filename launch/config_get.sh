# config_get.sh: read a few config keys in bash, without yq. Sourced by run.sh.
# It understands only the simple block layout cgtrain's configs and to_yaml() use:
#   section:
#     key: value   # comment
# (top-level `section:` lines, indented `key: value` lines, trailing `# comment`). Quoted values follow YAML's
# rules: "..." with \" \\ \t \n escapes, '...' with '' for a quote, spaces inside quotes kept.
# Flow maps ({...}), anchors and multi-line values are not understood; such a key reads as unset.
# Dotted overrides on the command line (section.key=value or --section.key=value, as the tools take them) win over
# the file, the last one winning.

# scalar(v, comments): the text of a YAML scalar as written after "key:" or "key=": "..." with \" \\ \t \n escapes
# (ends at the first unescaped "), '...' with '' for a quote (ends at the first lone quote), else trimmed (and, with
# comments, ended by " #", as in a file; on the command line '#' is text).
_cg_awk_scalar='
function scalar(v, comments,   q, out, i, c) {
  sub(/^[ \t]+/, "", v)
  q = substr(v, 1, 1)
  if (q == "\"") {
    out = ""
    for (i = 2; i <= length(v); i++) {
      c = substr(v, i, 1)
      if (c == "\\") {
        c = substr(v, ++i, 1)
        out = out (c == "n" ? "\n" : c == "t" ? "\t" : c)
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
  awk -v sec="$2" -v key="$3" "$_cg_awk_scalar"'
    /^[^ \t#][^:]*:/ { cur = $0; sub(/:.*/, "", cur); next }
    cur == sec && $0 ~ "^[ \t]+" key "[ \t]*:" {
      v = $0; sub(/^[^:]*:/, "", v)
      print scalar(v, 1); exit
    }' "$1"
}

# cg_config_get FILE DOTTED.KEY DEFAULT [OVERRIDE ...]: override > file > default.
cg_config_get() {
  local file=$1 key=$2 def=$3 val="" o
  shift 3
  if [ -n "$file" ] && [ -f "$file" ]; then val=$(cg_yaml_get "$file" "${key%%.*}" "${key#*.}"); fi
  for o in "$@"; do
    # An override's value reads as the tools read it (trimmed; YAML's quotes decoded; '#' is text).
    case "$o" in "$key="*|"--$key="*) val=$(printf '%s\n' "${o#*=}" | awk "$_cg_awk_scalar"'{ print scalar($0, 0) }') ;; esac
  done
  printf '%s\n' "${val:-$def}"
}
