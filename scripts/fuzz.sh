#!/usr/bin/env bash
# Build every fuzz/fuzz_*.c libFuzzer target with clang (ASan + UBSan, the
# library instrumented too) into build-fuzz/, then run each for N seconds
# (argument 1, default 20) from its seed corpus fuzz/corpus/<name>/.
# Fails if any target crashes, leaks, trips a sanitizer or a property.
# New corpus entries go to build-fuzz/corpus/, never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
command -v clang >/dev/null || { echo "fuzz.sh: clang is needed" >&2; exit 1; }

targets=()
for f in fuzz/fuzz_*.c; do
  [ -e "$f" ] || continue
  targets+=("$(basename "$f" .c)")
done
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz.sh: no fuzz/fuzz_*.c targets"; exit 0; }

echo "building ${targets[*]} (log: build-fuzz.log)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIBNET_FUZZ=ON -DIBNET_BENCH=OFF \
  > build-fuzz.log 2>&1 || { tail -30 build-fuzz.log; exit 1; }
cmake --build build-fuzz -j2 --target "${targets[@]}" >> build-fuzz.log 2>&1 || { tail -50 build-fuzz.log; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
[ -f .ci/lsan.supp ] && export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/.ci/lsan.supp}"

failed=()
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  work="build-fuzz/corpus/$name"
  art="build-fuzz/artifacts/$name"
  mkdir -p "$work" "$art"
  seeds=()
  [ -d "fuzz/corpus/$name" ] && seeds+=("fuzz/corpus/$name")
  echo "== $t: ${secs}s =="
  # One process, no forking: a crash is reported with its input saved
  # under $art/ (rerun it with ./build-fuzz/$t $art/crash-...).
  if ! "./build-fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
       -print_final_stats=1 -artifact_prefix="$art/" "$work" "${seeds[@]}" > "build-fuzz/$t.log" 2>&1; then
    tail -40 "build-fuzz/$t.log"
    failed+=("$t")
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "build-fuzz/$t.log" | tr '\n' ' '; echo
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs under build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${secs}s without a finding"
