#!/usr/bin/env bash
# The README's test command: configure, build (warnings are errors here),
# and run every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-Werror" > build.log
cmake --build build -j2 >> build.log 2>&1 || { tail -50 build.log; exit 1; }
ctest --test-dir build --output-on-failure -j2
