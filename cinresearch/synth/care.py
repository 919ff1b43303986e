"""Looked-after periods → SSDA903 episodes (placement changes within a period of care).

A period of care starts when a child becomes looked after (after a CPP ends, or during a CIN
episode without a plan) and ends with the exit drawn in the simulation (home, adoption, SGO,
child arrangements order, 18th birthday, other). Inside it, placement changes arrive at
``placement_change_rate_per_year``; each change starts a new 903 episode (RNE P/B/L/T/U) and
the previous one ceases with REC ``X1``. The last episode's REC follows the exit.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cinresearch.synth import dates as D
from cinresearch.synth.arrays import NA, str_series
from cinresearch.synth.arrays import pick_codes as _pick
from cinresearch.synth.las import postcode_area
from cinresearch.synth.params import (
    CLA_LS_START,
    CLA_PLACE,
    CLA_REASON_PLACE_CHANGE,
    DEFAULT_PARAMS,
)


def _s(values: np.ndarray, name: str) -> pl.Series:
    """String column with "" → null."""
    values = np.asarray(values).astype(str)
    return str_series(values, name, values == "")


def _days(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Int32).fill_null(NA).to_numpy().astype(np.int64)


def cla_episodes_frame(rng: np.random.Generator, care: pl.DataFrame, sim_end: int) -> pl.DataFrame:
    """One row per SSDA903 episode (true history up to the data end; DEC null if open)."""
    n = care.height
    start = _days(care["care_start"])
    end = _days(care["latent_care_end"])
    years = np.maximum(end - start, 1) / 365.25
    k = 1 + np.minimum(rng.poisson(DEFAULT_PARAMS.placement_change_rate_per_year * years), 5)
    adopted = care["care_exit"].to_numpy() == "adopted"
    k = np.where(adopted, np.maximum(k, 2), k)
    row = np.repeat(np.arange(n), k)
    first = np.r_[0, np.cumsum(k)[:-1]]
    pos = np.arange(len(row)) - np.repeat(first, k)
    last = pos == np.repeat(k - 1, k)

    # change days: sorted uniforms inside the period; the adoption placement starts late
    u = rng.random(len(row))
    u = np.where(pos == 0, 0.0, u)
    frame = pl.DataFrame({"row": row, "pos": pos, "u": u}).sort(["row", "u"])
    u_sorted = frame["u"].to_numpy()
    length = np.maximum(end[row] - start[row], 1)
    decom = start[row] + np.floor(u_sorted * length).astype(np.int64)
    adopt_last = adopted[row] & last
    decom = np.where(
        adopt_last, np.maximum(decom, end[row] - rng.integers(90, 300, len(row))), decom
    )
    # strictly increasing within a period: running max of (decom - pos) per period, + pos
    shift = row.astype(np.int64) * 10**7
    decom = np.maximum.accumulate(decom - pos + shift) - shift + pos
    valid = (decom < end[row]) | (pos == 0)
    # drop placements that would start at/after the period end; the chain closes over them
    keep_rows = np.flatnonzero(valid)
    row, pos, decom = row[keep_rows], pos[keep_rows], decom[keep_rows]
    adopt_last = adopt_last[keep_rows]
    last = np.r_[row[1:] != row[:-1], True]
    dec = np.r_[decom[1:], NA]
    dec = np.where(last, end[row], dec)

    rne = np.where(
        pos == 0, "S", _pick(rng, {"P": 0.55, "B": 0.15, "L": 0.15, "U": 0.1, "T": 0.05}, len(row))
    )
    rne = np.where(adopt_last, np.where(rng.random(len(row)) < 0.5, "B", "T"), rne)
    ls_start = _pick(rng, CLA_LS_START, len(row))
    ls_change = _pick(rng, {"C2": 0.6, "C1": 0.2, "E1": 0.1, "V2": 0.1}, len(row))
    ls = np.where(pos == 0, ls_start, np.where(np.isin(rne, ["L", "B", "T"]), ls_change, ""))
    ls = np.where(adopt_last, "E1", ls)
    place = _pick(rng, CLA_PLACE, len(row))
    place = np.where(adopt_last, np.where(rng.random(len(row)) < 0.5, "A5", "A6"), place)
    place = np.where(rne == "L", "", place)  # legal status change only: same placement
    provider = np.select(
        [
            np.char.startswith(place, "U"),
            np.isin(place, ["K2", "R1", "H5", "S1"]),
            place == "P1",
            np.char.startswith(place, "A"),
        ],
        [
            np.where(rng.random(len(row)) < 0.6, "PR1", "PR4"),
            np.where(rng.random(len(row)) < 0.7, "PR4", "PR1"),
            "PR0",
            "PR1",
        ],
        default=np.where(rng.random(len(row)) < 0.5, "PR3", "PR5"),
    )
    provider = np.where(place == "", "", provider)
    urn = np.where(
        np.isin(place, ["K2", "R1", "H5", "S1"]),
        np.char.add("SC", rng.integers(100000, 999999, len(row)).astype(str)),
        "XXXXXXX",
    )
    urn = np.where(place == "", "", urn)

    exit_type = care["care_exit"].to_numpy()[row]
    dec_cy = D.census_year_of(np.where(dec == NA, 0, dec))
    sgo = np.where(
        dec_cy <= 2018,
        _pick(rng, {"E43": 0.5, "E44": 0.5}, len(row)),
        _pick(rng, {"E45": 0.4, "E46": 0.1, "E47": 0.3, "E48": 0.2}, len(row)),
    )
    final_rec = np.select(
        [
            exit_type == "home",
            exit_type == "adopted",
            exit_type == "sgo",
            exit_type == "cao",
            exit_type == "18",
        ],
        [
            np.where(rng.random(len(row)) < 0.85, "E4A", "E4B"),
            np.where(rng.random(len(row)) < 0.7, "E11", "E12"),
            sgo,
            "E41",
            _pick(rng, {"E17": 0.3, "E5": 0.3, "E6": 0.1, "E8": 0.3}, len(row)),
        ],
        default=np.where(rng.random(len(row)) < 0.5, "E13", "E8"),
    )
    rec = np.where(last, final_rec, "X1")
    reason_change = np.where(
        np.isin(rne, ["P", "B", "T", "U"]), _pick(rng, CLA_REASON_PLACE_CHANGE, len(row)), ""
    )

    area_of = {code: postcode_area(code) for code in care["la_code"].unique().to_list()}
    areas = care["la_code"].replace_strict(area_of).to_numpy().astype(str)
    home_post = np.char.add(
        np.char.add(areas.astype(str), rng.integers(1, 30, n).astype(str)),
        np.char.add(" ", rng.integers(0, 10, n).astype(str)),
    )[row]
    pl_post = np.where(
        rng.random(len(row)) < 0.7,
        np.char.add(
            np.char.add(areas[row].astype(str), rng.integers(1, 30, len(row)).astype(str)),
            np.char.add(" ", rng.integers(0, 10, len(row)).astype(str)),
        ),
        np.char.add(
            np.array(["B", "M", "LS", "S", "NG", "L"])[rng.integers(0, 6, len(row))],
            np.char.add(rng.integers(1, 30, len(row)).astype(str), " 1"),
        ),
    )
    pl_post = np.where(place == "P1", home_post, pl_post)
    pl_post = np.where(place == "", "", pl_post)

    need = care["primary_need"].fill_null("N1").to_numpy()[row]
    need = np.where(np.isin(need, ["N0", "N9"]), "N1", need)

    dec_obs = np.where((dec == NA) | (dec > sim_end), NA, dec)
    out = pl.DataFrame(
        {
            "episode_id": care["episode_id"].to_numpy()[row],
            "person_id": care["person_id"].to_numpy()[row],
            "la_code": care["la_code"].to_numpy()[row],
            "la_child_id": care["la_child_id"].to_numpy()[row],
            "period": row,
            "seq": pos,
            "decom": pl.Series(decom.astype(np.int32)).cast(pl.Date),
            "rne": rne.astype(str),
            "ls": _s(ls, "ls"),
            "cin": need.astype(str),
            "place": _s(place, "place"),
            "place_provider": _s(provider, "place_provider"),
            "dec": pl.Series(np.ma.masked_array(dec_obs.astype(np.int32), dec_obs == NA)).cast(
                pl.Date
            ),
            "rec": _s(np.where(dec_obs == NA, "", rec), "rec"),
            "reason_place_change": _s(reason_change, "reason_place_change"),
            "home_post": home_post.astype(str),
            "pl_post": _s(pl_post, "pl_post"),
            "urn": _s(urn, "urn"),
        }
    )
    # legal status / placement carried forward when unchanged by this episode
    out = out.filter(pl.col("decom") <= D.to_date_series(np.array([sim_end]))[0]).with_columns(
        pl.col("ls").forward_fill().over("period"),
        pl.col("place").forward_fill().over("period"),
        pl.col("place_provider").forward_fill().over("period"),
        pl.col("pl_post").forward_fill().over("period"),
        pl.col("urn").forward_fill().over("period"),
    )
    return out.sort(["la_code", "la_child_id", "decom"])
