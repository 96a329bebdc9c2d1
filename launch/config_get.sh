# config_get.sh: read a few config keys in bash, without yq. Sourced by run.sh.
# It understands only the simple block layout cgtrain's configs and to_yaml() use:
#   section:
#     key: value   # comment
# (top-level `section:` lines, two-space-indented `key: value` lines, optional quotes, trailing `# comment`).
# Flow maps ({...}), anchors and multi-line values are not understood; such a key reads as unset.
# Dotted overrides on the command line (section.key=value or --section.key=value, as the tools take them) win over
# the file, the last one winning.

# cg_yaml_get FILE SECTION KEY: the value of SECTION.KEY in FILE, or nothing.
cg_yaml_get() {
  awk -v sec="$2" -v key="$3" '
    /^[^ \t#][^:]*:/ { cur = $0; sub(/:.*/, "", cur); next }
    cur == sec && $0 ~ "^[ \t]+" key "[ \t]*:" {
      v = $0; sub(/^[^:]*:[ \t]*/, "", v)
      if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) }
      else if (v ~ /^\047/) { sub(/^\047/, "", v); sub(/\047.*$/, "", v) }
      else { sub(/[ \t]+#.*$/, "", v); sub(/[ \t]+$/, "", v) }
      print v; exit
    }' "$1"
}

# cg_config_get FILE DOTTED.KEY DEFAULT [OVERRIDE ...]: override > file > default.
cg_config_get() {
  local file=$1 key=$2 def=$3 val="" o
  shift 3
  if [ -n "$file" ] && [ -f "$file" ]; then val=$(cg_yaml_get "$file" "${key%%.*}" "${key#*.}"); fi
  for o in "$@"; do
    case "$o" in "$key="*|"--$key="*) val=${o#*=} ;; esac
  done
  val=${val#\"}; val=${val%\"}
  printf '%s\n' "${val:-$def}"
}
