"""Exploratory fuzzing of the compiled CIN reader (not run in CI).

Usage: .venv/bin/python bench/fuzz_cinfast.py [--seconds 120] [--runs N] [--seed 7] [--compare]
                                              [--whole]

Mutates two small returns at random (inserted, deleted and replaced bytes, among them NUL, CR
and invalid UTF-8; truncations; copied spans) and feeds each to ``_cinfast.parse``. A crash is
the failure this looks for; run it under ``valgrind -q`` (with ``PYTHONMALLOC=malloc`` and a
small ``--runs``) to look for invalid reads and writes. With ``--compare`` (slower), every
mutation either fast reader accepts is also parsed by lxml and must give the same frames —
the differential version of the hypothesis test in ``tests/test_cin_xml_columnar.py``.
With ``--whole``, the whole return (declaration, header, children) is mutated and loaded with
``read_cin_xml`` by each reader; tables, rejects, reconciliation or the file-level error
message must be the same as the sequential lxml load's (``tests/test_cin_xml_whole_file.py``).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from cinresearch.io import _cinfast
from cinresearch.io.cin import native, parallel, polars_reader

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


def _compare(data: bytes, scratch: Path) -> int:
    """Parse with both fast readers; any accepted result must equal lxml's. Returns accepts."""
    from polars.testing import assert_frame_equal

    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    results = {
        "compiled": native.parse_children(data),
        "polars": polars_reader.parse_children(text) if text is not None else None,
    }
    accepted = {name: r for name, r in results.items() if r is not None}
    if not accepted:
        return 0
    scratch.write_bytes(data)
    reference = parallel._parse_range_lxml(str(scratch), 0, len(data), "")
    for name, result in accepted.items():
        if not reference["ok"]:
            raise SystemExit(f"{name} reader accepted what lxml rejects: {data!r}")
        for table, frame in reference["frames"].items():
            assert_frame_equal(result["frames"][table], frame)
        for key in ("counts", "children", "episodes", "cpps", "newlines", "strays"):
            if result[key] != reference[key]:
                raise SystemExit(f"{name} reader differs from lxml on {key}: {data!r}")
    return len(accepted)


def _compare_whole(data: bytes, scratch: Path) -> int:
    """Load a mutated whole return with each reader; all must equal the lxml load. 1 if loaded."""
    from polars.testing import assert_frame_equal

    from cinresearch.io.cin import CIN_TABLES, read_cin_xml
    from cinresearch.io.errors import InputFileError
    from cinresearch.pseudonymise import Pseudonymiser

    key = Pseudonymiser(b"fuzz-key-not-secret")
    scratch.write_bytes(data)

    def load(column_wise: bool) -> object:
        try:
            return read_cin_xml(scratch, key, workers=1, columnar=column_wise)
        except InputFileError as err:
            return str(err)

    reference = load(False)
    saved = native._cinfast
    try:
        for name in ("compiled", "polars"):
            if name == "polars":
                native._cinfast = None
            result = load(True)
            if isinstance(reference, str) or isinstance(result, str):
                if result != reference:
                    raise SystemExit(f"{name}: {result!r} != lxml {reference!r}: {data!r}")
                continue
            for table in CIN_TABLES:
                assert_frame_equal(result.tables[table], reference.tables[table])
            assert_frame_equal(result.rejects, reference.rejects)
            assert_frame_equal(result.reconciliation, reference.reconciliation)
    finally:
        native._cinfast = saved
    return 0 if isinstance(reference, str) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=0, help="stop after this many (0: by time)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", action="store_true", help="check accepted text against lxml")
    parser.add_argument("--whole", action="store_true", help="mutate and load whole returns")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fuzz_cinfast_")) / "mutant.xml"
    sources = [_children(ROOT / "tests/fixtures/cin/cin_2024_minimal.xml")]
    bench = ROOT / "bench/cache/cin_bench_1000.xml"
    if bench.exists():
        sources.append(_children(bench)[:20_000].rsplit(b"</Child>", 1)[0] + b"</Child>")
    if args.whole:
        sources = [(ROOT / "tests/fixtures/cin/cin_2024_minimal.xml").read_bytes()]
        sources.append(sources[0].replace(b"<Message>", b'<Message xmlns="urn:x">'))
    rng = random.Random(args.seed)
    runs = accepted = 0
    started = time.monotonic()
    while (args.runs and runs < args.runs) or (
        not args.runs and time.monotonic() - started < args.seconds
    ):
        data = _mutate(rng.choice(sources), rng)
        if args.whole:
            accepted += _compare_whole(data, scratch)
        elif args.compare:
            accepted += _compare(data, scratch)
        else:
            accepted += _cinfast.parse(data) is not None
        runs += 1
    shutil.rmtree(scratch.parent, ignore_errors=True)
    same = "; every accepted result equals lxml's" if args.compare or args.whole else ""
    print(f"{runs:,} mutated inputs, {accepted:,} accepted, no crash{same}")


if __name__ == "__main__":
    main()
