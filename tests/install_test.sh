#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds an outside C
# program against it four ways -- pkg-config and find_package(ibnet), each
# shared and static -- then runs each build and checks that the shared
# ones load libibnet.so and the static ones do not.  Also checks the CLI,
# the header and the man page are installed.
#   bash tests/install_test.sh BUILD_DIR [C_COMPILER]
set -euo pipefail
build="$1"; cc="${2:-cc}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"

fail() { echo "FAIL: $*"; exit 1; }
so=$(find "$prefix" -name 'libibnet.so' | head -1)
[ -n "$so" ] || fail "no libibnet.so under $prefix"
libdir=$(dirname "$so")
for f in "$libdir/libibnet.a" "$prefix/include/ibnet.h" "$prefix/bin/ibnet" \
         "$prefix/share/man/man1/ibnet.1" "$libdir/pkgconfig/ibnet.pc" \
         "$libdir/cmake/ibnet/ibnetConfig.cmake"; do
  [ -e "$f" ] || fail "not installed: $f"
done
"$prefix/bin/ibnet" --help | grep -q '^usage' || fail "the installed CLI does not run"

# The outside program: the version, a built-in model, and an error path
# (status and message), all through the public header only.
mkdir -p "$tmp/app"
cat > "$tmp/app/main.c" <<'C'
#include <ibnet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    ib_model *m = NULL;
    if (ib_model_load("mlp", &m) != IB_OK) { fprintf(stderr, "load: %s\n", ib_last_error()); return 1; }
    char *summary = ib_model_summary(m);
    if (!summary || !strstr(ib_model_text(m), "mlp")) return 1;
    free(summary);
    ib_model_free(m);
    ib_model *bad = NULL;
    if (ib_model_load("no-such-model", &bad) != IB_ERR_ARG || !strstr(ib_last_error(), "mlp")) return 1;
    printf("ibnet %s ok\n", ib_version());
    return 0;
}
C
cat > "$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(ibnet_outside LANGUAGES C)
find_package(ibnet 0.1 REQUIRED)
add_executable(app_shared main.c)
target_link_libraries(app_shared PRIVATE ibnet::ibnet)
add_executable(app_static main.c)
target_link_libraries(app_static PRIVATE ibnet::ibnet_static)
CM

version=$(grep -m1 -o 'project(ibnet VERSION [0-9.]*' "$(dirname "$0")/../CMakeLists.txt" | awk '{print $3}')
check_run() { # BINARY shared|static
  local out
  out=$(LD_LIBRARY_PATH="$libdir" "$1") || fail "$1 failed: $out"
  [ "$out" = "ibnet $version ok" ] || fail "$1 printed '$out', expected 'ibnet $version ok'"
  if [ "$2" = shared ]; then
    readelf -d "$1" | grep -q 'NEEDED.*libibnet\.so\.0' || fail "$1 does not load libibnet.so.0"
  else
    ! readelf -d "$1" | grep -q 'NEEDED.*libibnet' || fail "$1 (static) loads libibnet.so"
  fi
  echo "ok: $(basename "$1") ($2)"
}

export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion ibnet)" = "$version" ] || fail "pkg-config --modversion ibnet"
# shellcheck disable=SC2046
"$cc" -o "$tmp/pc_shared" "$tmp/app/main.c" $(pkg-config --cflags --libs ibnet)
check_run "$tmp/pc_shared" shared
# shellcheck disable=SC2046
"$cc" -o "$tmp/pc_static" "$tmp/app/main.c" $(pkg-config --cflags ibnet) \
  "$(pkg-config --variable=libdir ibnet)/libibnet.a" $(pkg-config --static --libs ibnet | sed 's/-libnet//')
check_run "$tmp/pc_static" static

cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$tmp/cfg.log" 2>&1 || { cat "$tmp/cfg.log"; fail "find_package(ibnet)"; }
cmake --build "$tmp/app/build" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building against ibnet::ibnet"; }
check_run "$tmp/app/build/app_shared" shared
check_run "$tmp/app/build/app_static" static
echo "install tree works with pkg-config and find_package, shared and static"
