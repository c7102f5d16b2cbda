#!/usr/bin/env python3
"""Writes a newc cpio initramfs: /init (the given static program) and /dev/console.
Usage: mkcpio.py INIT_BINARY OUT.cpio (no cpio tool needed)."""
import sys

def entry(out, ino, name, mode, data=b"", rmaj=0, rmin=0):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))

with open(sys.argv[1], "rb") as f:
    init = f.read()
with open(sys.argv[2], "wb") as out:
    entry(out, 1, "dev", 0o040755)
    entry(out, 2, "dev/console", 0o020600, rmaj=5, rmin=1)
    entry(out, 3, "init", 0o100755, init)
    entry(out, 0, "TRAILER!!!", 0)
