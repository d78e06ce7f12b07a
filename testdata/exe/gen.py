#!/usr/bin/env python3
"""Generates the C source of `callgraph`, a real x86-64 program for the
executable-aware codec's tests: 400 small functions that call each other
directly (so the binary is full of `call rel32` and `jcc rel32`), in two
versions. Version 2 inserts two functions near the start and changes a few
constants, so the compiler and linker move almost all code, as a real
release does. Build with `./build.sh`; the binaries are committed so that
tests do not need a C compiler.
"""
import sys

def render(version):
    n = 400
    out = ["#include <stdio.h>", "#include <stdlib.h>", ""]
    out.append("#define NI __attribute__((noinline))")
    for i in range(n):
        out.append("NI long g%d(long x);" % i)
    if version >= 2:
        out.append("NI long extra_a(long x) { long s = 0; for (long k = 0; k < (x & 31); k++) s += k * k ^ x; return s; }")
        out.append("NI long extra_b(long x) { return extra_a(x + 3) * 5 - (x >> 2); }")
    for i in range(n):
        a, b, c = (i * 7 + 1) % n, (i * 13 + 5) % n, (i * 31 + 11) % n
        k = 17 + i % 23 + (2 if version >= 2 and i % 60 == 7 else 0)
        body = "long y = x * %d + %d;" % (k, i)
        body += " if (x > 0 && (y & 3) == 0) y += g%d(x - 1);" % a if a > i else " y ^= %d;" % (i * 3)
        body += " if (x > 1 && (y & 5) == 1) y -= g%d(x - 2);" % b if b > i else ""
        if version >= 2 and i == 5:
            body += " y += extra_b(x);"
        body += " return y + (x > 2 ? g%d(x / 2) : 1);" % c if c > i else " return y;"
        out.append("NI long g%d(long x) { %s }" % (i, body))
    out.append("""
int main(int argc, char **argv) {
    long x = argc > 1 ? atol(argv[1]) : 9;
    printf("callgraph %d: %ld\\n", VERSION, g0(x));
    return 0;
}""".replace("VERSION", str(version)))
    return "\n".join(out) + "\n"

if __name__ == "__main__":
    sys.stdout.write(render(int(sys.argv[1])))
