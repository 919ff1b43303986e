"""The ``cinresearch`` command line: synth → load → build → report.

Each command is one stage of the pipeline; each reads and writes the store, so any stage can be
re-run alone. Run ``cinresearch COMMAND --help`` for what a command does and its options.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help=(
        "Research toolkit for England's Children in Need census and linked data.\n\n"
        "Typical run on synthetic data:\n\n"
        "  cinresearch synth --out data/synth --las 10 --years 2018-2024 --seed 1\n\n"
        "  cinresearch load data/synth --store data/store --demo-key\n\n"
        "  cinresearch build --store data/store\n\n"
        "  cinresearch report --store data/store --year 2024 --out reports/2024"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _error(message: str) -> None:
    """One plain line on stderr: no wrapping and no markup, whatever the message contains."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def _years(text: str) -> tuple[int, int]:
    try:
        if "-" in text:
            start, end = (int(x) for x in text.split("-", 1))
        else:
            start = end = int(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected YEAR or FIRST-LAST (e.g. 2018-2024), got {text!r}"
        ) from None
    if start > end:
        raise typer.BadParameter(f"first year {start} is after last year {end}")
    return start, end


@app.command()
def load(
    paths: list[Path] = typer.Argument(
        ..., help="CIN XML returns, SSDA903/NPD/population CSVs, or folders of them."
    ),
    store: Path = typer.Option(..., "--store", help="Store folder (created if missing)."),
    demo_key: bool = typer.Option(
        False,
        "--demo-key",
        help="Use the public demo pseudonymisation key. For synthetic data only; real data needs "
        "CINRESEARCH_KEY or CINRESEARCH_KEY_FILE.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Re-load files already in the store unchanged, and let a file replace a return an "
        "earlier load kept for the same LA and year even if that one's header DateTime is later.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Load input files into the store: validate, pseudonymise, quarantine bad records.

    Each file's kind is recognised from its content. Identifiers are replaced by keyed hashes
    before anything is written. Records that break a rule go to the `rejects` table with file,
    line, rule and message; the rest of the file still loads. A file that is not readable at all
    (truncated, not XML, wrong root) is reported and leaves the store as it was; the command then
    exits with status 1. Loading the same file again changes nothing.

    The summary also says what the loader decided: header notes (e.g. DfE rule 100), rejects a
    wrong header explains, elements the CIN schema does not have (path and count; never values),
    and superseded returns: of two returns for one LA and year the one with the later header
    DateTime is kept, whatever the order of the files.
    """
    from cinresearch.io.loader import load_paths
    from cinresearch.pseudonymise import KeyError_, load_key
    from cinresearch.store import Store, StoreBusyError

    try:
        key = load_key(demo=demo_key)
    except KeyError_ as err:
        _error(str(err))
        raise typer.Exit(2) from None
    try:
        report = load_paths(paths, Store(store), key, progress=not quiet)
    except (FileNotFoundError, StoreBusyError) as err:
        _error(str(err))
        raise typer.Exit(2) from None
    _print_load_report(report, store)
    _say(f"load report saved to {store / 'reports' / 'load_report.json'}")
    for outcome in report.failed:
        _error(outcome.message)
    if report.failed:
        raise typer.Exit(1)


#: files described in full in the load summary; beyond that only files with notes
LOAD_DETAIL_FILES = 20


def _say(text: str, indent: int = 0) -> None:
    """One line on stderr as given: no markup, no highlighting, and no wrapping inserted by rich
    (a long file name stays whole however narrow the terminal)."""
    console.print(" " * indent + text, markup=False, highlight=False, soft_wrap=True)


def _print_load_report(report: object, store: Path) -> None:
    """The load summary: per file, its status, counts and everything the loader decided.

    Each file gets its own block (the name on a line of its own, so it stays readable at 80
    columns); then totals. Files with notes, superseded returns and unrecognised elements are
    always shown, up to twice :data:`LOAD_DETAIL_FILES`; the rest are in the load report.
    """
    outcomes = report.outcomes
    _say(f"Load report — {store}")
    shown = 0
    for number, outcome in enumerate(outcomes, start=1):
        if outcome.status == "failed":
            continue  # failures are the error lines at the end
        if shown >= LOAD_DETAIL_FILES and not (
            outcome.noteworthy and shown < 2 * LOAD_DETAIL_FILES
        ):
            continue
        shown += 1
        counts = outcome.counts
        _say(f"[{number}] {outcome.file}")
        facts = [outcome.status, outcome.kind or "-"]
        if counts:
            rows = sum(counts.get("rows", {}).values())
            facts += [
                f"{rows:,} rows" + ("" if outcome.status == "loaded" else " read"),
                f"{counts.get('rejected', 0):,} rejected",
                f"{counts.get('flagged', 0):,} flagged",
                "reconciled" if counts.get("balanced") else "NOT RECONCILED",
            ]
        _say("; ".join(facts), 4)
        if outcome.message:
            _say(outcome.message, 4)
        for note in outcome.header_notes:
            _say(f"header: {note}", 4)
        for text in outcome.explanations:
            _say(f"explains rejects: {text}", 4)
        for row in outcome.unrecognised:
            _say(
                f"unrecognised element: {row['path']} x{row['count']} "
                f"(first at line {row['first_line']}; not loaded)",
                4,
            )
        if outcome.replaces and outcome.status == "loaded":
            _say(f"replaces {outcome.replaces}: {outcome.reason}", 4)
    hidden = sum(1 for o in outcomes if o.status != "failed") - shown
    if hidden > 0:
        _say(f"… and {hidden} more files (details in the load report)")
    order = ("loaded", "unchanged", "superseded", "failed", "skipped")
    by_status = {status: sum(1 for o in outcomes if o.status == status) for status in order}
    status_text = ", ".join(f"{n} {status}" for status, n in by_status.items() if n)
    n_unrecognised = sum(row["count"] for o in outcomes for row in o.unrecognised)
    n_notes = sum(len(o.header_notes) for o in outcomes)
    _say(
        f"{len(outcomes)} files: {status_text}; {n_notes} header notes; "
        f"{n_unrecognised} unrecognised elements (table unrecognised_elements)"
    )
    for outcome in report.superseded:
        _say(f"superseded: {outcome.file} by {outcome.superseded_by} ({outcome.reason})")


@app.command()
def synth(
    out: Path = typer.Option(
        Path("data/synth"), "--out", help="Output folder for the generated files."
    ),
    las: int = typer.Option(10, "--las", help="Number of local authorities (up to 152)."),
    years: str = typer.Option(
        "2018-2024", "--years", help="Census years, e.g. 2018-2024 (2018 = 2017-18)."
    ),
    scale: int = typer.Option(
        2000, "--scale", help="Referrals per LA per year, roughly (national ≈ 4,300)."
    ),
    seed: int = typer.Option(1, "--seed", help="Random seed: same seed, same files."),
    mess: bool = typer.Option(
        False, "--mess", help="Add realistic faults for testing the loaders."
    ),
) -> None:
    """Generate synthetic linked data in the real formats (CIN XML, SSDA903, NPD, population).

    Calibrated to the published 2017-18 national figures, with planted effects documented in
    data_contracts/synth_effects.yaml so that analyses can be checked against known answers.
    """
    from cinresearch.synth import generate

    first, last = _years(years)
    summary = generate(out, las=las, years=(first, last), scale=scale, seed=seed, mess=mess)
    files = ", ".join(f"{n} {kind}" for kind, n in summary.files.items())
    size_mb = sum(summary.bytes.values()) / 1e6
    console.print(
        f"wrote synthetic data to {out}: {files} files, {size_mb:,.0f} MB; "
        f"{summary.n_episodes:,} episodes of {summary.n_children:,} children in "
        f"{len(summary.la_codes)} LAs, census years {first}-{last} (seed {seed}); "
        f"planted effects: data_contracts/synth_effects.yaml",
        markup=False,
        highlight=False,
    )


@app.command()
def build(
    store: Path = typer.Option(..., "--store", help="Store folder that `cinresearch load` wrote."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
) -> None:
    """Build journeys: merge annual returns into episodes, events and linked outcomes.

    Writes the derived tables (episodes, events, children_longitudinal, merge_audit, link
    reports) into the store and a reconciliation report into <store>/reports/build_report.json.
    """
    from cinresearch.journeys import build_journeys
    from cinresearch.store import Store, StoreBusyError

    if not (store / "manifest.json").exists():
        _error(f"{store} is not a store (no manifest.json): run `cinresearch load` first")
        raise typer.Exit(2)
    try:
        with Store(store).writer_lock() as st:
            report = build_journeys(st, progress=not quiet)
    except StoreBusyError as err:
        _error(str(err))
        raise typer.Exit(2) from None
    table = Table(title=f"Journeys built — {store}")
    table.add_column("derived table")
    table.add_column("rows", justify="right")
    for name, rows in report.outputs.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    failed = [c["check"] for c in report.checks if not c["ok"]]
    console.print(
        f"{len(report.checks)} reconciliation checks, {len(failed)} failed; "
        f"{sum(report.timings_s.values()):.1f} s; details in {store / 'reports' / 'build_report.json'}",
        markup=False,
        highlight=False,
    )
    if failed:
        _error(f"reconciliation failed: {', '.join(failed)}")
        raise typer.Exit(1)


@app.command()
def report(
    store: Path = typer.Option(..., "--store", help="Store with built journeys."),
    year: int = typer.Option(..., "--year", help="Census year of the report (2024 = 2023-24)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default reports/<year>)."),
    la: list[str] = typer.Option(
        None, "--la", help="LA code for a benchmarking pack; repeat, or 'all'."
    ),
    suppression: int = typer.Option(
        5, "--suppression-threshold", help="Counts 1..N are suppressed."
    ),
    revised: bool = typer.Option(
        False,
        "--revised",
        help="Official figures revised with later returns (labelled 'revised'); default: each "
        "year from its own return, as DfE publishes them.",
    ),
) -> None:
    """Run the notebooks with papermill and render the annual report as HTML + EES CSVs."""
    from cinresearch.report.runner import build_report

    target = out or Path("reports") / str(year)
    index = build_report(
        store=store,
        year=year,
        out=target,
        las=la or [],
        suppression_threshold=suppression,
        indicator_basis="revised" if revised else "as_returned",
    )
    console.print(f"[green]report:[/] {index}")


@app.command()
def rejects(
    store: Path = typer.Option(..., "--store", help="Store folder."),
    limit: int = typer.Option(20, "--limit", help="Rows to show per rule."),
) -> None:
    """Summarise quarantined and flagged records by table and rule."""
    import polars as pl

    from cinresearch.store import Store

    frame = Store(store).read("rejects")
    summary = (
        frame.group_by("table", "rule", "action", "message").len().sort("len", descending=True)
    )
    table = Table(title=f"Rejects — {store}")
    for column in ("table", "rule", "action", "message", "records"):
        table.add_column(column)
    for row in summary.head(limit).iter_rows():
        table.add_row(*[str(v) for v in row])
    console.print(table)
    console.print(
        f"{frame.filter(pl.col('action') == 'reject_record').height} rejected, "
        f"{frame.filter(pl.col('action') == 'drop_value').height} with a value dropped, "
        f"{frame.filter(pl.col('action') == 'flag').height} flagged"
    )


if __name__ == "__main__":  # pragma: no cover
    app()
