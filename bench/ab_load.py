"""A/B benchmark: CIN XML load time of two source trees on the same file, interleaved.

Usage: python bench/ab_load.py --baseline /path/to/old/checkout [--children 100000] [--rounds 3]

Each round loads the file once with the baseline tree and once with this tree (alternating
which goes first), each in a fresh process (``PYTHONPATH`` set to the tree), and records wall
and CPU seconds (user + system of the child process). Interleaving makes both sides see the
same machine load, so the CPU-time ratio is the figure to quote on a busy machine. The file is
the one ``bench/load_cin_xml.py`` writes and caches. Results are printed, not appended.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOAD = (
    "import sys; from cinresearch.io.cin import read_cin_xml;"
    "from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser;"
    "r = read_cin_xml(sys.argv[1], Pseudonymiser(DEMO_KEY));"
    "print(r.tables['children'].height)"
)


def _run(tree: Path, path: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from load_cin_xml import make_file  # the cached benchmark return

    path = make_file(args.children)
    sides = {"baseline": args.baseline.resolve(), "this tree": ROOT}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            wall, cpu, children = _run(sides[name], path)
            times[name].append((wall, cpu))
            print(f"round {r + 1} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {children} children")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name}: median {wall:.1f} s wall, {cpu:.1f} s CPU over {len(runs)} runs")
    base = statistics.median(c for _, c in times["baseline"])
    ours = statistics.median(c for _, c in times["this tree"])
    print(f"CPU time ratio this/baseline: {ours / base:.2f} on {path.name}, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
