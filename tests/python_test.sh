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
export IBNET_LIBRARY="$so" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
[ -n "${2:-}" ] && export IBNET_CLI="$2"
[ -n "${3:-}" ] && export IBNET_ABI_SIZES="$3"
exec "$py" -m pytest -q -p no:cacheprovider tests
