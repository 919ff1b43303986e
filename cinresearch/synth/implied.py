"""Known answers: what the generator's parameters imply for an analysis of the generated data.

**Cumulative risk of a first referral by age for a birth cohort**
(:func:`first_referral_risk`), the answer :func:`cinresearch.lifetime.birth_cohort_risk` should
recover for the event "referral". It follows from three planted pieces of the generator,
computed here from the parameters alone (no simulation):

* *First referrals* (:func:`cinresearch.synth.simulate._first_referrals`): in financial year
  ``y`` England has ``scale × n_las × year_multiplier[y] / referral_amplification`` first
  referrals (Poisson), spread over the months by ``month_shares`` and uniformly within a month
  (the move of 85% of weekend referrals to the Monday is ignored: it shifts a date by at most two
  days).
* *Age at first referral* (:func:`cinresearch.synth.simulate._make_persons`): a band from
  ``first_referral_age_band``, then the age in days uniform within it: unborn 30-250 days before
  birth; under 1 in the first 30 days (40%) or days 31-364 (60%); 1-4, 5-9, 10-15 uniform over
  the band's years; 16+ up to 25 days before the 18th birthday. The birth date is the referral
  date less the whole days of that age.
* *Population* (:mod:`cinresearch.synth.population`): England's 0-17 population at mid-2017 is
  ``scale × n_las / 0.05525 × population_scale`` (LA populations are built from the referral
  rate 552.5 per 10,000), growing by 0.55% a year, by single year of age in ``AGE_SHARES`` and
  51.2% boys.

So per child of the population, first referrals arrive at a known daily rate, and the expected
number of children of cohort ``b`` (born 1 April ``b-1`` to 31 March ``b``) first referred at
completed age ``a`` (age 0 including before birth) is a sum over birth days and ages in days; the
number of LAs and the scale cancel. The population of the cohort at age ``a`` is England's aged
``a`` at mid-year ``b + a``. The implied risk is the life table of
:func:`cinresearch.lifetime.cumulative_risk` applied to these expected values:
``1 - prod_j (1 - e_j / (p_j - e_0 - ... - e_{j-1}))``. By sex, first referrals are
``sex_shares`` (54.0% boys, 45.75% girls, 0.25% not known) of all, and the population 51.2% boys.

What it does not include: double counting of a child referred in two LAs without a UPN
(:func:`cinresearch.lifetime.double_counting`), and referrals before birth that closed before
the first census year (the first cohort only).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cinresearch.synth import dates as D
from cinresearch.synth.params import DEFAULT_PARAMS, SynthParams
from cinresearch.synth.population import (
    AGE_SHARES,
    MALE_SHARE_POPULATION,
    POPULATION_GROWTH_PER_YEAR,
    REFERRALS_PER_CHILD_2018,
)

YEAR_DAYS = 365.25


def _age_pieces(params: SynthParams) -> list[tuple[float, float, float]]:
    """(low, high, probability) of the age in days at first referral, uniform on each piece."""
    y = YEAR_DAYS
    shares = params.first_referral_age_band
    total = sum(shares.values())
    p = {band: share / total for band, share in shares.items()}
    return [
        (-250.0, -30.0, p["unborn"]),
        (0.0, 30.0, 0.4 * p["under 1"]),
        (31.0, 364.0, 0.6 * p["under 1"]),
        (y, 5 * y, p["1-4"]),
        (5 * y, 10 * y, p["5-9"]),
        (10 * y, 16 * y, p["10-15"]),
        (16 * y, 18 * y - 25, p["16+"]),
    ]


def age_offset_distribution(params: SynthParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """Whole days from birth to first referral (negative before birth) and their probabilities.

    The generator sets the birth date to the referral date less ``floor(age in days)``, so the
    offset ``k`` has the probability that the continuous age falls in ``[k, k + 1)``.
    """
    pieces = _age_pieces(params)
    lo = int(np.floor(min(a for a, _, _ in pieces)))
    hi = int(np.ceil(max(b for _, b, _ in pieces)))
    offsets = np.arange(lo, hi + 1)
    prob = np.zeros(len(offsets))
    for a, b, weight in pieces:
        overlap = np.clip(np.minimum(offsets + 1, b) - np.maximum(offsets, a), 0, None)
        prob += weight * overlap / (b - a)
    return offsets, prob


def first_referral_rate(
    first_day: int, last_day: int, params: SynthParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Expected first referrals per day per child of England's mid-2017 0-17 population, for day
    numbers ``first_day`` to ``last_day``."""
    days = np.arange(first_day, last_day + 1)
    years, months, _ = D.year_month_day(days)
    fy = np.where(months >= 4, years + 1, years)
    mult = np.array(
        [params.year_multiplier.get(int(f), 1.0) if f > 2018 else 1.0 for f in fy], dtype=float
    )
    shares = np.asarray(params.month_shares, dtype=float)
    shares = shares / shares.sum()
    next_month = D.from_ymd(
        np.where(months == 12, years + 1, years), np.where(months == 12, 1, months + 1), 1
    )
    month_days = next_month - D.from_ymd(years, months, np.ones_like(months))
    per_child_year = (
        REFERRALS_PER_CHILD_2018 / params.referral_amplification / params.population_scale
    )
    return per_child_year * mult * shares[months - 1] / month_days


def expected_first_referrals(
    birth_year: int, max_age: int, params: SynthParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Expected children of cohort ``birth_year`` first referred at each completed age 0..max_age
    (age 0 including referrals before birth), per child of England's mid-2017 population."""
    births = np.arange(D.april1(birth_year - 1), D.march31(birth_year) + 1)
    offsets, prob = age_offset_distribution(params)
    keep = prob > 0
    offsets, prob = offsets[keep], prob[keep]
    rate = first_referral_rate(births[0] + offsets[0], births[-1] + offsets[-1], params)
    referral_day = births[:, None] + offsets[None, :]
    lam = rate[referral_day - (births[0] + offsets[0])]
    age = np.maximum(
        D.age_in_years(np.broadcast_to(births[:, None], referral_day.shape), referral_day), 0
    )
    weight = lam * prob[None, :]
    return np.array([weight[age == a].sum() for a in range(max_age + 1)])


def cohort_population(
    birth_year: int, max_age: int, params: SynthParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Cohort ``birth_year``'s population at ages 0..max_age (England aged ``a`` at mid-year
    ``birth_year + a``), per child of England's mid-2017 0-17 population."""
    ages = np.arange(max_age + 1)
    growth = (1 + POPULATION_GROWTH_PER_YEAR) ** (birth_year + ages - 2017)
    return AGE_SHARES[ages] * growth


def first_referral_risk(
    birth_year: int,
    max_age: int = 4,
    params: SynthParams = DEFAULT_PARAMS,
    sex: str | None = None,
) -> pl.DataFrame:
    """The cumulative risk of a first referral by age implied by ``params`` (module docstring).

    One row per completed age 0..``max_age``: ``expected_events`` and ``population`` (per child
    of England's mid-2017 0-17 population) and ``cumulative_risk`` (0-1) before the next
    birthday. ``sex`` "M" or "F" gives the risk for boys or girls.
    """
    events = expected_first_referrals(birth_year, max_age, params)
    population = cohort_population(birth_year, max_age, params)
    if sex is not None:
        shares = params.sex_shares
        share_of_referrals = shares[sex] / sum(shares.values())
        share_of_population = {"M": MALE_SHARE_POPULATION, "F": 1 - MALE_SHARE_POPULATION}[sex]
        events = events * share_of_referrals
        population = population * share_of_population
    counted_before = np.concatenate([[0.0], np.cumsum(events)[:-1]])
    risk = 1 - np.cumprod(1 - events / (population - counted_before))
    return pl.DataFrame(
        {
            "age": np.arange(max_age + 1, dtype=np.int32),
            "expected_events": events,
            "population": population,
            "cumulative_risk": risk,
        }
    )
