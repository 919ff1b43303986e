"""Speed limits for reading a CIN XML return: bare ``lxml.etree.iterparse`` and a plain disk read.

``iterparse``: stream the file with lxml, stopping only at ``<Child>`` end events (the same
filter ``cinresearch.io.cin.lxml_reader`` uses), clearing each child and dropping finished
siblings so memory stays flat; nothing is extracted. No Python reader built on lxml can beat this.

``read``: read the bytes with a 16 MiB buffer and discard them (``cat > /dev/null``).
``--cold`` first asks the kernel to drop the file from the page cache
(``posix_fadvise(DONTNEED)``), so the read comes from storage; without it the read usually
comes from the page cache (the file was just written or read).

Usage: python bench/baselines/floor.py iterparse|read FILE [--cold]  (prints one JSON line)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from lxml import etree


def bare_iterparse(path: str) -> int:
    """Count ``<Child>`` elements with lxml iterparse, clearing as we go."""
    n = 0
    with open(path, "rb") as handle:
        for _event, elem in etree.iterparse(
            handle, events=("end",), tag="Child", resolve_entities=False, load_dtd=False
        ):
            n += 1
            elem.clear(keep_tail=False)
            parent = elem.getparent()
            while elem.getprevious() is not None:
                del parent[0]
    return n


def read_bytes(path: str, cold: bool) -> int:
    """Read the whole file in 16 MiB chunks and discard it; returns the byte count."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if cold and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        total = 0
        buf = bytearray(16 << 20)
        view = memoryview(buf)
        while True:
            n = os.readv(fd, [view])
            if not n:
                break
            total += n
        return total
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["iterparse", "read"])
    parser.add_argument("file")
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.what == "iterparse":
        result = {"children": bare_iterparse(args.file)}
    else:
        result = {"bytes": read_bytes(args.file, args.cold), "cold": args.cold}
    seconds = time.perf_counter() - t0
    result.update(
        seconds=round(seconds, 3),
        peak_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
