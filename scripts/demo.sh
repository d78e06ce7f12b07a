#!/usr/bin/env bash
# deltapack's main job on the built-in example (testdata/example v1, v2, v3:
# a real x86-64 program plus data files):
#   release CI  - a signing key, then a repository of three versions: full
#                 bundles, deltas, a signed manifest; verified;
#   hosting     - the repository served over HTTP on loopback;
#   the app     - install 1.0.0, update to 1.2.0 through a chain of deltas
#                 with progress, show the history, roll back.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p deltapack-cli
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/deltapack
work=$(mktemp -d "${TMPDIR:-/tmp}/deltapack-demo.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "release CI: a key pair, then three versions into a repository (deltas from the previous version)"
"$bin" keygen -o "$work/release"
init=--init  # the first release starts the repository
for v in 1:1.0.0 2:1.1.0 3:1.2.0; do
  "$bin" release --repo "$work/repo" --version "${v#*:}" --channel stable --deltas 1 $init \
    --key "$work/release.key" --platform "linux-x86_64=testdata/example/v${v%%:*}"
  init=
done
"$bin" repo verify "$work/repo" --pub "$work/release.pub"
(cd "$work/repo" && find . -type f | sort | xargs ls -l | awk '{printf "  %8d  %s\n", $5, $9}')

step "hosting: deltapack serve on loopback"
"$bin" serve "$work/repo" --addr 127.0.0.1:0 --quiet > "$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q http "$work/serve.log" 2>/dev/null && break; sleep 0.05; done
url=$(awk '{print $NF}' "$work/serve.log")
echo "repository at $url"

step "the app: settings in a config file"
cfg="$work/update.toml"
"$bin" config set repository "$url" --config "$cfg"
"$bin" config set public_keys "$(cat "$work/release.pub")" --config "$cfg"
"$bin" config set platform linux-x86_64 --config "$cfg"
"$bin" config set install_dir "$work/app" --config "$cfg"

step "install 1.0.0 (full bundle)"
"$bin" update install --to 1.0.0 --config "$cfg"
"$work/app/current/bin/sample-app"

step "check, then update through deltas"
"$bin" update check --config "$cfg"
"$bin" update install --config "$cfg"
"$work/app/current/bin/sample-app"
"$work/app/current/bin/sample-app" 5 turbo_mode

step "history and status"
"$bin" update history --config "$cfg"
"$bin" update status --config "$cfg"

step "roll back"
"$bin" update rollback --config "$cfg"
"$work/app/current/bin/sample-app"

step "doctor"
"$bin" doctor --config "$cfg"
