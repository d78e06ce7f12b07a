#!/usr/bin/env bash
# Rebuilds callgraph-v1/-v2 from gen.py, dispatch-v1/-v2 and
# dispatch-arm64-v1/-v2 from gen_dispatch.py (needs gcc and
# gcc-aarch64-linux-gnu). The committed binaries were built with Debian's
# gcc 12.2; another compiler gives other (equally valid) bytes.
set -euo pipefail
cd "$(dirname "$0")"
for v in 1 2; do
  python3 gen.py $v > /tmp/callgraph-$v.c
  gcc -O2 -fno-inline -fno-asynchronous-unwind-tables -s -o callgraph-v$v /tmp/callgraph-$v.c
done
for v in 1 2; do
  python3 gen_dispatch.py $v > /tmp/dispatch-$v.c
  gcc -O2 -fno-inline -fpie -pie -s -o dispatch-v$v /tmp/dispatch-$v.c
done
for v in 1 2; do
  aarch64-linux-gnu-gcc -O2 -fno-inline -fpie -pie -s -Wl,-z,max-page-size=4096 \
    -o dispatch-arm64-v$v /tmp/dispatch-$v.c
done
