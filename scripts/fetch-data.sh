#!/usr/bin/env bash
# Download a known data set from its public mirrors into DIR (default
# ./data), then verify it with `ibnet data verify` (sizes, magic numbers,
# counts and the sha256 of the decompressed content, so a file from any
# mirror is accepted only if its content is the original's).
#   bash scripts/fetch-data.sh mnist|fashion-mnist|cifar10 [DIR]
# Files are written under temporary names and renamed when complete, so an
# interrupted download never leaves a half file under the real name.
# IBNET_MIRROR=URL/ is tried before the public mirrors (a local copy:
# file:///path/to/dir/).
# Machines without internet: copy the files into DIR by hand (see
# the README, "Data") or point IBNET_DATA at them.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: fetch-data.sh mnist|fashion-mnist|cifar10 [DIR]}
root=${2:-data}
IBNET=${IBNET:-build/ibnet}

get() { # url, destination
  local tmp="$2.part.$$"
  if command -v curl > /dev/null; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$tmp" "$1" || { rm -f "$tmp"; return 1; }
  elif command -v wget > /dev/null; then
    wget -q -T 20 -t 2 -O "$tmp" "$1" || { rm -f "$tmp"; return 1; }
  else
    echo "fetch-data: neither curl nor wget is installed" >&2
    return 1
  fi
  mv -f "$tmp" "$2"
}

get_from_mirrors() { # file, destination dir, mirrors...
  local file=$1 dir=$2; shift 2
  [ -n "${IBNET_MIRROR:-}" ] && set -- "$IBNET_MIRROR" "$@"
  [ -s "$dir/$file" ] && return 0
  for m in "$@"; do
    echo "fetch-data: $m$file" >&2
    get "$m$file" "$dir/$file" && return 0
  done
  echo "fetch-data: could not download $file from any mirror (no internet?)" >&2
  return 1
}

case "$name" in
mnist|fashion-mnist)
  if [ "$name" = mnist ]; then
    mirrors=(https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/)
  else
    mirrors=(http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)
  fi
  dir="$root/$name"
  mkdir -p "$dir"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    get_from_mirrors "$f.gz" "$dir" "${mirrors[@]}"
  done
  ;;
cifar10)
  dir="$root/cifar-10-batches-bin"
  mkdir -p "$root"
  if [ ! -s "$dir/test_batch.bin" ]; then
    get_from_mirrors cifar-10-binary.tar.gz "$root" https://www.cs.toronto.edu/~kriz/
    tar -xzf "$root/cifar-10-binary.tar.gz" -C "$root"
    rm -f "$root/cifar-10-binary.tar.gz"
  fi
  ;;
*)
  echo "fetch-data: unknown data set '$name' (mnist, fashion-mnist, cifar10)" >&2
  exit 2
  ;;
esac
"$IBNET" data verify "$name" --data "$root"
