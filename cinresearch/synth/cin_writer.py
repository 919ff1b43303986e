"""Write CIN census XML returns (one file per LA per census year) from a :class:`SynthWorld`.

Coverage per cin_census.md §3: a return for census year ``Y`` holds every child with an
episode open at any point in the year (referral ≤ 31 March Y and closure blank or ≥ 1 April
Y-1). Carried-over episodes keep their original referral date and values. Nested records
are included when open or occurring during the year; activity wholly before 1 April is
left out. No date in a return is after its ReferenceDate: later closures, authorisations,
ICPCs, plan ends and targets are blank (the record appears open). Element order is the XSD
sequence of §1; ``CINPlanDates`` only from 2022, ``Sex`` (M/F/U) instead of
``GenderCurrent`` from 2025; booleans are ``0``/``1`` up to 2019 and ``false``/``true`` after.
An LA with no child to report in a year (possible only for tiny LAs at small scales) gets no
file that year, since a return needs at least one ``Child``.

The XML text is built column-wise with polars string expressions (bottom-up: reviews → plans →
episodes → children), so writing is not a Python loop per child.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl

from cinresearch.synth.pre_proceedings import FIRST_CENSUS_YEAR as PP_FIRST_CENSUS_YEAR
from cinresearch.synth.pre_proceedings import review_meetings as pp_review_meetings

I1, I2, I3, I4, I5, I6 = ("  " * k for k in range(2, 8))  # Child is at depth 2


@dataclass
class ReturnTables:
    """The records of one census year's returns (all LAs), already masked to the year."""

    census_year: int
    children: pl.DataFrame
    episodes: pl.DataFrame
    assessments: pl.DataFrame
    cin_plans: pl.DataFrame
    section47: pl.DataFrame
    cp_plans: pl.DataFrame
    reviews: pl.DataFrame
    #: PreProceedingsandFGDM blocks (census year 2026 onward; empty or None before)
    pre_proceedings: pl.DataFrame | None = None

    def with_(self, **frames: pl.DataFrame) -> ReturnTables:
        return replace(self, **frames)


def _mask_after(col: str, ref: date) -> pl.Expr:
    return pl.when(pl.col(col) <= ref).then(pl.col(col)).otherwise(None).alias(col)


def return_tables(world, census_year: int) -> ReturnTables:
    """Select and mask the records that census year ``census_year``'s returns contain."""
    ref = date(census_year, 3, 31)
    start = date(census_year - 1, 4, 1)
    ep = (
        world.episodes.filter(
            (pl.col("referral_date") <= ref)
            & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= start))
        )
        .select(
            "episode_id",
            "person_id",
            "la_code",
            "la_child_id",
            "referral_date",
            "referral_source",
            "primary_need",
            "referral_nfa",
            "closure_date",
            "closure_reason",
            "first_icpc_date",
        )
        .with_columns(
            closure_reason=pl.when(pl.col("closure_date") <= ref).then(pl.col("closure_reason")),
            closure_date=pl.when(pl.col("closure_date") <= ref).then(pl.col("closure_date")),
            first_icpc_date=pl.when(pl.col("first_icpc_date") <= ref).then(
                pl.col("first_icpc_date")
            ),
        )
    )
    ids = ep.select("episode_id")

    def nested(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(ids, on="episode_id", how="semi")

    assessments = (
        nested(world.assessments)
        .filter(pl.col("assessment_start") <= ref)
        .with_columns(_mask_after("assessment_authorised", ref))
        .filter(
            pl.col("assessment_authorised").is_null() | (pl.col("assessment_authorised") >= start)
        )
        .with_columns(
            factors=pl.when(pl.col("assessment_authorised").is_not_null()).then(pl.col("factors"))
        )
    )
    cin_plans = (
        nested(world.cin_plans)
        .filter(pl.col("cin_plan_start") <= ref)
        .with_columns(_mask_after("cin_plan_end", ref))
        .filter(pl.col("cin_plan_end").is_null() | (pl.col("cin_plan_end") >= start))
    )
    if census_year < 2022:
        cin_plans = cin_plans.clear()
    section47 = (
        nested(world.section47)
        .filter(pl.col("s47_start") <= ref)
        .with_columns(_mask_after("icpc_date", ref), _mask_after("icpc_target", ref))
        .filter(
            (pl.col("s47_start") >= start)
            | (pl.col("icpc_date") >= start)
            | (pl.col("icpc_date").is_null() & ~pl.col("icpc_not_required"))
        )
    )
    cp_plans = (
        nested(world.cp_plans)
        .filter(pl.col("cpp_start") <= ref)
        .with_columns(_mask_after("cpp_end", ref))
        .filter(pl.col("cpp_end").is_null() | (pl.col("cpp_end") >= start))
    )
    reviews = world.cpp_reviews.filter(pl.col("review_date").is_between(start, ref)).join(
        cp_plans.select("episode_id", "cpp_start"), on=["episode_id", "cpp_start"], how="semi"
    )

    pupils = ep.select("person_id", "la_code", "la_child_id").unique()
    children = pupils.join(world.persons, on="person_id", how="left").select(
        "person_id",
        "la_code",
        "la_child_id",
        unborn=pl.col("birth_date") > ref,
        birth_date=pl.when(pl.col("birth_date") <= ref).then(pl.col("birth_date")),
        expected_birth_date=pl.when(pl.col("birth_date") > ref).then(
            pl.coalesce("expected_birth_date", "birth_date")
        ),
        sex=pl.when(pl.col("birth_date") > ref).then(pl.lit("U")).otherwise(pl.col("sex")),
        ethnicity=pl.col("ethnicity"),
        disabilities=pl.when((pl.col("birth_date") <= ref) & pl.col("disabled"))
        .then(pl.col("disabilities"))
        .otherwise(pl.lit(["NONE"], dtype=pl.List(pl.String))),
        death_date=pl.when(pl.col("death_date") <= ref).then(pl.col("death_date")),
        upn=pl.when(pl.col("upn_allocated") <= ref).then(pl.col("upn")),
        former_upn=pl.when(pl.col("upn_allocated") <= ref).then(pl.col("former_upn")),
        upn_unknown=pl.when(pl.col("upn_allocated") <= ref)
        .then(None)
        .when(pl.col("upn_unknown_reason").is_not_null())
        .then(pl.col("upn_unknown_reason"))
        .otherwise(pl.lit("UN6")),
    )
    pre_proceedings = None
    world_pp = getattr(world, "pre_proceedings", None)
    if world_pp is not None and census_year >= PP_FIRST_CENSUS_YEAR:
        # blocks of the return's plans that are open or decided during the year
        pre_proceedings = (
            world_pp.join(
                cp_plans.select("episode_id", "cpp_start"),
                on=["episode_id", "cpp_start"],
                how="semi",
            )
            .filter(pl.col("pp_start") <= ref)
            .with_columns(
                _mask_after("lbp_sent_date", ref),
                _mask_after("initial_meeting_date", ref),
                _mask_after("decision_date", ref),
                _mask_after("court_application_date", ref),
            )
            .filter(pl.col("decision_date").is_null() | (pl.col("decision_date") >= start))
            .with_columns(review_meetings=pp_review_meetings(ref))
        )
    return ReturnTables(
        census_year=census_year,
        children=children,
        episodes=ep,
        assessments=assessments,
        cin_plans=cin_plans,
        section47=section47,
        cp_plans=cp_plans,
        reviews=reviews,
        pre_proceedings=pre_proceedings,
    )


# ----------------------------------------------------------------------------------------------
# XML text


def _el(tag: str, value: pl.Expr, indent: str) -> pl.Expr:
    """``<tag>value</tag>`` on its own line; null when the value is null."""
    return pl.concat_str([pl.lit(f"{indent}<{tag}>"), value, pl.lit(f"</{tag}>\n")])


def _opt(tag: str, col: str, indent: str) -> pl.Expr:
    return _el(tag, pl.col(col).cast(pl.String), indent).fill_null("")


def _bool(col: str, census_year: int) -> pl.Expr:
    yes, no = ("1", "0") if census_year <= 2019 else ("true", "false")
    return pl.when(pl.col(col)).then(pl.lit(yes)).otherwise(pl.lit(no))


def _joined(frame: pl.DataFrame, keys: list[str], sort: list[str], name: str) -> pl.DataFrame:
    """Concatenate the ``xml`` fragments of ``frame`` per ``keys`` in ``sort`` order."""
    return (
        frame.sort([*keys, *sort])
        .group_by(keys, maintain_order=True)
        .agg(pl.col("xml").str.join("").alias(name))
    )


def render_children(t: ReturnTables) -> pl.DataFrame:
    """One row per child: ``la_code``, ``la_child_id``, ``xml`` (the ``<Child>`` element)."""
    y = t.census_year
    reviews = _joined(
        t.reviews.with_columns(xml=_el("CPPreviewDate", pl.col("review_date").cast(pl.String), I5)),
        ["episode_id", "cpp_start"],
        ["review_date"],
        "reviews_xml",
    )
    cpp = t.cp_plans.join(reviews, on=["episode_id", "cpp_start"], how="left").with_columns(
        xml=pl.concat_str(
            [
                pl.lit(f"{I3}<ChildProtectionPlans>\n"),
                _opt("CPPstartDate", "cpp_start", I4),
                _opt("CPPendDate", "cpp_end", I4),
                _opt("InitialCategoryOfAbuse", "initial_category", I4),
                _opt("LatestCategoryOfAbuse", "latest_category", I4),
                _opt("NumberOfPreviousCPP", "previous_cpps", I4),
                pl.when(pl.col("reviews_xml").is_not_null())
                .then(
                    pl.concat_str(
                        [
                            pl.lit(f"{I4}<Reviews>\n"),
                            pl.col("reviews_xml"),
                            pl.lit(f"{I4}</Reviews>\n"),
                        ]
                    )
                )
                .otherwise(pl.lit("")),
                pl.lit(f"{I3}</ChildProtectionPlans>\n"),
            ]
        )
    )
    cpp = _joined(cpp, ["episode_id"], ["cpp_start"], "cpp_xml")
    pp_frame = t.pre_proceedings
    if pp_frame is None:
        pp_frame = pl.DataFrame(
            schema={
                "episode_id": t.cp_plans.schema["episode_id"],
                "pp_start": pl.Date,
                "lbp_sent_date": pl.Date,
                "fgdm_offered": pl.Boolean,
                "fgdm_facilitated": pl.Boolean,
                "initial_meeting_date": pl.Date,
                "review_meetings": pl.Int16,
                "decision_date": pl.Date,
                "court_application_date": pl.Date,
            }
        )
    pp = pp_frame.with_columns(
        xml=pl.concat_str(
            [
                pl.lit(f"{I3}<PreProceedingsandFGDM>\n"),
                _opt("PPStartDate", "pp_start", I4),
                _opt("LBPSentDate", "lbp_sent_date", I4),
                _el("FGDMMeetingOffer", _bool("fgdm_offered", y), I4),
                _el("FGDMMeetingFac", _bool("fgdm_facilitated", y), I4),
                _opt("InitialPPMeetingDate", "initial_meeting_date", I4),
                _opt("ReviewMeetingsCount", "review_meetings", I4),
                _opt("StepDecisionDate", "decision_date", I4),
                _opt("CourtAppDate", "court_application_date", I4),
                pl.lit(f"{I3}</PreProceedingsandFGDM>\n"),
            ]
        )
    )
    pp = _joined(pp, ["episode_id"], ["pp_start"], "pp_xml")

    factors = (
        pl.col("factors")
        .list.eval(
            pl.concat_str(
                [pl.lit(f"{I5}<AssessmentFactors>"), pl.element(), pl.lit("</AssessmentFactors>\n")]
            )
        )
        .list.join("")
    )
    assessments = t.assessments.with_columns(
        xml=pl.concat_str(
            [
                pl.lit(f"{I3}<Assessments>\n"),
                _opt("AssessmentActualStartDate", "assessment_start", I4),
                _opt("AssessmentAuthorisationDate", "assessment_authorised", I4),
                pl.when(pl.col("factors").list.len() > 0)
                .then(
                    pl.concat_str(
                        [
                            pl.lit(f"{I4}<FactorsIdentifiedAtAssessment>\n"),
                            factors,
                            pl.lit(f"{I4}</FactorsIdentifiedAtAssessment>\n"),
                        ]
                    )
                )
                .otherwise(pl.lit("")),
                pl.lit(f"{I3}</Assessments>\n"),
            ]
        )
    )
    assessments = _joined(assessments, ["episode_id"], ["assessment_start"], "assessments_xml")
    plans = t.cin_plans.with_columns(
        xml=pl.concat_str(
            [
                pl.lit(f"{I3}<CINPlanDates>\n"),
                _opt("CINPlanStartDate", "cin_plan_start", I4),
                _opt("CINPlanEndDate", "cin_plan_end", I4),
                pl.lit(f"{I3}</CINPlanDates>\n"),
            ]
        )
    )
    plans = _joined(plans, ["episode_id"], ["cin_plan_start"], "plans_xml")
    s47 = t.section47.with_columns(
        xml=pl.concat_str(
            [
                pl.lit(f"{I3}<Section47>\n"),
                _opt("S47ActualStartDate", "s47_start", I4),
                _opt("InitialCPCtarget", "icpc_target", I4),
                _opt("DateOfInitialCPC", "icpc_date", I4),
                _el("ICPCnotRequired", _bool("icpc_not_required", y), I4),
                pl.lit(f"{I3}</Section47>\n"),
            ]
        )
    )
    s47 = _joined(s47, ["episode_id"], ["s47_start"], "s47_xml")

    episodes = (
        t.episodes.join(assessments, on="episode_id", how="left")
        .join(plans, on="episode_id", how="left")
        .join(s47, on="episode_id", how="left")
        .join(cpp, on="episode_id", how="left")
        .join(pp, on="episode_id", how="left")
        .with_columns(
            xml=pl.concat_str(
                [
                    pl.lit(f"{I2}<CINdetails>\n"),
                    _opt("CINreferralDate", "referral_date", I3),
                    _opt("ReferralSource", "referral_source", I3),
                    _opt("PrimaryNeedCode", "primary_need", I3),
                    _opt("CINclosureDate", "closure_date", I3),
                    _opt("ReasonForClosure", "closure_reason", I3),
                    _opt("DateOfInitialCPC", "first_icpc_date", I3),
                    pl.col("assessments_xml").fill_null(""),
                    pl.col("plans_xml").fill_null(""),
                    pl.col("s47_xml").fill_null(""),
                    _el("ReferralNFA", _bool("referral_nfa", y), I3),
                    pl.col("cpp_xml").fill_null(""),
                    pl.col("pp_xml").fill_null(""),
                    pl.lit(f"{I2}</CINdetails>\n"),
                ]
            )
        )
    )
    episodes = _joined(episodes, ["la_code", "la_child_id"], ["referral_date"], "episodes_xml")

    if y >= 2025:
        sex = _el("Sex", pl.col("sex"), I3)
    else:
        code = pl.col("sex").replace_strict({"M": "1", "F": "2", "U": "9"}, default="0")
        sex = _el("GenderCurrent", pl.when(pl.col("unborn")).then(pl.lit("0")).otherwise(code), I3)
    disabilities = (
        pl.col("disabilities")
        .list.eval(
            pl.concat_str([pl.lit(f"{I4}<Disability>"), pl.element(), pl.lit("</Disability>\n")])
        )
        .list.join("")
    )
    return (
        t.children.join(episodes, on=["la_code", "la_child_id"], how="inner")
        .with_columns(
            xml=pl.concat_str(
                [
                    pl.lit(f"{I1}<Child>\n{I2}<ChildIdentifiers>\n"),
                    _opt("LAchildID", "la_child_id", I3),
                    _opt("UPN", "upn", I3),
                    _opt("FormerUPN", "former_upn", I3),
                    _opt("UPNunknown", "upn_unknown", I3),
                    _opt("PersonBirthDate", "birth_date", I3),
                    _opt("ExpectedPersonBirthDate", "expected_birth_date", I3),
                    sex,
                    _opt("PersonDeathDate", "death_date", I3),
                    pl.lit(f"{I2}</ChildIdentifiers>\n{I2}<ChildCharacteristics>\n"),
                    _opt("Ethnicity", "ethnicity", I3),
                    pl.concat_str(
                        [
                            pl.lit(f"{I3}<Disabilities>\n"),
                            disabilities,
                            pl.lit(f"{I3}</Disabilities>\n"),
                        ]
                    ),
                    pl.lit(f"{I2}</ChildCharacteristics>\n"),
                    pl.col("episodes_xml"),
                    pl.lit(f"{I1}</Child>\n"),
                ]
            )
        )
        .select("la_code", "la_child_id", "xml")
        .sort(["la_code", "la_child_id"])
    )


def header(la_code: str, census_year: int) -> str:
    """``<?xml ...?><Message><Header>...`` up to the opening ``<Children>`` tag (deterministic)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Message>\n"
        "  <Header>\n"
        "    <CollectionDetails>\n"
        "      <Collection>CIN</Collection>\n"
        f"      <Year>{census_year}</Year>\n"
        f"      <ReferenceDate>{census_year}-03-31</ReferenceDate>\n"
        "    </CollectionDetails>\n"
        "    <Source>\n"
        "      <SourceLevel>L</SourceLevel>\n"
        f"      <LEA>{la_code}</LEA>\n"
        "      <SoftwareCode>cinresearch-synth</SoftwareCode>\n"
        "      <Release>1.0</Release>\n"
        "      <SerialNo>001</SerialNo>\n"
        f"      <DateTime>{census_year}-05-15T09:00:00</DateTime>\n"
        "    </Source>\n"
        "  </Header>\n"
        "  <Children>\n"
    )


FOOTER = "  </Children>\n</Message>\n"


def cin_path(out: Path, census_year: int, la_code: str) -> Path:
    return out / "cin" / f"cin_{census_year}_{la_code}.xml"


def write_returns(children_xml: pl.DataFrame, out: Path, census_year: int) -> list[Path]:
    """Write one file per LA from rendered ``<Child>`` fragments (rows already in file order)."""
    (out / "cin").mkdir(parents=True, exist_ok=True)
    paths = []
    codes = children_xml["la_code"]
    bounds = codes.rle()  # rows are grouped by LA: (run length, LA code)
    offset = 0
    for length, la_code in bounds.struct.unnest().iter_rows():
        xml = children_xml["xml"].slice(offset, length).str.join("").item()
        offset += length
        path = cin_path(out, census_year, la_code)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(header(la_code, census_year))
            handle.write(xml)
            handle.write(FOOTER)
        paths.append(path)
    return paths
