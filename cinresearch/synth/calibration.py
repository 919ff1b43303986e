"""Calibration of the synthetic generator against DfE's 2017-18 England figures.

End to end (the check that matters): :func:`run_pipeline` generates CIN XML returns and
population CSVs, loads them, builds journeys and computes the national indicators;
:func:`compare` checks them against ``data_contracts/reference/national_figures_2018.csv``
with the targets and size-scaled tolerances of ``data_contracts/calibration_2018.yaml``
(``z * SE + relative model tolerance + rounding``; binomial SE for shares, Poisson for rates).
Used by ``tests/test_calibration_end_to_end.py`` and when re-tuning
:mod:`cinresearch.synth.params`.

Ground truth (a re-tuning aid): :func:`measures` computes measures from the simulated world
itself, nothing censored by a return. Definitions follow cin_census.md §5 for census year
``Y`` (window 1 April Y-1 .. 31 March Y):

* referrals: episodes with ``referral_date`` in the window (NFA included); rates per 10,000
  use the mid-year Y-1 0–17 population;
* CIN at 31 March: referral on/before 31 March, not closed by then, not NFA; age at 31 March;
* S47 / ICPC / CPP starts / completed assessments: start (or ICPC / authorisation) date in
  the window; working days exclude weekends and England bank holidays;
* CPP ending duration bands: ``end - start`` days ≤91, 92–182, 183–364, 365–729, ≥730;
* episodes of need exclude NFA referrals and cases closed after assessment (RC8/RC9);
* assessed not in need: the referral's eventual closure is RC8/RC9, even after the year (so
  higher than a return shows for the year).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from cinresearch.synth import dates as D
from cinresearch.synth.params import DEFAULT_PARAMS, DISABILITY_TYPE_SHARES, SynthParams

SOURCE_GROUPS = {
    "1A": "individual", "1B": "individual", "1C": "individual", "1D": "individual",
    "2A": "schools", "2B": "education_services",
    "3A": "health", "3B": "health", "3C": "health", "3D": "health", "3E": "health", "3F": "health",
    "4": "housing", "5A": "la_services", "5B": "la_services", "5C": "la_services",
    "5D": "la_services", "6": "police", "7": "other_legal", "8": "other", "9": "anonymous",
    "10": "unknown",
}  # fmt: skip
AGE_BAND_ORDER = ["unborn", "under 1", "1-4", "5-9", "10-15", "16+"]


def _duration_band(days: pl.Expr, edges: tuple[int, ...], names: list[str]) -> pl.Expr:
    expr = pl.lit(names[-1])
    for edge, name in reversed(list(zip(edges, names[:-1], strict=True))):
        expr = pl.when(days <= edge).then(pl.lit(name)).otherwise(expr)
    return expr


def _shares(
    frame: pl.DataFrame, col: str, prefix: str, levels: list[str] | None = None
) -> dict[str, float]:
    counts = frame.group_by(col).len()
    total = counts["len"].sum()
    got = dict(zip(counts[col].to_list(), counts["len"].to_list(), strict=True))
    keys = levels if levels is not None else sorted(k for k in got if k is not None)
    return {f"{prefix}.{k}": 100.0 * got.get(k, 0) / total for k in keys}


def measures(world, census_year: int = 2018) -> dict[str, float]:
    """Measure name → value for one census year (percentages in %, ratios as fractions)."""
    ref = date(census_year, 3, 31)
    start = date(census_year - 1, 4, 1)
    ep = world.episodes.join(
        world.persons.select("person_id", "birth_date", "disabilities"), on="person_id", how="left"
    )
    pop = world.population.filter(pl.col("year") == census_year - 1)["population"].sum()
    out: dict[str, float] = {}

    refs = ep.filter(pl.col("referral_date").is_between(start, ref))
    n_ref = refs.height
    out["referral_rate_per_10k"] = 1e4 * n_ref / pop
    out["nfa_pct"] = 100 * refs["referral_nfa"].mean()
    out["rereferral_12m_pct"] = 100 * refs["rereferral_12m"].mean()
    out["children_referred_per_referral"] = (
        refs.select(pl.struct("person_id", "la_code").n_unique()).item() / n_ref
    )
    out["assessed_not_in_need_pct"] = (
        100 * refs["latent_closure_reason"].is_in(["RC8", "RC9"]).mean()
    )
    out.update(
        _shares(
            refs.with_columns(g=pl.col("referral_source").replace_strict(SOURCE_GROUPS)),
            "g",
            "referral_source",
        )
    )

    cin = (
        ep.filter(
            (pl.col("referral_date") <= ref)
            & (pl.col("closure_date").is_null() | (pl.col("closure_date") > ref))
            & ~pl.col("referral_nfa")
        )
        .with_columns(
            age_at_ref=pl.lit(ref).dt.year()
            - pl.col("birth_date").dt.year()
            - (
                (
                    pl.col("birth_date").dt.month().cast(pl.Int32) * 100
                    + pl.col("birth_date").dt.day().cast(pl.Int32)
                )
                > 331
            ).cast(pl.Int32),
            unborn=pl.col("birth_date") > ref,
        )
        .with_columns(
            band=pl.when(pl.col("unborn"))
            .then(pl.lit("unborn"))
            .when(pl.col("age_at_ref") < 1)
            .then(pl.lit("under 1"))
            .when(pl.col("age_at_ref") < 5)
            .then(pl.lit("1-4"))
            .when(pl.col("age_at_ref") < 10)
            .then(pl.lit("5-9"))
            .when(pl.col("age_at_ref") < 16)
            .then(pl.lit("10-15"))
            .otherwise(pl.lit("16+"))
        )
    )
    n_cin = cin.height
    out["cin_31_march_per_referral"] = n_cin / n_ref
    out["cin_rate_per_10k"] = 1e4 * n_cin / pop
    out.update(_shares(cin, "band", "cin_age", AGE_BAND_ORDER))
    out["cin_male_pct"] = 100 * ((cin["sex"] == "M") & ~cin["unborn"]).mean()
    out["cin_disabled_pct"] = 100 * cin["disabled"].mean()
    dis = cin.filter(pl.col("disabled"))
    for code in DISABILITY_TYPE_SHARES:
        out[f"disability_type.{code}"] = 100 * dis["disabilities"].list.contains(code).mean()
    out.update(_shares(cin, "primary_need", "primary_need"))
    dur = (pl.lit(ref) - pl.col("referral_date")).dt.total_days()
    bands = ["<=3m", "3-6m", "6-12m", "1-2y", "2y+"]
    out.update(
        _shares(
            cin.with_columns(b=_duration_band(dur, (91, 182, 365, 730), bands)),
            "b",
            "cin_open_duration",
            bands,
        )
    )

    need_ending = ep.filter(
        pl.col("closure_date").is_between(start, ref)
        & ~pl.col("referral_nfa")
        & ~pl.col("closure_reason").is_in(["RC8", "RC9"])
    )
    dur_end = (pl.col("closure_date") - pl.col("referral_date")).dt.total_days()
    out.update(
        _shares(
            need_ending.with_columns(b=_duration_band(dur_end, (91, 182, 365, 730), bands)),
            "b",
            "episode_ending_duration",
            bands,
        )
    )
    out.update(_shares(need_ending, "closure_reason", "closure_reason"))

    s47 = world.section47
    n_s47 = s47.filter(pl.col("s47_start").is_between(start, ref)).height
    icpc = s47.filter(pl.col("icpc_date").is_between(start, ref))
    cpp = world.cp_plans
    cpp_starts = cpp.filter(pl.col("cpp_start").is_between(start, ref))
    out["s47_per_referral"] = n_s47 / n_ref
    out["icpc_per_s47"] = icpc.height / n_s47
    out["cpp_starts_per_icpc"] = cpp_starts.height / icpc.height
    out["cpp_starts_per_referral"] = cpp_starts.height / n_ref
    wd = D.working_days_between(
        icpc["s47_start"].cast(pl.Int32).to_numpy(), icpc["icpc_date"].cast(pl.Int32).to_numpy()
    )
    out["icpc_within_15wd_pct"] = 100 * float(np.mean(wd <= 15))
    out.update(_shares(cpp_starts, "initial_category", "cpp_category"))
    out["cpp_second_or_subsequent_pct"] = 100 * (cpp_starts["previous_cpps"] >= 1).mean()
    on_plan = cpp.filter(
        (pl.col("cpp_start") <= ref) & (pl.col("cpp_end").is_null() | (pl.col("cpp_end") > ref))
    )
    out["cpp_31_march_per_referral"] = on_plan.height / n_ref
    ending = cpp.filter(pl.col("cpp_end").is_between(start, ref)).with_columns(
        b=_duration_band(
            (pl.col("cpp_end") - pl.col("cpp_start")).dt.total_days(), (91, 182, 364, 729), bands
        )
    )
    out.update(_shares(ending, "b", "cpp_ending_duration", bands))

    done = world.assessments.filter(pl.col("assessment_authorised").is_between(start, ref))
    awd = D.working_days_between(
        done["assessment_start"].cast(pl.Int32).to_numpy(),
        done["assessment_authorised"].cast(pl.Int32).to_numpy(),
    )
    out["assessment_median_wd"] = float(np.median(awd))
    out["assessment_within_45wd_pct"] = 100 * float(np.mean(awd <= 45))
    out["assessments_per_referral"] = done.height / n_ref

    cla = world.cla_episodes
    cla_start = cla.filter((pl.col("rne") == "S") & pl.col("decom").is_between(start, ref))
    cla_open = cla.filter(
        (pl.col("decom") <= ref) & (pl.col("dec").is_null() | (pl.col("dec") > ref))
    )
    out["cla_starts_per_referral"] = cla_start.height / n_ref
    out["cla_31_march_per_referral"] = (
        cla_open.select(pl.struct("la_code", "la_child_id").n_unique()).item() / n_ref
    )
    return out


# ---------------------------------------------------------------------------------------------
# End to end: synth -> XML -> load -> journeys -> indicators, against the published figures
# ---------------------------------------------------------------------------------------------

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "data_contracts"
SPEC_PATH = CONTRACTS_DIR / "calibration_2018.yaml"
CHECK_COLUMNS = (
    "target", "kind", "census_year", "measure", "breakdown", "level",
    "published", "simulated", "n", "se", "tolerance", "ok",
)  # fmt: skip


def load_spec(path: Path | str | None = None) -> dict[str, Any]:
    """The calibration spec (``data_contracts/calibration_2018.yaml``)."""
    return yaml.safe_load(Path(path or SPEC_PATH).read_text(encoding="utf-8"))


def published_figures(spec: Mapping[str, Any], path: Path | str | None = None) -> pl.DataFrame:
    """The published 2017-18 England figures (``measure, breakdown, value, unit, source``)."""
    csv = Path(path) if path is not None else CONTRACTS_DIR / spec["published"]
    return pl.read_csv(csv, infer_schema_length=0).with_columns(pl.col("value").cast(pl.Float64))


def run_pipeline(
    root: Path,
    *,
    las: int,
    scale: int,
    seed: int,
    years: tuple[int, int],
    params: SynthParams = DEFAULT_PARAMS,
) -> pl.DataFrame:
    """Generate ``years`` into ``root/synth``, load it into ``root/store`` with the demo key,
    build journeys and return the national indicator rows for every census year."""
    from cinresearch.indicators import compute_indicators
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.pseudonymise import load_key
    from cinresearch.store import Store
    from cinresearch.synth.generate import generate

    root = Path(root)
    generate(
        root / "synth", las=las, years=years, scale=scale, seed=seed, progress=False, params=params
    )
    store = Store(root / "store")
    report = load_paths([root / "synth"], store, load_key(demo=True), progress=False)
    if report.failed:
        raise RuntimeError(f"synthetic load failed: {[o.message for o in report.failed]}")
    build_journeys(store, progress=False)
    return compute_indicators(store, list(range(years[0], years[1] + 1)), geography=("national",))


def _rows(ind: pl.DataFrame, year: int, measure: str, breakdown: str) -> pl.DataFrame:
    return ind.filter(
        (pl.col("census_year") == year)
        & (pl.col("measure") == measure)
        & (pl.col("breakdown") == breakdown)
    )


def _one(ind: pl.DataFrame, year: int, measure: str, breakdown: str, level: str) -> dict:
    rows = _rows(ind, year, measure, breakdown).filter(pl.col("breakdown_level") == level)
    if rows.height != 1:
        raise KeyError(f"indicator {measure}[{breakdown}={level}] {year}: {rows.height} rows")
    return rows.row(0, named=True)


def _published_value(pub: pl.DataFrame, measure: str, breakdown: str) -> float:
    rows = pub.filter((pl.col("measure") == measure) & (pl.col("breakdown") == breakdown))
    if rows.height != 1:
        raise KeyError(f"published {measure} {breakdown}: {rows.height} rows")
    return float(rows["value"][0])


def share_tolerance(
    published_pct: float, n: float, tolerance: Mapping[str, Any], rounding: float
) -> tuple[float, float]:
    """(SE, tolerance) in percentage points for a share published as ``published_pct`` % and
    simulated on ``n`` units: ``z * SE + relative * min(p, 100 - p) + rounding``, binomial SE."""
    p = published_pct / 100
    se = 100 * float(np.sqrt(max(p * (1 - p), 0.0) / n)) if n > 0 else float("inf")
    model = float(tolerance["share"]["relative"]) * min(published_pct, 100 - published_pct)
    return se, float(tolerance["z"]) * se + model + rounding


def rate_tolerance(
    published_rate: float, population: float, relative: float, tolerance: Mapping[str, Any]
) -> tuple[float, float]:
    """(SE, tolerance) per 10,000 for a rate simulated on ``population`` children: Poisson SE of
    the count expected at the published rate, ``z * SE + relative * rate + rounding``."""
    expected = published_rate * population / 1e4
    se = published_rate / float(np.sqrt(expected)) if expected > 0 else float("inf")
    model = relative * published_rate
    return se, float(tolerance["z"]) * se + model + float(tolerance["rounding"])


def calibration_params(
    spec: Mapping[str, Any], params: SynthParams = DEFAULT_PARAMS
) -> SynthParams:
    """``params`` with the calibration run's year multipliers (spec ``run.year_multiplier``)."""
    years = {**params.year_multiplier, **{int(k): float(v) for k, v in spec["run"].get("year_multiplier", {}).items()}}  # fmt: skip
    return replace(params, year_multiplier=years)


def compare(
    indicators: pl.DataFrame,
    census_year: int,
    spec: Mapping[str, Any] | None = None,
    published: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per calibration target: published and simulated values, tolerance and ``ok``.

    ``indicators`` are national rows from :func:`cinresearch.indicators.compute_indicators`,
    checked for ``census_year``; targets that need the previous year's return are skipped when
    that year is not in ``indicators``. Tolerances (spec ``tolerance``): ``z * SE + model +
    rounding`` — binomial SE for shares (percent), Poisson SE for rates per 10,000, a fixed
    number of working days for quantiles.
    """
    spec = spec if spec is not None else load_spec()
    pub = published if published is not None else published_figures(spec)
    tol = spec["tolerance"]
    rounding = float(tol["rounding"])
    has_previous = (indicators["census_year"] == census_year - 1).any()
    out: list[dict[str, Any]] = []
    for t in spec["targets"]:
        if t.get("needs_previous_year") and not has_previous:
            continue
        year = census_year
        kind = t["kind"]
        base = {"target": t["published"], "kind": kind, "census_year": year}
        base["measure"] = t["measure"]
        if kind == "rate":
            row = _one(indicators, year, t["measure"], "total", "Total")
            if t.get("from") == "count":
                pop = _one(indicators, year, "referrals_rate", "total", "Total")["denominator"]
                value = 1e4 * row["value"] / pop
            else:
                pop, value = row["denominator"], row["value"]
            target = _published_value(pub, t["published"], "England")
            rel = tol.get("rate_overrides", {}).get(t["published"], tol["rate"]["relative"])
            se, limit = rate_tolerance(target, pop, float(rel), tol)
            out.append(
                {**base, "breakdown": "total", "level": "Total", "published": target,
                 "simulated": value, "n": target * pop / 1e4, "se": se, "tolerance": limit}
            )  # fmt: skip
        elif kind == "quantile":
            row = _one(indicators, year, t["measure"], "total", "Total")
            target = _published_value(pub, t["published"], "England")
            out.append(
                {**base, "breakdown": "total", "level": "Total", "published": target,
                 "simulated": row["value"], "n": row["denominator"], "se": 0.0,
                 "tolerance": float(tol["quantile"]["absolute"])}
            )  # fmt: skip
        else:
            out.extend(_share_checks(indicators, pub, t, year, base, rounding, tol))
    frame = pl.DataFrame(out).with_columns(
        ok=(pl.col("simulated") - pl.col("published")).abs() <= pl.col("tolerance")
    )
    return frame.select(CHECK_COLUMNS)


def _share_checks(
    ind: pl.DataFrame,
    pub: pl.DataFrame,
    t: Mapping[str, Any],
    year: int,
    base: dict[str, Any],
    rounding: float,
    tol: Mapping[str, Any],
) -> list[dict[str, Any]]:
    breakdown = t.get("breakdown", "total")
    levels = t.get("levels") or {"England": t.get("level", "Total")}
    if t.get("from") == "counts":
        pub_counts = {k: _published_value(pub, t["published"], k) for k in levels}
        pub_total = sum(pub_counts.values())
        sim_counts = {
            lv: float(_one(ind, year, t["measure"], breakdown, lv)["value"])
            for lv in levels.values()
        }
        sim_total = sum(sim_counts.values())
        targets = {k: 100 * v / pub_total for k, v in pub_counts.items()}
        values = {lv: 100 * c / sim_total if sim_total else float("nan") for lv, c in sim_counts.items()}  # fmt: skip
        n = {lv: sim_total for lv in levels.values()}
        rnd = 0.0  # shares of published counts: the count rounding is negligible
    else:
        targets = {k: _published_value(pub, t["published"], k) for k in levels}
        rows = {lv: _one(ind, year, t["measure"], breakdown, lv) for lv in levels.values()}
        values = {lv: r["value"] for lv, r in rows.items()}
        n = {lv: r["denominator"] for lv, r in rows.items()}
        rnd = rounding
    out = []
    for key, level in levels.items():
        p = targets[key]
        se, limit = share_tolerance(p, float(n[level]), tol, rnd)
        out.append(
            {**base, "breakdown": breakdown, "level": level, "published": p,
             "simulated": values[level], "n": float(n[level]), "se": se, "tolerance": limit}
        )  # fmt: skip
    return out
