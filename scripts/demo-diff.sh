#!/usr/bin/env bash
# The engine alone on the built-in example: diff two versions of a small application tree
# (a real x86-64 program plus data files, in testdata/example), inspect the
# package, verify it, stream it into the applier, and check the result.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p deltapack-cli
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/deltapack
work=$(mktemp -d "${TMPDIR:-/tmp}/deltapack-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
old=testdata/example/v1
new=testdata/example/v2

echo "== diff: $old -> $new"
"$bin" diff "$old" "$new" -o "$work/update.dpk" --from-version 1.0.0 --to-version 1.1.0 --platform linux-x86_64
echo
echo "== inspect"
"$bin" inspect "$work/update.dpk"
echo
echo "== verify against the old version"
"$bin" verify "$work/update.dpk" --base "$old"
echo
echo "== apply (package streamed through stdin)"
"$bin" apply "$old" - -o "$work/v2" < "$work/update.dpk"
diff -r "$work/v2" "$new" && echo "rebuilt tree is identical to $new"
"$work/v2/bin/sample-app" 5 fresh_feature
echo
echo "== a damaged package is refused and leaves nothing behind"
cp "$work/update.dpk" "$work/bad.dpk"
printf '\x00' | dd of="$work/bad.dpk" bs=1 seek=200 conv=notrunc status=none
if "$bin" apply "$old" "$work/bad.dpk" -o "$work/v2-bad"; then echo "unexpected success"; exit 1; fi
test ! -e "$work/v2-bad" && echo "no output was created"
