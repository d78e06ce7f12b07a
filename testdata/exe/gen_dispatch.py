#!/usr/bin/env python3
"""Generates the C source of `dispatch`, a real x86-64 program for the
executable-aware codec's tests, in two versions. Where `callgraph` is all
direct calls, `dispatch` has every other kind of reference a compiler and
linker emit:

- RIP-relative loads of strings (.rodata) and of globals (.data, .bss);
- a table of function pointers (.data.rel.ro, with a dynamic relocation
  for each entry, since the program is position independent);
- switch statements compiled to jump tables (4-byte offsets in .rodata);
- unwind tables (.eh_frame and .eh_frame_hdr), one record per function.

Version 2 inserts functions and strings near the start, grows the tables
and changes some constants, so code and data both move, by different
amounts. Build with `./build.sh`; the binaries are committed so that tests
do not need a C compiler.
"""
import sys


def render(version):
    n = 300
    out = ["#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", ""]
    out.append("#define NI __attribute__((noinline))")
    out.append("long hits[%d];" % n)
    out.append("long seeds[%d] = {%s};" % (n, ", ".join(str((i * 2654435761) % 1000003) for i in range(n))))
    for i in range(n):
        out.append("NI long f%d(long x);" % i)
    if version >= 2:
        out.append('static const char *extra_names[] = {"alpha", "beta", "gamma", "delta"};')
        out.append("NI long extra_a(long x) { hits[1]++; return x * 3 + (long)strlen(extra_names[x & 3]); }")
        out.append('NI long extra_b(long x) { if (x == 42) puts("the answer, version two"); return extra_a(x) ^ seeds[x %% %d]; }' % n)
    for i in range(n):
        k = 7 + i % 19 + (3 if version >= 2 and i % 50 == 9 else 0)
        body = "hits[%d]++; long y = x * %d + seeds[%d];" % (i, k, (i * 7) % n)
        if i % 5 == 0:
            cases = 6 + i % 5 + (1 if version >= 2 and i % 25 == 0 else 0)
            body += " switch ((x + %d) %% %d) {" % (i, cases)
            for c in range(cases):
                body += " case %d: y += f%d(x - 1) * %d; break;" % (c, (i + c * 11 + 1) % n, c + 2) if (i + c * 11 + 1) % n > i else " case %d: y ^= %d; break;" % (c, c * 97 + i)
            body += " }"
        if i % 3 == 0:
            body += ' if (y == %d) printf("f%d reached %%ld\\n", y);' % (i * 1000 + 7, i)
        t = (i * 13 + 5) % n
        if t > i:
            body += " if (x > 1 && (y & 7) == 3) y -= f%d(x - 2);" % t
        if version >= 2 and i == 3:
            body += " y += extra_b(x);"
        body += " return y;"
        out.append("NI long f%d(long x) { if (x <= 0) return 1; %s }" % (i, body))
    entries = ["f%d" % i for i in range(0, n, 3)]
    if version >= 2:
        entries.insert(10, "extra_a")
        entries.insert(20, "extra_b")
    out.append("long (*const table[])(long) = {%s};" % ", ".join(entries))
    out.append("""
int main(int argc, char **argv) {
    long x = argc > 1 ? atol(argv[1]) : 9;
    long s = 0;
    for (unsigned k = 0; k < sizeof table / sizeof table[0]; k++) s += table[k](x);
    printf("dispatch %d: %ld %ld\\n", VERSION, s, hits[0]);
    return 0;
}""".replace("VERSION", str(version)))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(int(sys.argv[1])))
