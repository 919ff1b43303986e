"""``generate``: simulate the synthetic world and write every file format to ``out/``.

Layout written (all deterministic for a given seed; the header DateTime is derived from the
year, never the clock)::

    out/cin/cin_<year>_<la>.xml                     CIN census return per LA per census year
    out/cla/ssda903_<year>_<la>_header.csv          SSDA903 Header
    out/cla/ssda903_<year>_<la>_episodes.csv        SSDA903 Episodes
    out/npd/npd_pupils_<year>.csv                   NPD pupil extract per academic year
    out/population/population_<year>.csv            0-17 population, mid-year <year>
    out/truth/*.parquet, summary.json[, mess.json]  ground truth for tests (raw synthetic IDs)

Truth covers every episode still open on 1 April of the year before the first census year
(``truth_window_start`` in summary.json); history before it (burn-in) is summarised in the
episode columns (previous_cpps, previous_referral_date, rereferral_12m) and in
persons.first_need_referral_date. ``latent_*`` columns hold the simulated values beyond the
data end (closure dates, CPP start) and the planted model's latent times.

Only these five sub-folders are (re)created; anything else under ``out`` is left alone.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from cinresearch.synth import mess as mess_mod
from cinresearch.synth.cin_writer import render_children, return_tables, write_returns
from cinresearch.synth.cla_writer import write_cla
from cinresearch.synth.npd_writer import write_npd
from cinresearch.synth.params import DEFAULT_PARAMS, SynthParams
from cinresearch.synth.population import write_population
from cinresearch.synth.simulate import SynthWorld, simulate

SUBFOLDERS = ("cin", "cla", "npd", "population", "truth")


@dataclass
class SynthSummary:
    """What :func:`generate` wrote (counts, sizes, timings)."""

    out: Path
    la_codes: list[str]
    years: tuple[int, int]
    scale: int
    seed: int
    mess: bool
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    referrals_by_year: dict[int, int] = field(default_factory=dict)
    children_in_cin_returns: dict[int, int] = field(default_factory=dict)
    n_episodes: int = 0
    n_children: int = 0
    mess_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["referrals_by_year"] = {str(k): v for k, v in self.referrals_by_year.items()}
        d["children_in_cin_returns"] = {str(k): v for k, v in self.children_in_cin_returns.items()}
        return d


def _log(progress: bool):
    def log(message: str) -> None:
        if progress:
            print(f"synth: {message}", file=sys.stderr, flush=True)

    return log


def generate(
    out: Path,
    las: int = 10,
    years: tuple[int, int] = (2018, 2024),
    scale: int = 2000,
    seed: int = 1,
    mess: bool = False,
    progress: bool = True,
    params: SynthParams = DEFAULT_PARAMS,
) -> SynthSummary:
    """Simulate ``las`` LAs for census years ``years`` (inclusive, end years) and write them.

    ``scale`` ≈ referrals per LA per year (England ≈ 152 × 4,300). ``mess=True`` adds the
    documented data problems (see :mod:`cinresearch.synth.mess`). Same arguments → byte-identical
    files.
    """
    started = time.perf_counter()
    log = _log(progress)
    out = Path(out)
    for sub in SUBFOLDERS:
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    out.mkdir(parents=True, exist_ok=True)

    world = simulate(las=las, years=years, scale=scale, seed=seed, params=params, log=log)
    summary = SynthSummary(
        out=out,
        la_codes=world.las["la_code"].to_list(),
        years=years,
        scale=scale,
        seed=seed,
        mess=mess,
        n_episodes=world.episodes.height,
        n_children=world.la_children.height,
    )
    t0 = time.perf_counter()
    written: dict[str, list[Path]] = {k: [] for k in ("cin", "cla", "npd", "population", "truth")}
    mess_records: list[dict] = []
    truncated: list[str] = []
    for year in range(years[0], years[1] + 1):
        tables = return_tables(world, year)
        dups = None
        if mess:
            tables, dups, records = mess_mod.mess_return(
                tables, np.random.default_rng([seed, 50, year])
            )
            mess_records += records
        xml = render_children(tables)
        if dups is not None:
            xml = mess_mod.add_duplicates(xml, dups)
        written["cin"] += write_returns(xml, out, year)
        written["cla"] += write_cla(world, out, year)
        summary.children_in_cin_returns[year] = xml.height
        summary.referrals_by_year[year] = world.episodes.filter(
            pl.col("referral_date").dt.year().cast(pl.Int32)
            + (pl.col("referral_date").dt.month() >= 4).cast(pl.Int32)
            == year
        ).height
        log(f"census year {year}: {xml.height} children in CIN returns")
    if mess:
        last = years[1]
        source = out / "cin" / f"cin_{last}_{summary.la_codes[0]}.xml"
        target = mess_mod.write_truncated(source)
        written["cin"].append(target)
        truncated.append(target.name)
    summary.timings["write cin+cla"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    written["npd"] = write_npd(world.npd, out, years)
    written["population"] = write_population(world.population, out)
    summary.timings["write npd+population"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    written["truth"] = write_truth(world, out)
    if mess:
        counts = {k: sum(r["kind"] == k for r in mess_records) for k in mess_mod.KINDS}
        counts["truncated_xml"] = len(truncated)
        summary.mess_counts = counts
        mess_json = {
            "rates": mess_mod.MESS_RATES,
            "counts": counts,
            "truncated_files": truncated,
            "records": mess_records,
        }
        path = out / "truth" / "mess.json"
        path.write_text(json.dumps(mess_json, indent=1, sort_keys=True))
        written["truth"].append(path)
    summary.timings["write truth"] = round(time.perf_counter() - t0, 3)
    summary.timings.update({f"simulate {k}": v for k, v in world.timings.items()})

    for kind, paths in written.items():
        summary.files[kind] = len(paths)
        summary.bytes[kind] = sum(p.stat().st_size for p in paths)
    summary.seconds = round(time.perf_counter() - started, 3)
    # summary.json: deterministic content only (no timings)
    stable = summary.to_json()
    for key in ("seconds", "timings", "out"):
        stable.pop(key)
    stable["bytes"].pop("truth", None)
    stable["files"].pop("truth", None)
    stable["data_end"] = world.data_end.isoformat()
    stable["simulation_start"] = world.sim_start.isoformat()
    stable["truth_window_start"] = world.window_start.isoformat()
    stable["params"] = _params_json(world.params)
    (out / "truth" / "summary.json").write_text(json.dumps(stable, indent=1, sort_keys=True))
    log(f"done in {summary.seconds:.1f}s")
    return summary


def _params_json(params: SynthParams) -> dict:
    raw = asdict(params)
    return json.loads(
        json.dumps(raw, default=lambda o: list(o) if isinstance(o, tuple) else str(o))
    )


def write_truth(world: SynthWorld, out: Path) -> list[Path]:
    """Ground-truth parquet files (raw synthetic identifiers; never loaded into a store)."""
    folder = out / "truth"
    folder.mkdir(parents=True, exist_ok=True)
    children = world.la_children.join(world.persons, on="person_id", how="left").sort(
        ["la_code", "la_child_id"]
    )
    frames = {
        "episodes": world.episodes,
        "children": children,
        "persons": world.persons,
        "las": world.las,
        "assessments": world.assessments,
        "section47": world.section47,
        "cin_plans": world.cin_plans,
        "cp_plans": world.cp_plans,
        "cpp_reviews": world.cpp_reviews,
        "care_periods": world.care_periods,
        "cla_episodes": world.cla_episodes,
    }
    if world.npd is not None:
        frames["npd"] = world.npd
    if world.pre_proceedings is not None and world.data_end.year >= 2026:
        frames["pre_proceedings"] = world.pre_proceedings
    paths = []
    for name, frame in frames.items():
        path = folder / f"{name}.parquet"
        frame.write_parquet(path, statistics=False)
        paths.append(path)
    return paths
