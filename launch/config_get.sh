# config_get.sh: read a few config keys in bash, without yq. Sourced by run.sh.
# It understands only the simple block layout cgtrain's configs and to_yaml() use:
#   section:
#     key: value   # comment
# (top-level `section:` lines, indented `key: value` lines, trailing `# comment`). Quoted values follow YAML's
# rules: "..." with \" \\ \t \n escapes, '...' with '' for a quote, spaces inside quotes kept.
# Flow maps ({...}), anchors and multi-line values are not understood; such a key reads as unset.
# Dotted overrides on the command line (section.key=value or --section.key=value, as the tools take them) win over
# the file, the last one winning.

# cg_yaml_get FILE SECTION KEY: the value of SECTION.KEY in FILE, or nothing.
cg_yaml_get() {
  awk -v sec="$2" -v key="$3" '
    /^[^ \t#][^:]*:/ { cur = $0; sub(/:.*/, "", cur); next }
    cur == sec && $0 ~ "^[ \t]+" key "[ \t]*:" {
      v = $0; sub(/^[^:]*:[ \t]*/, "", v)
      q = substr(v, 1, 1)
      if (q == "\"") {  # double-quoted: \" \\ \/ \t \n escapes; ends at the first unescaped "
        out = ""
        for (i = 2; i <= length(v); i++) {
          c = substr(v, i, 1)
          if (c == "\\") {
            c = substr(v, ++i, 1)
            out = out (c == "n" ? "\n" : c == "t" ? "\t" : c)
          } else if (c == "\"") break
          else out = out c
        }
        v = out
      } else if (q == "\047") {  # single-quoted: two quotes are one; ends at the first lone quote
        out = ""
        for (i = 2; i <= length(v); i++) {
          c = substr(v, i, 1)
          if (c == "\047") {
            if (substr(v, i + 1, 1) != "\047") break
            i++
          }
          out = out c
        }
        v = out
      } else { sub(/[ \t]+#.*$/, "", v); sub(/[ \t]+$/, "", v) }
      print v; exit
    }' "$1"
}

# cg_config_get FILE DOTTED.KEY DEFAULT [OVERRIDE ...]: override > file > default.
cg_config_get() {
  local file=$1 key=$2 def=$3 val="" o
  shift 3
  if [ -n "$file" ] && [ -f "$file" ]; then val=$(cg_yaml_get "$file" "${key%%.*}" "${key#*.}"); fi
  for o in "$@"; do
    # An override's value may come quoted (key="a b"); the file's value is unquoted by cg_yaml_get already.
    case "$o" in "$key="*|"--$key="*) val=${o#*=}; val=${val#\"}; val=${val%\"} ;; esac
  done
  printf '%s\n' "${val:-$def}"
}
