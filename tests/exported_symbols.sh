#!/usr/bin/env bash
# Checks that libibnet.so exports exactly the public API: every defined
# dynamic symbol is an ib_ name declared in include/ibnet.h (no internal
# ib__ names, no symbols of the kernels or of bundled helpers), and the
# check is not vacuous (ib_version and ib_last_error are there).
#   bash tests/exported_symbols.sh LIBIBNET_SO INCLUDE/IBNET_H
set -euo pipefail
so="$1"; header="$2"
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
fail=0
for must in ib_version ib_last_error ib_strerror; do
  grep -qx "$must" <<<"$syms" || { echo "FAIL: $must is not exported by $so"; fail=1; }
done
declared=$(grep -ow 'ib_[A-Za-z0-9_]*' "$header" | sort -u)
n=0
while read -r s; do
  [ -n "$s" ] || continue
  n=$((n + 1))
  case "$s" in
    ib__*) echo "FAIL: internal symbol exported: $s"; fail=1 ;;
    ib_*) grep -qx "$s" <<<"$declared" || { echo "FAIL: $s is exported but not declared in $header"; fail=1; } ;;
    # The linker's own markers are not API.
    _init|_fini|_edata|_end|__bss_start) ;;
    # clang's lock of an OpenMP "critical" section: global by design (one
    # lock per program), made by the compiler, not part of the API.
    .gomp_critical_user_*) ;;
    *) echo "FAIL: non-ibnet symbol exported: $s"; fail=1 ;;
  esac
done <<<"$syms"
if [ $fail = 0 ]; then
  echo "libibnet.so exports $n symbols, all ib_ names of $(basename "$header")"
fi
exit $fail
