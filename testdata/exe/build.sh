#!/usr/bin/env bash
# Rebuilds callgraph-v1 and callgraph-v2 from gen.py (needs gcc).
set -euo pipefail
cd "$(dirname "$0")"
for v in 1 2; do
  python3 gen.py $v > /tmp/callgraph-$v.c
  gcc -O2 -fno-inline -fno-asynchronous-unwind-tables -s -o callgraph-v$v /tmp/callgraph-$v.c
done
