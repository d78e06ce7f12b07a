#!/usr/bin/env bash
# Rebuilds the sample app binaries in testdata/example from gen.py.
set -euo pipefail
cd "$(dirname "$0")"
for v in 1 2 3; do
  python3 gen.py "$v" > /tmp/sample-app-v$v.c
  gcc -O2 -fno-asynchronous-unwind-tables -o "../example/v$v/bin/sample-app" /tmp/sample-app-v$v.c
  strip "../example/v$v/bin/sample-app"
done
