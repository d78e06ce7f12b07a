#!/usr/bin/env python3
"""HDiffPatch through its PyPI wrapper (`pip install hdiffpatch`), as a
command line for the comparison harness:

    hdiff.py diff OLD NEW PATCH {lzma2,zstd}
    hdiff.py apply OLD PATCH OUT

The settings mirror `hdiffz -m` with `-c-lzma2-9-16m` or `-c-zstd-21-24`.
The wrapper works in memory, so its peak RSS includes the interpreter and
whole inputs; hpatchz's own streaming apply uses less.
"""
import sys

import hdiffpatch


def main():
    cmd = sys.argv[1]
    if cmd == "diff":
        old, new, patch, codec = sys.argv[2:6]
        if codec == "lzma2":
            cfg = hdiffpatch.Lzma2Config(level=9, window=24)
        else:
            cfg = hdiffpatch.ZStdConfig(level=21, window=24)
        data = hdiffpatch.diff(open(old, "rb").read(), open(new, "rb").read(), cfg, validate=False)
        open(patch, "wb").write(data)
    elif cmd == "apply":
        old, patch, out = sys.argv[2:5]
        open(out, "wb").write(hdiffpatch.apply(open(old, "rb").read(), open(patch, "rb").read()))
    else:
        sys.exit("usage: hdiff.py diff|apply ...")


if __name__ == "__main__":
    main()
