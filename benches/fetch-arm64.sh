#!/usr/bin/env bash
# fetch-arm64.sh: the arm64 (Linux aarch64) builds of the corpus programs,
# for measuring the executable-aware codec on arm64 code. The shared
# corpus (../shared/corpus/fetch.sh) is x86-64 only; these are the same
# packages and versions, pinned by sha256, from the same registries.
#
#   benches/fetch-arm64.sh        # -> $CACHE/arm64/<pair>/{old,new}
#   cargo run --release -p deltapack-benches --bin compare -- --corpus "$CACHE/arm64"
#
# CACHE is $DELTAPACK_CORPUS_CACHE or ~/.cache/deltapack-corpus. Needs
# python3 with pip, npm, unzip, tar, sha256sum; network: PyPI and npm.
set -euo pipefail
CACHE="${DELTAPACK_CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deltapack-corpus}"
OUT="$CACHE/arm64"
DL="$CACHE/downloads/arm64"
mkdir -p "$OUT" "$DL"

check() { # FILE SHA256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "fetch-arm64: $1: sha256 $got, expected $2" >&2; exit 1; }
}

# pair|registry|package|version|artifact sha256|member|extracted sha256
SIDES=(
"pydantic-arm/old|pypi|pydantic-core|2.50.3|0c2695a5959a0587aab4da7f9b2571e9d5ea14efd782a08f8b6c2fd65012a77d|pydantic_core/*.so|aee5fc812ae6c7ae0c4fd80cf2003c961254e46ada23278d02f9282ed7350e19"
"pydantic-arm/new|pypi|pydantic-core|2.50.4|16902a147b3da4840612164a5e67947104d63e978f7a57c395877a5e26690b9c|pydantic_core/*.so|a06f597351b3e221dc3631a127a586e8d85c4874b9400a62cd62d2c40c07b6f5"
"ruff-arm/old|pypi|ruff|0.17.5|6f6a7b138edf9cc402ca736a59d9525e6d766e5395760b72e7e146e6251ac963|*.data/scripts/ruff|0ed0475e21ff8ef06e2705dc2040585bbfec8cbbbb60cf83492635cd853247f4"
"ruff-arm/new|pypi|ruff|0.17.6|435241c61af5909a022f76219d3d1bf24730dc1bf0acabb5ddf4b569ab3cbb30|*.data/scripts/ruff|53ffd8b8e87c400f945bf0a628f9c15c04dfe853d4d66b323e7f6457f7f8da9b"
"esbuild-arm/old|npm|@esbuild/linux-arm64|0.28.1|2145e9e686c95ee47c1181f83f272f0ff95820e52d7736fdcd9eeb106fd6456a|package/bin/esbuild|51e829ba36f36be6d9aea6e329ddc4f9350302339b16aaca96a3cb97f64a8ebb"
"esbuild-arm/new|npm|@esbuild/linux-arm64|0.28.2|a96dbfa41d3ef5dbd1ef22b1c10d5187be9267e86093a870f06402a7ec931596|package/bin/esbuild|90bd269553d258e80b19e3ccab4f98f0831f87442a2f056510ce24fd1b425fc2"
)

for line in "${SIDES[@]}"; do
  IFS='|' read -r side reg pkg ver sha member want <<<"$line"
  dest="$OUT/$side"
  if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
    continue
  fi
  dir="$DL/$(printf '%s' "$pkg" | tr '/@' '__')-$ver"
  rm -rf "$dir" && mkdir -p "$dir"
  case $reg in
    pypi) python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_17_aarch64 -d "$dir" "$pkg==$ver" ;;
    npm)  (cd "$dir" && npm pack -q "$pkg@$ver" >/dev/null) ;;
  esac
  art=$(ls "$dir"/*)
  check "$art" "$sha"
  mkdir -p "$dir/x" "$(dirname "$dest")"
  case $reg in
    pypi) (cd "$dir/x" && unzip -q "$art" "$member") ;;
    npm)  tar -xzf "$art" -C "$dir/x" ;;
  esac
  # shellcheck disable=SC2086 # the member is a glob
  cp $dir/x/$member "$dest"
  chmod 755 "$dest"
  check "$dest" "$want"
  echo "fetch-arm64: $side: $pkg $ver"
done
echo "arm64 pairs ready in $OUT"
