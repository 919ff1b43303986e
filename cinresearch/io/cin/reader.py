"""Read one CIN census XML return into validated, pseudonymised tables (all years 2017-18 on).

:func:`read_cin_xml` is the flow: sniff and plan the file, parse the children (column-wise by
the compiled or polars reader where the text allows, on several processes for a large file,
else element by element with lxml), pseudonymise identifiers in the parsing process, type and
validate each table against its contract, apply the cross-record rules, and account for every
element read.

Every ``<Child>``, ``<CINdetails>``, ``<Assessments>``, ``<CINPlanDates>``, ``<Section47>``,
``<ChildProtectionPlans>``, ``<CPPreviewDate>`` and ``<Disability>`` read ends either in its
table or in ``rejects`` (with file, line, rule and message); :class:`CinLoad.reconciliation`
proves it. A rejected child takes its episodes with it, and a rejected episode its nested
records, each recorded as ``parent_rejected``. Tolerated besides what the parsers tolerate:
booleans as 0/1 or true/false in any case, lower-case codes and padded values,
``GenderCurrent`` or ``Sex`` in any year.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch import contracts
from cinresearch.io.cin import cross_record_rules, native, parallel, raw
from cinresearch.io.cin.header import Header
from cinresearch.io.cin.lxml_reader import iter_children, read_children, sniff
from cinresearch.io.cin.normalise import Rejector, duplicated, normalise_table
from cinresearch.io.cin.schema import (
    ELEMENT_TABLE,
    OPTIONAL_TABLES,
    RAW_COLUMNS,
    version_label,
)
from cinresearch.pseudonymise import Pseudonymiser


@dataclass
class CinLoad:
    """Tables, rejects and counts from one CIN return."""

    source_file: str
    header: Header
    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame
    elements_read: dict[str, int]
    elements_seen: dict[str, int]
    detected: str
    rejected_counts: dict[str, int] = field(default_factory=dict)
    #: elements inside children that the CIN schema does not have there: one row per path
    #: (``path``, ``element``, ``count``, ``first_line``); never their values
    unrecognised: pl.DataFrame = field(default_factory=lambda: raw.unrecognised_frame({}))

    @property
    def reconciliation(self) -> pl.DataFrame:
        """Per element: read = loaded + rejected (``balanced`` must be true everywhere)."""
        rejected_by = self.rejected_counts
        rows = []
        for element, table in ELEMENT_TABLE.items():
            read = self.elements_read.get(element, 0)
            loaded = self.tables[table].height
            if table == "disabilities":
                read -= self.elements_read.get("Disability:NONE", 0)
            n_rej = rejected_by.get(table, 0)
            if table in OPTIONAL_TABLES and read == loaded == n_rej == 0:
                continue  # a module the return does not use (e.g. before 2025-26)
            rows.append((element, table, read, loaded, n_rej, read == loaded + n_rej))
        strays = self.elements_read.get("(unexpected element)", 0)
        if strays:
            n_rej = rejected_by.get("unexpected_elements", 0)
            rows.append(
                ("(unexpected element)", "unexpected_elements", strays, 0, n_rej, strays == n_rej)
            )
        return pl.DataFrame(
            rows,
            schema={
                "element": pl.String,
                "table": pl.String,
                "read": pl.Int64,
                "loaded": pl.Int64,
                "rejected": pl.Int64,
                "balanced": pl.Boolean,
            },
            orient="row",
        )

    def counts(self) -> dict[str, Any]:
        rec = self.reconciliation
        return {
            "elements": {
                r["element"]: {k: r[k] for k in ("read", "loaded", "rejected")}
                for r in rec.to_dicts()
            },
            "rows": {t: f.height for t, f in self.tables.items()},
            "rejected": int(self.rejects.filter(pl.col("action") == "reject_record").height),
            "flagged": int(self.rejects.filter(pl.col("action") == "flag").height),
            "dropped_values": int(self.rejects.filter(pl.col("action") == "drop_value").height),
            "balanced": bool(rec.get_column("balanced").all()),
            "unrecognised": int(self.unrecognised.get_column("count").sum()),
        }


def read_cin_xml(
    path: str | os.PathLike[str],
    key: Pseudonymiser,
    *,
    chunk_children: int = 50_000,
    on_bytes: Callable[[int], None] | None = None,
    workers: int | None = None,
    columnar: bool = True,
) -> CinLoad:
    """Read one CIN census XML return into validated, pseudonymised tables.

    With ``columnar`` (the default), children written in the schema's element order are read
    column-wise by the compiled reader (:mod:`cinresearch.io.cin.native`) or, where it was
    not built, by polars (:mod:`cinresearch.io.cin.polars_reader`), and anything else by lxml.
    ``workers`` processes parse a large file in parallel (default: one with the compiled
    reader, else up to 4 for files over 32 MB; see :mod:`cinresearch.io.cin.parallel`).
    Every route gives the
    same result as one sequential lxml parse (``columnar=False, workers=1``). Raises
    :class:`CinFileError` for file-level problems (nothing of the file is kept).
    """
    size = os.path.getsize(path)
    if workers is None:
        # the compiled reader parses faster than worker processes start; without it, large
        # files are parsed on up to 4 cores
        big = size >= 2 * parallel.MIN_BYTES_PER_WORKER
        workers = min(os.cpu_count() or 1, 4) if big and not (columnar and native.AVAILABLE) else 1
    parsed = None
    headers: list[Header] = []
    if workers > 1 or columnar:
        sniff(path)
        plan = parallel.plan_ranges(path, workers)
        document = None if plan is None else parallel.header_document(path, plan[0])
        # the prefix must hold only the header, or the sequential parse reads the whole file
        namespace = None if document is None else parallel.plain_header_namespace(document)
        if plan is not None and document is not None and namespace is not None:
            header_len, _ = plan
            iter_children(path, headers.append, lambda elem: None, None, data=document)
            parsed = parallel.parse_parallel(
                path,
                namespace,
                workers,
                document[:header_len].count(b"\n"),
                columnar=columnar,
                pseudonymiser=(key, headers[0].la_code),
                on_bytes=on_bytes,
            )
    if parsed is None:
        headers.clear()
        parsed = read_children(
            path, headers.append, chunk_children=chunk_children, on_bytes=on_bytes
        )
    header = headers[0]
    raw_frames, read_counts, strays, unrecognised = parsed
    # a fast reader has no frame for a module it never reads (it declines children with one)
    raw_frames = {
        t: raw_frames[t] if t in raw_frames else raw.empty_raw_frame(t) for t in RAW_COLUMNS
    }
    tables_raw = {table: frame.with_row_index("row_seq") for table, frame in raw_frames.items()}
    del raw_frames, parsed
    source_file = Path(path).name
    rejector = Rejector(source_file, header, key)

    # identifiers: pseudonymise once per distinct value, then drop the raw columns
    elements_seen = {
        "GenderCurrent": int(
            tables_raw["children"].get_column("gender_current").is_not_null().sum()
        ),
        "Sex": int(tables_raw["children"].get_column("sex_code").is_not_null().sum()),
        "CINPlanDates": tables_raw["cin_plans"].height,
    }
    children_raw = tables_raw.pop("children")
    if "la_child_id" in children_raw.columns:
        children_raw = raw.pseudonymise_children(children_raw, key, header.la_code)
    seq_to_child = children_raw.select("child_seq", "child_id")

    sex_map = {"1": "M", "2": "F", "0": "U", "9": "U", "M": "M", "F": "F", "U": "U"}
    gender = pl.col("gender_current").str.strip_chars().str.to_uppercase()
    sex_code = pl.col("sex_code").str.strip_chars().str.to_uppercase()
    sex_raw = pl.coalesce(sex_code, gender)
    children_extra = {
        "sex": sex_raw.replace_strict(sex_map, default=None),
        "sex_element": pl.when(pl.col("sex_code").is_not_null())
        .then(pl.lit("Sex"))
        .when(pl.col("gender_current").is_not_null())
        .then(pl.lit("GenderCurrent"))
        .otherwise(pl.lit("none")),
        "disabled": pl.col("disabled_raw") == "1",
    }
    children_raw = children_raw.with_columns(
        pl.when(sex_raw.is_not_null() & sex_raw.replace_strict(sex_map, default=None).is_null())
        .then(pl.lit("invalid"))
        .otherwise(None)
        .alias("_sex_invalid")
    )
    child_record = ["child_id", "birth_date", "expected_birth_date", "sex", "ethnicity"]
    rejector.reject(
        children_raw.with_columns(sex=sex_raw),
        children_raw.get_column("_sex_invalid").is_not_null(),
        table="children",
        rule="code:sex",
        message="GenderCurrent/Sex is not one of 0/1/2/9 or M/F/U",
        columns=child_record,
    )
    children_raw = children_raw.filter(pl.col("_sex_invalid").is_null())
    children = normalise_table(
        children_raw,
        "children",
        header,
        rejector,
        children_extra,
        {
            "duplicate_key": pl.col("child_id").is_not_null() & duplicated("child_id"),
            "upn_check_ok": pl.col("upn_check_ok"),
            "none_with_others": pl.col("none_with_others"),
        },
        child_record,
        None,
        "",
    )
    del children_raw
    sex_elements = {k: elements_seen[k] for k in ("GenderCurrent", "Sex")}

    def child_parent_mask(frame: pl.DataFrame) -> pl.Series:
        return frame.get_column("child_seq").is_in(sorted(rejector.rejected_children))

    def with_child_id(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(seq_to_child, on="child_seq", how="left", maintain_order="left")

    # disabilities (NONE rows are not stored; `children.disabled` carries it)
    disabilities_raw = with_child_id(tables_raw.pop("disabilities"))
    disabilities = normalise_table(
        disabilities_raw,
        "disabilities",
        header,
        rejector,
        {},
        {},
        ["child_id", "disability"],
        child_parent_mask(disabilities_raw),
        "child record rejected",
    )

    # `disabled` follows the codes loaded (a code dropped by 8540 does not make a child disabled)
    children = children.with_columns(
        disabled=pl.col("child_seq").is_in(disabilities.get_column("child_seq").implode())
    )

    # referrals (episodes)
    referrals_raw = with_child_id(tables_raw.pop("referrals"))
    referral_record = [
        "child_id",
        "referral_date",
        "referral_source",
        "closure_date",
        "closure_reason",
        "referral_nfa",
    ]
    referrals = normalise_table(
        referrals_raw,
        "referrals",
        header,
        rejector,
        {},
        {"duplicate_key": duplicated("child_id", "referral_date")},
        referral_record,
        child_parent_mask(referrals_raw),
        "child record rejected",
    )
    episode_dates = referrals_raw.select(
        "episode_seq",
        pl.col("referral_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
    )
    closures = referrals.select("episode_seq", pl.col("closure_date").alias("episode_closure_date"))

    def nested(
        table: str, record: list[str], context: dict[str, pl.Expr] | None = None
    ) -> pl.DataFrame:
        frame = with_child_id(tables_raw.pop(table)).join(
            episode_dates, on="episode_seq", how="left", maintain_order="left"
        )
        frame = frame.join(closures, on="episode_seq", how="left", maintain_order="left")
        mask = frame.get_column("child_seq").is_in(
            sorted(rejector.rejected_children)
        ) | frame.get_column("episode_seq").is_in(sorted(rejector.rejected_episodes))
        if "cpp_seq" in frame.columns and table != "cp_plans":
            mask = mask | frame.get_column("cpp_seq").is_in(sorted(rejector.rejected_cpps))
        out = normalise_table(
            frame,
            table,
            header,
            rejector,
            {"referral_date": pl.col("referral_date")},
            context or {},
            record,
            mask,
            "parent record (child, episode or plan) rejected",
        )
        return out

    assessments = nested(
        "assessments",
        ["child_id", "referral_date", "assessment_start", "assessment_authorised", "factors"],
        {"duplicate_key": duplicated("episode_seq", "assessment_start")},
    )
    cin_plans = nested("cin_plans", ["child_id", "referral_date", "cin_plan_start", "cin_plan_end"])
    section47 = nested(
        "section47", ["child_id", "referral_date", "s47_start", "icpc_date", "icpc_not_required"]
    )
    cp_plans = nested(
        "cp_plans",
        ["child_id", "referral_date", "cpp_start", "cpp_end", "initial_category", "previous_cpps"],
    )
    cpp_starts = cp_plans.select("cpp_seq", pl.col("cpp_start").alias("_plan_start"))
    reviews_raw = tables_raw["cpp_reviews"].join(
        cpp_starts, on="cpp_seq", how="left", maintain_order="left"
    )
    tables_raw["cpp_reviews"] = reviews_raw.with_columns(
        pl.col("_plan_start").cast(pl.String).alias("cpp_start")
    )
    cpp_reviews = nested(
        "cpp_reviews",
        ["child_id", "referral_date", "cpp_start", "review_date"],
    )
    if tables_raw["pre_proceedings"].height:
        pre_proceedings = nested(
            "pre_proceedings",
            ["child_id", "referral_date", "pp_start", "pp_outcome", "court_application_date"],
            {"duplicate_key": duplicated("episode_seq", "pp_start")},
        )
    else:  # most returns: no module, no validation pass (it costs tens of ms per file)
        del tables_raw["pre_proceedings"]
        pre_proceedings = contracts.empty_frame("pre_proceedings")

    tables = {
        "children": children,
        "disabilities": disabilities,
        "referrals": referrals,
        "assessments": assessments,
        "cin_plans": cin_plans,
        "section47": section47,
        "cp_plans": cp_plans,
        "cpp_reviews": cpp_reviews,
        "pre_proceedings": pre_proceedings,
    }
    rejector.add(
        cross_record_rules.check_return(
            tables,
            source_file=source_file,
            census_year=header.census_year,
            la_code=header.la_code,
            collection_start=header.collection_start,
            reference_date=header.reference_date,
        )
    )
    tables = {name: contracts.conform(frame, name) for name, frame in tables.items()}
    rejected_counts = {t: len(rows) for t, rows in rejector.rejected_rows.items()}
    misplaced = tables_raw.pop("misplaced", None)
    if misplaced is not None and misplaced.height:
        misplaced = misplaced.join(seq_to_child, on="child_seq", how="left", maintain_order="left")
        for element in misplaced.get_column("element").unique(maintain_order=True).to_list():
            hit = misplaced.filter(pl.col("element") == element)
            table = ELEMENT_TABLE[element]
            rejector.add(
                contracts.reject_rows(
                    hit.select("line", "child_id", "element").to_dicts(),
                    table=table,
                    rule="schema:misplaced_element",
                    message=f"<{element}> is not where the CIN schema puts it; not loaded",
                    source_file=source_file,
                    census_year=header.census_year,
                    la_code=header.la_code,
                )
            )
            read_counts[element] = read_counts.get(element, 0) + hit.height
            rejected_counts[table] = rejected_counts.get(table, 0) + hit.height
    if strays:
        rejector.add(
            contracts.reject_rows(
                [{"line": line, "element": tag} for line, tag in strays],
                table="unexpected_elements",
                rule="schema:unexpected_element",
                message="element outside any <Child> where a child record was expected; not loaded",
                source_file=source_file,
                census_year=header.census_year,
                la_code=header.la_code,
            )
        )
        read_counts["(unexpected element)"] = len(strays)
        rejected_counts["unexpected_elements"] = len(strays)
    detected = _describe_version(header, elements_seen, sex_elements)
    return CinLoad(
        source_file=source_file,
        header=header,
        tables=tables,
        rejects=rejector.frame(),
        elements_read=read_counts,
        elements_seen=elements_seen,
        detected=detected,
        rejected_counts=rejected_counts,
        unrecognised=raw.unrecognised_frame(unrecognised),
    )


def _describe_version(header: Header, seen: dict[str, int], sex_elements: dict[str, int]) -> str:
    year = header.census_year
    label = version_label(year)
    forms = [name for name, n in sex_elements.items() if n]
    sex_text = " and ".join(forms) if forms else "no sex element"
    expected = "Sex" if year >= 2025 else "GenderCurrent"
    mixed = "" if forms in ([expected], []) else f" (expected {expected} in {label})"
    plans = "CINPlanDates present" if seen.get("CINPlanDates") else "no CINPlanDates"
    return (
        f"census year {year} ({label}) return for LA {header.la_code}; {sex_text}{mixed}; {plans}"
    )
