"""Children's journeys: multi-year de-duplication, episodes, event timelines, CLA and NPD linkage.

Entry point for a store: :func:`build_journeys`. Pure functions on dicts of lazy frames for
notebooks and tests: :func:`merge_returns`, :func:`build_children_longitudinal`,
:func:`build_episodes`, :func:`build_events`, :func:`link_npd`, :func:`link_report`.
"""

from cinresearch.journeys.build import BuildReport, ReconciliationError, build_journeys
from cinresearch.journeys.children import build_children_longitudinal
from cinresearch.journeys.dedup import (
    NATURAL_KEYS,
    episode_id_expr,
    merge_returns,
    merge_table,
    stable_id,
)
from cinresearch.journeys.episodes import (
    EPISODE_COLUMNS,
    age_band_expr,
    age_in_years,
    build_episodes,
    rereferral_12m_expr,
)
from cinresearch.journeys.events import EVENT_ORDER, build_events, la_moves
from cinresearch.journeys.linkage import (
    care_entries,
    care_exits,
    link_npd,
    link_report,
    merge_cla_episodes,
)

__all__ = [
    "EPISODE_COLUMNS",
    "EVENT_ORDER",
    "NATURAL_KEYS",
    "BuildReport",
    "ReconciliationError",
    "age_band_expr",
    "age_in_years",
    "build_children_longitudinal",
    "build_episodes",
    "build_events",
    "build_journeys",
    "care_entries",
    "care_exits",
    "episode_id_expr",
    "la_moves",
    "link_npd",
    "link_report",
    "merge_cla_episodes",
    "merge_returns",
    "merge_table",
    "rereferral_12m_expr",
    "stable_id",
]
