#!/usr/bin/env python3
"""Generates the C source of the sample app in three versions.

The sample app is a small but real program (a few hundred functions, a
table of strings, a dispatch table of function pointers) so that version 2,
which inserts a function and changes a few constants, moves code around the
way a real release does; version 3 adds another function further on.
Build with `./build.sh`; the binaries are committed
in testdata/example so that tests do not need a C compiler.
"""
import sys

def render(version):
    out = ["#include <stdio.h>", "#include <string.h>", "#include <stdlib.h>", ""]
    n = 240
    out.append('static const char *VERSION = "%s";' % {1: "1.0.0", 2: "1.1.0", 3: "1.2.0"}[version])
    names = []
    for i in range(n):
        if version >= 2 and i == 37:
            out.append("static long fresh_feature(long x) { long s = 0; for (long k = 0; k < x; k++) s += (k * 7) ^ (x >> 1); return s + 12345; }")
            names.append("fresh_feature")
        if version >= 3 and i == 150:
            out.append("static long turbo_mode(long x) { long s = 1; for (long k = 1; k <= (x & 15); k++) s = s * 3 + k; return s; }")
            names.append("turbo_mode")
        mul = 31 + (i % 17)
        if version >= 2 and i % 50 == 3:
            mul += 2
        out.append(
            "static long f%d(long x) { long a = x * %d + %d; if (a %% 3 == 0) a ^= 0x%x; for (int k = 0; k < (int)(x & 7); k++) a += k * %d; return a; }"
            % (i, mul, i * 13, (i * 2654435761) & 0xffff, i + 1)
        )
        names.append("f%d" % i)
    out.append("typedef long (*fn)(long);")
    out.append("static fn TABLE[] = {%s};" % ", ".join(names))
    out.append("static const char *NAMES[] = {%s};" % ", ".join('"%s"' % s for s in names))
    out.append("""
int main(int argc, char **argv) {
    long x = argc > 1 ? atol(argv[1]) : 42;
    long acc = 0;
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++) acc += TABLE[i](x + (long)i);
    if (argc > 2) {
        for (size_t i = 0; i < sizeof(NAMES) / sizeof(NAMES[0]); i++)
            if (strcmp(NAMES[i], argv[2]) == 0) { printf("%s(%ld) = %ld\\n", NAMES[i], x, TABLE[i](x)); return 0; }
        fprintf(stderr, "no such function: %s\\n", argv[2]);
        return 1;
    }
    printf("sample-app %s: checksum %ld\\n", VERSION, acc);
    return 0;
}""")
    return "\n".join(out) + "\n"

if __name__ == "__main__":
    sys.stdout.write(render(int(sys.argv[1])))
