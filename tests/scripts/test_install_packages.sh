#!/usr/bin/env bash
# scripts/install.sh is the README's "fresh machine" step: every tool and file the build and the tests need must come
# from a package it lists or from their dependencies. This machine has them installed (by install.sh or by hand), so
# dpkg names the package that owns each one, and apt-cache's dependency closure of install.sh's list must hold it.
# Skipped (77) where there is no dpkg/apt-cache or a needed file is not installed here.
set -euo pipefail
root=${1:?usage: test_install_packages.sh REPO_ROOT}
command -v dpkg >/dev/null && command -v apt-cache >/dev/null || { echo "SKIP: no dpkg/apt-cache"; exit 77; }

# The PKGS="..." assignment of install.sh, without running it.
pkgs=$(sed -n '/^PKGS="/,/"/p' "$root/scripts/install.sh" | sed 's/^PKGS="//; s/"$//' | tr -s ' \n' ' ')
[ -n "$pkgs" ] || { echo "FAIL: no PKGS=\"...\" in scripts/install.sh"; exit 1; }
# shellcheck disable=SC2086
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances $pkgs 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u) || true
# Without package lists (a container whose /var/lib/apt/lists was cleaned) apt-cache knows no dependencies.
# Each listing is read whole before grep looks at it: grep -q / -m1 on a pipe stops reading at the first match, the
# writer then dies of SIGPIPE, and pipefail turned that into a skip (it skipped so in a CI run under load).
deps=$(apt-cache depends libtorch-dev 2>/dev/null) || true
grep -q 'Depends:' <<<"$deps" ||
  { echo "SKIP: apt-cache knows no dependencies of libtorch-dev (no package lists: apt-get update)"; exit 77; }

# What the build runs or reads: scripts/build.sh calls cmake (which runs make and c++), CMakeLists.txt needs
# pkg-config (sentencepiece) and GTest (CG_BUILD_TESTS, on by default), scripts/test.sh and demo.sh call mpirun.
needs=()
for tool in cmake make c++ pkg-config mpirun; do
  p=$(command -v "$tool") || { echo "SKIP: $tool is not installed here"; exit 77; }
  needs+=("$tool=$(readlink -f "$p")")
done
gtest_files=$(dpkg -L libgtest-dev 2>/dev/null) || true
gtest=$(grep -m1 '/GTestConfig.cmake$' <<<"$gtest_files") ||
  { echo "SKIP: no GTestConfig.cmake"; exit 77; }
needs+=("GTest=$gtest")

fail=0
for n in "${needs[@]}"; do
  what=${n%%=*} file=${n#*=}
  owner=$(dpkg -S "$file" 2>/dev/null) || true
  owner=$(head -1 <<<"$owner" | cut -d: -f1)
  [ -n "$owner" ] || { echo "SKIP: dpkg knows no package of $file"; exit 77; }
  if grep -qx "$owner" <<<"$closure"; then
    echo "ok: $what ($file) from $owner"
  else
    echo "FAIL: $what ($file) comes from $owner, which scripts/install.sh neither lists nor pulls in: add it to PKGS"
    fail=1
  fi
done
exit $fail
