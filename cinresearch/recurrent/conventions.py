"""End reasons, column lists and method names of the recurrent-event analysis.

Part of :mod:`cinresearch.recurrent`.
"""

from __future__ import annotations

import polars as pl

from cinresearch.codes import AGE_BANDS

Frame = pl.DataFrame | pl.LazyFrame

END_REFERRAL = "referral"
END_DIED = "terminal: died"
END_TURNED_18 = "terminal: 18th birthday"
END_LEFT_LA = "censored: left LA"
END_DATA_END = "censored: data end"

#: Columns of :attr:`ReferralHistory.frame`, in order (covariates from the first referral).
HISTORY_COLUMNS = (
    "subject_id",
    "child_id",
    "la_code",
    "origin_date",
    "enum",
    "tstart",
    "tstop",
    "gap",
    "event",
    "terminal",
    "end_reason",
    "start_date",
    "stop_date",
    "n_previous",
    "first_referral_year",
    "age_band",
    "age_at_origin",
    "disabled",
    "sex",
    "ethnicity_group",
    "primary_need",
    "referral_source",
)
#: Columns of a :func:`mean_cumulative` curve.
CURVE_COLUMNS = (
    "group",
    "time",
    "estimate",
    "lower",
    "upper",
    "std_error",
    "at_risk",
    "events",
    "terminal",
    "censored",
)
METHODS = ("ghosh_lin", "nelson_aalen")
ALL_GROUP = "All"  # the same labels as cinresearch.survival's curves
MISSING_GROUP = "Missing"

_COVARIATES: dict[str, pl.DataType] = {
    "age_band": pl.Enum(list(AGE_BANDS)),
    "age_at_origin": pl.Int16(),
    "disabled": pl.Boolean(),
    "sex": pl.String(),
    "ethnicity_group": pl.String(),
    "primary_need": pl.String(),
    "referral_source": pl.String(),
}
