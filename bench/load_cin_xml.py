"""Benchmark: load one large CIN census XML return; record wall time and peak memory.

Usage: python bench/load_cin_xml.py [--children 1000000] [--file PATH]

Without --file it writes (and caches in bench/cache/) a return with the requested number of
children, built from a small mix of realistic child shapes with varied ids and dates, so the
benchmark does not depend on the synthetic generator. The load runs in a child process so
its peak RSS is measured alone; results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Message><Header><CollectionDetails><Collection>CIN</Collection>'
    "<Year>2018</Year><ReferenceDate>2018-03-31</ReferenceDate></CollectionDetails><Source><SourceLevel>L</SourceLevel>"
    "<LEA>201</LEA><SoftwareCode>bench</SoftwareCode><Release>1</Release><SerialNo>001</SerialNo>"
    "<DateTime>2018-04-20T09:00:00</DateTime></Source></Header><Children>\n"
)


def _child(i: int) -> str:
    start = date(2017, 4, 1) + timedelta(days=i % 360)
    d = lambda n: (start + timedelta(days=n)).isoformat()  # noqa: E731
    birth = date(2005, 1, 1) + timedelta(days=(i * 37) % 4500)
    ident = (
        f"<Child><ChildIdentifiers><LAchildID>B{i:08d}</LAchildID><UPNunknown>UN5</UPNunknown>"
        f"<PersonBirthDate>{birth.isoformat()}</PersonBirthDate><GenderCurrent>{1 + i % 2}</GenderCurrent>"
        f"</ChildIdentifiers><ChildCharacteristics><Ethnicity>WBRI</Ethnicity><Disabilities>"
        f"<Disability>{'NONE' if i % 8 else 'LD'}</Disability></Disabilities></ChildCharacteristics>"
    )
    kind = i % 10
    episode = (
        f"<CINdetails><CINreferralDate>{d(0)}</CINreferralDate><ReferralSource>6</ReferralSource>"
    )
    if kind == 0:  # NFA referral
        return (
            ident
            + episode
            + (
                f"<CINclosureDate>{d(2)}</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure>"
                "<ReferralNFA>true</ReferralNFA></CINdetails></Child>\n"
            )
        )
    closing = (
        f"<CINclosureDate>{d(60)}</CINclosureDate><ReasonForClosure>RC7</ReasonForClosure>"
        if start < date(2018, 1, 1)
        else ""
    )
    assessment = (
        f"<Assessments><AssessmentActualStartDate>{d(1)}</AssessmentActualStartDate>"
        f"<AssessmentAuthorisationDate>{d(30)}</AssessmentAuthorisationDate><FactorsIdentifiedAtAssessment>"
        "<AssessmentFactors>3A</AssessmentFactors><AssessmentFactors>4B</AssessmentFactors>"
        "</FactorsIdentifiedAtAssessment></Assessments>"
    )
    s47 = (
        f"<Section47><S47ActualStartDate>{d(2)}</S47ActualStartDate><InitialCPCtarget>{d(23)}</InitialCPCtarget>"
        f"<DateOfInitialCPC>{d(20)}</DateOfInitialCPC><ICPCnotRequired>false</ICPCnotRequired></Section47>"
        if kind >= 7
        else ""
    )
    cpp = (
        f"<ChildProtectionPlans><CPPstartDate>{d(20)}</CPPstartDate><CPPendDate>{d(60)}</CPPendDate>"
        "<InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse><LatestCategoryOfAbuse>NEG</LatestCategoryOfAbuse>"
        f"<NumberOfPreviousCPP>0</NumberOfPreviousCPP><Reviews><CPPreviewDate>{d(40)}</CPPreviewDate></Reviews>"
        "</ChildProtectionPlans>"
        if kind == 9 and closing
        else ""
    )
    return (
        ident
        + episode
        + "<PrimaryNeedCode>N1</PrimaryNeedCode>"
        + closing
        + assessment
        + s47
        + "<ReferralNFA>false</ReferralNFA>"
        + cpp
        + "</CINdetails></Child>\n"
    )


def make_file(children: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"cin_bench_{children}.xml"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(children):
            handle.write(_child(i))
        handle.write("</Children></Message>\n")
    tmp.replace(path)
    return path


def _measure(path: Path) -> None:
    """Run in a subprocess: load and print JSON timings."""
    import threading

    import psutil

    from cinresearch.io.cin import read_cin_xml
    from cinresearch.pseudonymise import load_key

    tree_peak = [0]

    def sample() -> None:  # resident memory of this process and its parse workers, together
        me = psutil.Process()
        while True:
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            tree_peak[0] = max(tree_peak[0], total)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    load = read_cin_xml(path, load_key(demo=True))
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # parse workers (one file is cut into ranges parsed in parallel): largest worker's peak;
    # the upper bound on memory in use at once is parent + workers x this
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "peak_mb": round(peak_mb),
                "worker_peak_mb": round(worker_mb),
                "tree_peak_mb": round(tree_peak[0] / 2**20),
                "workers": min(os.cpu_count() or 1, 4),
                "children": load.tables["children"].height,
                "referrals": load.tables["referrals"].height,
                "balanced": load.counts()["balanced"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure)
        return
    path = args.file or make_file(args.children)
    size_mb = path.stat().st_size / 1e6
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    line = (
        f"| {date.today()} | CIN XML load (`read_cin_xml`) | {path.name} ({size_mb:,.0f} MB, "
        f"{result['children']:,} children, {result['referrals']:,} episodes) | {result['seconds']} s | "
        f"{result['tree_peak_mb']:,} MB all processes together (sampled every 50 ms; parent {result['peak_mb']:,} MB, each of {result['workers']} parse workers ≤ {result['worker_peak_mb']:,} MB) | load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()} |"
    )
    print(line)
    results = HERE / "RESULTS.md"
    if not results.exists():
        results.write_text(
            "# Benchmark results\n\nAppend-only; each row is one measured run.\n\n"
            "| date | stage | data | wall time | peak RSS | machine |\n|---|---|---|---|---|---|\n"
        )
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
