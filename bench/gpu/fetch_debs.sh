#!/usr/bin/env bash
# Run HERE (with network, Debian 12): downloads the .debs of bench/gpu/packages.txt and their library dependencies
# into bench/gpu/debs/ (git-ignored), leaving out the base system (Priority required/important: libc6, libstdc++6,
# ...) that every machine has. Carry bench/gpu/debs/ to the GPU machine with the checkout; bench/gpu/build.sh unpacks
# them there with `dpkg -x` (no root, no apt, no network).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/debs"
mkdir -p "$out"
mapfile -t wanted < <(grep -v '^\s*#' "$here/packages.txt" | awk 'NF {print $1}')

# Dependency closure (Depends and PreDepends only), real packages only.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${wanted[@]}" | grep -v '^ ' | grep -v '^<' | sort -u)
keep=()
for p in "${closure[@]}"; do
  prio=$(apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Priority: //p' | head -1)
  case " ${wanted[*]} " in *" $p "*) keep+=("$p"); continue ;; esac   # asked for explicitly
  case "$prio" in required|important) continue ;; esac                  # base system
  case "$p" in debconf*|dpkg|perl*|libc6|libc-bin|libgcc*|libstdc++*|gcc-*-base|python3*|libpython3*) continue ;; esac
  keep+=("$p")
done
echo "downloading ${#keep[@]} packages into $out"
(cd "$out" && apt-get download "${keep[@]}")
printf '%s\n' "${keep[@]}" > "$out/PACKAGES"
du -sh "$out"
