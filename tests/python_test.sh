#!/usr/bin/env bash
# Runs the Python binding's tests (python/tests, pytest) against the build's
# libibnet.so with /usr/bin/python3.  Without Debian's python3-numpy and
# python3-pytest it says so and exits 77, which CTest reports as skipped.
#   bash tests/python_test.sh LIBIBNET_SO [IBNET_CLI [ABI_SIZES]]
# (the CLI is for the tests that compare with `ibnet eval`, `attack`, `mi`,
# `info`, `corrupt`; ABI_SIZES, the build's abi_sizes, for the test of the
# struct mirrors)
set -euo pipefail
so="$1"
py=/usr/bin/python3
cd "$(dirname "$0")/../python"
if ! [ -x "$py" ] || ! "$py" -c 'import numpy, pytest' 2>/dev/null; then
  echo "SKIPPED: the Python binding's tests need $py with numpy and pytest (apt install python3-numpy python3-pytest)"
  exit 77
fi
# libgomp's threads spin while they wait; on a loaded machine (CI, tests run
# side by side) that makes a 2-thread call many times slower (docs/engine.md).
# The library cannot choose for the Python process, so the tests do, unless
# the caller has: the same bits either way.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export IBNET_LIBRARY="$so" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
[ -n "${2:-}" ] && export IBNET_CLI="$2"
[ -n "${3:-}" ] && export IBNET_ABI_SIZES="$3"
exec "$py" -m pytest -q -p no:cacheprovider tests
