"""Exploratory fuzzing of the compiled CIN reader (not run in CI).

Usage: .venv/bin/python bench/fuzz_cinfast.py [--seconds 120] [--runs N] [--seed 7]

Mutates two small returns at random (inserted, deleted and replaced bytes, among them NUL, CR
and invalid UTF-8; truncations; copied spans) and feeds each to ``_cinfast.parse``. A crash is
the failure this looks for; run it under ``valgrind -q`` (with ``PYTHONMALLOC=malloc`` and a
small ``--runs``) to look for invalid reads and writes. Whether accepted text reads as lxml
reads it is checked in CI by ``tests/test_cin_xml_columnar.py``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from cinresearch.io import _cinfast

ROOT = Path(__file__).resolve().parent.parent
ALPHABET = b'<>/&="\n\r\t !?AZaz09\x00\x80\xbf\xef\xff'


def _children(path: Path) -> bytes:
    text = path.read_bytes()
    return text[text.index(b"<Child>") : text.rindex(b"</Child>") + len(b"</Child>")]


def _mutate(source: bytes, rng: random.Random) -> bytes:
    data = bytearray(source)
    for _ in range(rng.randint(1, 8)):
        op, at = rng.random(), rng.randrange(len(data) + 1)
        if op < 0.3:
            data[at:at] = bytes([rng.choice(ALPHABET)])
        elif op < 0.5:
            del data[at : at + rng.randint(1, 30)]
        elif op < 0.7 and at < len(data):
            data[at] = rng.choice(ALPHABET)
        elif op < 0.85:
            del data[at:]
        else:
            start = rng.randrange(len(data) + 1)
            data[at:at] = data[start : start + rng.randint(1, 60)]
    return bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=0, help="stop after this many (0: by time)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sources = [_children(ROOT / "tests/fixtures/cin/cin_2024_minimal.xml")]
    bench = ROOT / "bench/cache/cin_bench_1000.xml"
    if bench.exists():
        sources.append(_children(bench)[:20_000].rsplit(b"</Child>", 1)[0] + b"</Child>")
    rng = random.Random(args.seed)
    runs = accepted = 0
    started = time.monotonic()
    while (args.runs and runs < args.runs) or (
        not args.runs and time.monotonic() - started < args.seconds
    ):
        accepted += _cinfast.parse(_mutate(rng.choice(sources), rng)) is not None
        runs += 1
    print(f"{runs:,} mutated inputs, {accepted:,} accepted, no crash")


if __name__ == "__main__":
    main()
