"""Outcomes: where the clock starts, the event that stops it, what competes and what censors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch.cohorts.definitions import (
    CENSOR_KINDS,
    COMPETING_KINDS,
    EVENT_SOURCES,
    FOLLOW_UPS,
    ORIGINS,
    PLAN_ORIGINS,
    _as_str_tuple,
    load_definitions,
)


@dataclass(frozen=True)
class Outcome:
    """What ends follow-up: the event, the competing events and the censoring reasons.

    Outcomes are declared in ``cohorts.yaml`` using the vocabulary documented there. The
    builders for each ``event`` source live in :mod:`cinresearch.cohorts.frame` and
    :mod:`cinresearch.cohorts.linked_events`.
    """

    name: str
    origin: str
    event: str
    competing: tuple[str, ...] = ()
    censor: tuple[str, ...] = ("data_end", "birthday_18")
    follow_up: str = "episode"
    closed_label: str = "competing: closed without event"
    censor_closure_reasons: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("competing", "censor", "censor_closure_reasons"):
            object.__setattr__(self, attr, _as_str_tuple(getattr(self, attr)) or ())
        checks = [
            ("origin", (self.origin,), ORIGINS),
            ("event", (self.event,), EVENT_SOURCES),
            ("competing", self.competing, COMPETING_KINDS),
            ("censor", self.censor, CENSOR_KINDS),
            ("follow_up", (self.follow_up,), FOLLOW_UPS),
        ]
        for attr, values, allowed in checks:
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValueError(f"outcome {self.name!r}: {attr} {bad} not in {allowed}")
        if self.event == "next_cpp_start" and self.origin not in PLAN_ORIGINS:
            raise ValueError(f"outcome {self.name!r}: next_cpp_start needs a cpp_* origin")
        if self.event == "npd_exclusion" and self.follow_up != "npd":
            raise ValueError(f"outcome {self.name!r}: npd_exclusion needs follow_up: npd")

    @property
    def plan_level(self) -> bool:
        """True when subjects are CP plans (one row per plan), not episodes."""
        return self.origin in PLAN_ORIGINS


def define_outcome(
    spec: str | Mapping[str, Any] | Outcome, /, path: str | Path | None = None
) -> Outcome:
    """An :class:`Outcome` from a name in ``cohorts.yaml``, a dict, or an Outcome."""
    if isinstance(spec, Outcome):
        return spec
    if isinstance(spec, str):
        registry = load_definitions(path)["outcomes"]
        if spec not in registry:
            raise ValueError(f"unknown outcome {spec!r}; outcomes: {sorted(registry)}")
        mapping: Mapping[str, Any] = {"name": spec, **registry[spec]}
    elif isinstance(spec, Mapping):
        mapping = {"name": "custom", **spec}
    else:
        raise TypeError(f"define_outcome: expected a name, dict or Outcome, got {type(spec)}")
    kwargs = dict(mapping)
    if isinstance(kwargs.get("description"), str):
        kwargs["description"] = " ".join(kwargs["description"].split())
    return Outcome(**kwargs)


def list_outcomes(path: str | Path | None = None) -> pl.DataFrame:
    """One row per declared outcome: origin, event, competing events, censoring, follow-up."""
    rows = []
    for name in load_definitions(path)["outcomes"]:
        o = define_outcome(name, path=path)
        rows.append(
            {
                "name": o.name,
                "origin": o.origin,
                "event": o.event,
                "competing": list(o.competing),
                "censor": list(o.censor),
                "follow_up": o.follow_up,
                "description": o.description,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "name": pl.String,
            "origin": pl.String,
            "event": pl.String,
            "competing": pl.List(pl.String),
            "censor": pl.List(pl.String),
            "follow_up": pl.String,
            "description": pl.String,
        },
    )
