"""Synthetic generator: files, formats, element order, coverage, validation rules, determinism.

One small world (3 LAs, ~250 referrals per LA per year, census years 2018-2025 so every
year-specific shape occurs) is generated once per module, clean and with ``mess=True``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from lxml import etree

from cinresearch.synth import generate, simulate
from cinresearch.synth.ids import is_valid_upn, upn_check_letter
from cinresearch.synth.mess import KINDS
from cinresearch.synth.params import DEFAULT_PARAMS

YEARS = (2018, 2025)
LAS = 3
SCALE = 250
EFFECTS_YAML = Path(__file__).resolve().parents[1] / "data_contracts" / "synth_effects.yaml"

# XSD sequence (cin_census.md §1): allowed children of each element, in order; True = repeatable
ORDER: dict[str, list[tuple[str, bool]]] = {
    "Message": [("Header", False), ("Children", False)],
    "Header": [("CollectionDetails", False), ("Source", True)],
    "CollectionDetails": [("Collection", False), ("Year", False), ("ReferenceDate", False)],
    "Source": [
        ("SourceLevel", False), ("LEA", False), ("SoftwareCode", False), ("Release", False),
        ("SerialNo", False), ("DateTime", False),
    ],
    "Children": [("Child", True)],
    "Child": [("ChildIdentifiers", False), ("ChildCharacteristics", False), ("CINdetails", True)],
    "ChildIdentifiers": [
        ("LAchildID", False), ("UPN", False), ("FormerUPN", False), ("UPNunknown", False),
        ("PersonBirthDate", False), ("ExpectedPersonBirthDate", False), ("GenderCurrent", False),
        ("Sex", False), ("PersonDeathDate", False),
    ],
    "ChildCharacteristics": [("Ethnicity", False), ("Disabilities", False)],
    "Disabilities": [("Disability", True)],
    "CINdetails": [
        ("CINreferralDate", False), ("ReferralSource", False), ("PrimaryNeedCode", False),
        ("CINclosureDate", False), ("ReasonForClosure", False), ("DateOfInitialCPC", False),
        ("Assessments", True), ("CINPlanDates", True), ("Section47", True), ("ReferralNFA", False),
        ("ChildProtectionPlans", True),
    ],
    "Assessments": [
        ("AssessmentActualStartDate", False), ("AssessmentInternalReviewDate", False),
        ("AssessmentAuthorisationDate", False), ("FactorsIdentifiedAtAssessment", False),
    ],
    "FactorsIdentifiedAtAssessment": [("AssessmentFactors", True)],
    "CINPlanDates": [("CINPlanStartDate", False), ("CINPlanEndDate", False)],
    "Section47": [
        ("S47ActualStartDate", False), ("InitialCPCtarget", False), ("DateOfInitialCPC", False),
        ("ICPCnotRequired", False),
    ],
    "ChildProtectionPlans": [
        ("CPPstartDate", False), ("CPPendDate", False), ("InitialCategoryOfAbuse", False),
        ("LatestCategoryOfAbuse", False), ("NumberOfPreviousCPP", False), ("Reviews", False),
    ],
    "Reviews": [("CPPreviewDate", True)],
}  # fmt: skip
REQUIRED = {
    "Child": {"ChildIdentifiers", "ChildCharacteristics", "CINdetails"},
    "ChildIdentifiers": {"LAchildID"},
    "ChildCharacteristics": {"Ethnicity"},
    "CINdetails": {"CINreferralDate", "ReferralSource", "ReferralNFA"},
    "Assessments": {"AssessmentActualStartDate"},
    "CINPlanDates": {"CINPlanStartDate"},
    "Section47": {"S47ActualStartDate", "ICPCnotRequired"},
    "ChildProtectionPlans": {
        "CPPstartDate", "InitialCategoryOfAbuse", "LatestCategoryOfAbuse", "NumberOfPreviousCPP",
    },
}  # fmt: skip
DISABILITY = {
    "NONE",
    "MOB",
    "HAND",
    "PC",
    "INC",
    "COMM",
    "LD",
    "HEAR",
    "VIS",
    "BEH",
    "CON",
    "AUT",
    "DDA",
}
SOURCES = {
    "1A", "1B", "1C", "1D", "2A", "2B", "3A", "3B", "3C", "3D", "3E", "3F", "4",
    "5A", "5B", "5C", "5D", "6", "7", "8", "9", "10",
}  # fmt: skip
NEEDS = {f"N{i}" for i in range(10)}
ETHNICITY = {
    "WBRI", "WIRI", "WIRT", "WOTH", "WROM", "MWBC", "MWBA", "MWAS", "MOTH", "AIND", "APKN",
    "ABAN", "AOTH", "BCRB", "BAFR", "BOTH", "CHNE", "OOTH", "REFU", "NOBT",
}  # fmt: skip


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_clean")
    generate(out, las=LAS, years=YEARS, scale=SCALE, seed=7, progress=False)
    return out


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_messy")
    generate(out, las=LAS, years=(2018, 2019), scale=SCALE, seed=7, mess=True, progress=False)
    return out


def _text(el, tag: str) -> str | None:
    found = el.find(tag)
    return None if found is None else found.text


def _d(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _check_order(el) -> None:
    """Children of ``el`` follow the XSD sequence, non-repeatable ones at most once."""
    allowed = ORDER.get(el.tag)
    if allowed is None:
        assert len(el) == 0, f"unexpected children under {el.tag}"
        return
    position = {tag: i for i, (tag, _) in enumerate(allowed)}
    repeatable = {tag for tag, rep in allowed if rep}
    last, seen = -1, set()
    for child in el:
        assert child.tag in position, f"{child.tag} not allowed in {el.tag}"
        i = position[child.tag]
        assert i >= last, f"{child.tag} out of order in {el.tag}"
        assert child.tag in repeatable or child.tag not in seen, f"{child.tag} repeated in {el.tag}"
        last = i
        seen.add(child.tag)
        _check_order(child)
    missing = REQUIRED.get(el.tag, set()) - seen
    assert not missing, f"{el.tag} lacks {missing}"


def _cin_files(out: Path) -> list[Path]:
    return sorted(p for p in (out / "cin").glob("cin_*.xml") if "truncated" not in p.name)


# ----------------------------------------------------------------------------------------------


def test_files_for_every_format_exist_with_the_right_columns(clean: Path) -> None:
    summary = json.loads((clean / "truth" / "summary.json").read_text())
    las = summary["la_codes"]
    assert len(las) == LAS and all(len(c) == 3 and c.isdigit() for c in las)
    for year in range(YEARS[0], YEARS[1] + 1):
        for la in las:
            assert (clean / "cin" / f"cin_{year}_{la}.xml").exists()
            with open(clean / "cla" / f"ssda903_{year}_{la}_header.csv") as f:
                assert next(csv.reader(f)) == [
                    "CHILD",
                    "SEX",
                    "DOB",
                    "ETHNIC",
                    "UPN",
                    "MOTHER",
                    "MC_DOB",
                ]
            with open(clean / "cla" / f"ssda903_{year}_{la}_episodes.csv") as f:
                assert next(csv.reader(f)) == [
                    "CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
                    "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN",
                ]  # fmt: skip
        npd = pl.read_csv(clean / "npd" / f"npd_pupils_{year}.csv", infer_schema=False)
        assert npd.columns == [
            "UPN", "AcademicYear", "LA", "FSMeligible", "SENprovision", "SessionsPossible",
            "SessionsAbsent", "Suspensions", "PermanentExclusion", "KS2_RWM_Expected", "KS4_Attainment8",
        ]  # fmt: skip
        assert npd["AcademicYear"].unique().to_list() == [f"{year - 1}/{year}"]
        assert set(npd["SENprovision"].unique()) <= {"N", "K", "E"}
        assert npd["UPN"].n_unique() == npd.height
    for mid in range(YEARS[0] - 1, YEARS[1] + 1):
        pop = pl.read_csv(clean / "population" / f"population_{mid}.csv")
        assert pop.columns == ["la_code", "year", "age", "sex", "population"]
        assert pop.height == LAS * 18 * 2 and set(pop["age"]) == set(range(18))
    for name in ("episodes", "children"):
        assert (clean / "truth" / f"{name}.parquet").exists()


def test_cla_dates_are_dd_mm_yyyy_and_children_match_cin_ids(clean: Path) -> None:
    la = json.loads((clean / "truth" / "summary.json").read_text())["la_codes"][0]
    episodes = pl.concat(
        pl.read_csv(clean / "cla" / f"ssda903_{y}_{la}_episodes.csv", infer_schema=False)
        for y in range(YEARS[0], YEARS[1] + 1)
    )
    assert episodes.height > 0
    assert episodes["DECOM"].str.contains(r"^\d{2}/\d{2}/\d{4}$").all()
    ids = set()
    for y in range(YEARS[0], YEARS[1] + 1):
        tree = etree.parse(str(clean / "cin" / f"cin_{y}_{la}.xml"))
        ids |= {e.text for e in tree.iter("LAchildID")}
    assert set(episodes["CHILD"]) <= ids
    # 903 episodes of a child are sequential (DEC = next DECOM at most) and never zero-length
    truth = pl.read_parquet(clean / "truth" / "cla_episodes.parquet").sort(
        "la_code", "la_child_id", "decom"
    )
    chained = truth.with_columns(nxt=pl.col("decom").shift(-1).over("la_code", "la_child_id"))
    assert (
        chained.filter(pl.col("nxt").is_not_null() & ~(pl.col("dec") <= pl.col("nxt"))).height == 0
    )
    assert truth.filter(pl.col("dec") <= pl.col("decom")).height == 0
    # an episode open at 31 March appears again (same DECOM) in the next year's return
    first = pl.read_csv(clean / "cla" / f"ssda903_2019_{la}_episodes.csv", infer_schema=False)
    second = pl.read_csv(clean / "cla" / f"ssda903_2020_{la}_episodes.csv", infer_schema=False)
    open_then = first.filter(pl.col("DEC").is_null()).select("CHILD", "DECOM")
    assert open_then.join(second, on=["CHILD", "DECOM"], how="anti").height == 0


def test_xml_is_well_formed_and_follows_the_xsd_order(clean: Path) -> None:
    for path in _cin_files(clean):
        root = etree.parse(str(path)).getroot()
        year = int(path.stem.split("_")[1])
        _check_order(root)
        assert _text(root, "Header/CollectionDetails/Year") == str(year)
        assert _text(root, "Header/CollectionDetails/ReferenceDate") == f"{year}-03-31"
        assert _text(root, "Header/Source/LEA") == path.stem.split("_")[2]
        assert len(root.findall("Children/Child")) > 0


def test_year_specific_shapes_and_codes(clean: Path) -> None:
    for path in _cin_files(clean):
        year = int(path.stem.split("_")[1])
        root = etree.parse(str(path)).getroot()
        booleans = {e.text for tag in ("ReferralNFA", "ICPCnotRequired") for e in root.iter(tag)}
        assert booleans <= ({"0", "1"} if year <= 2019 else {"true", "false"})
        if year < 2022:
            assert root.find(".//CINPlanDates") is None
        assert (root.find(".//GenderCurrent") is None) == (year >= 2025)
        assert (root.find(".//Sex") is None) == (year <= 2024)
        sources = {e.text for e in root.iter("ReferralSource")}
        reasons = {e.text for e in root.iter("ReasonForClosure")}
        factors = {e.text for e in root.iter("AssessmentFactors")}
        assert sources <= SOURCES and ("5D" not in sources or year >= 2023)
        assert "RC9" not in reasons or year >= 2023
        if year <= 2020:
            assert not factors & {"18B", "18C", "19B", "19C", "24A"}
        else:
            assert not factors & {"18A", "19A"}
        if year == 2021:
            assert "24A" not in factors


def test_validation_rules_hold_in_clean_returns(clean: Path) -> None:
    for path in _cin_files(clean):
        year = int(path.stem.split("_")[1])
        ref, start = date(year, 3, 31), date(year - 1, 4, 1)
        root = etree.parse(str(path)).getroot()
        ids = [e.text for e in root.iter("LAchildID")]
        assert len(ids) == len(set(ids))  # 8510
        upns = [e.text for e in root.iter("UPN")]
        assert len(upns) == len(set(upns)) and all(is_valid_upn(u) for u in upns)  # 1510/1520
        for child in root.iter("Child"):
            idents = child.find("ChildIdentifiers")
            has_birth = idents.find("PersonBirthDate") is not None
            assert has_birth != (idents.find("ExpectedPersonBirthDate") is not None)  # 8525
            assert (idents.find("UPN") is not None) != (idents.find("UPNunknown") is not None)
            assert _text(child, "ChildCharacteristics/Ethnicity") in ETHNICITY
            codes = [e.text for e in child.iter("Disability")]
            assert set(codes) <= DISABILITY and ("NONE" not in codes or codes == ["NONE"])  # 8790
            for el in child.iter():
                if el.tag.endswith("Date") and el.text and el.tag != "ExpectedPersonBirthDate":
                    assert _d(el.text) <= ref, f"{el.tag} after the reference date"
            spells = []
            for ep in child.iter("CINdetails"):
                referral = _d(_text(ep, "CINreferralDate"))
                closure = _d(_text(ep, "CINclosureDate"))
                nfa = _text(ep, "ReferralNFA") in {"1", "true"}
                assert (closure is None) == (_text(ep, "ReasonForClosure") is None)  # 8805/8810
                assert nfa or _text(ep, "PrimaryNeedCode") in NEEDS  # 8610
                assert closure is None or start <= closure  # 8620
                assert closure is None or referral <= closure  # 8630
                activity = [
                    _d(e.text)
                    for tag in (
                        "AssessmentActualStartDate", "AssessmentAuthorisationDate", "S47ActualStartDate",
                        "DateOfInitialCPC", "CPPstartDate", "CPPendDate", "CINPlanStartDate",
                        "CINPlanEndDate", "CPPreviewDate",
                    )
                    for e in ep.iter(tag)
                ]  # fmt: skip
                assert all(referral <= a for a in activity)  # 1103 and friends
                assert closure is None or all(a <= closure for a in activity)  # 8565
                for s47 in ep.iter("Section47"):
                    icpc = _d(_text(s47, "DateOfInitialCPC"))
                    assert icpc is None or icpc >= _d(_text(s47, "S47ActualStartDate"))  # 8715
                    if closure is not None:  # 8868
                        assert icpc is not None or _text(s47, "ICPCnotRequired") in {"1", "true"}
                for cpp in ep.iter("ChildProtectionPlans"):
                    end = _d(_text(cpp, "CPPendDate"))
                    assert end is None or end >= start  # 8930
                    assert int(_text(cpp, "NumberOfPreviousCPP")) >= 0
                plans = sorted(
                    (_d(_text(p, "CINPlanStartDate")), _d(_text(p, "CINPlanEndDate")))
                    for p in ep.iter("CINPlanDates")
                )
                cpps = [
                    (_d(_text(p, "CPPstartDate")), _d(_text(p, "CPPendDate")))
                    for p in ep.iter("ChildProtectionPlans")
                ]
                for p_start, p_end in plans:  # 4001: no CIN plan during a CP plan
                    for c_start, c_end in cpps:
                        assert (p_end is not None and p_end < c_start) or (
                            c_end is not None and p_start > c_end
                        )
                spells.append((referral, closure))
            spells.sort()
            assert sum(c is None for _, c in spells) <= 1  # 8815
            for (_, c1), (r2, _) in zip(spells, spells[1:], strict=False):
                assert c1 is not None and c1 < r2  # no overlapping episodes (8816)


def test_open_episodes_are_carried_forward_identically(clean: Path) -> None:
    def episodes(path: Path) -> dict:
        out = {}
        for child in etree.parse(str(path)).getroot().iter("Child"):
            cid = _text(child, "ChildIdentifiers/LAchildID")
            for ep in child.iter("CINdetails"):
                key = (cid, _text(ep, "CINreferralDate"))
                out[key] = {
                    "closure": _text(ep, "CINclosureDate"),
                    "fields": [
                        _text(ep, t) for t in ("ReferralSource", "PrimaryNeedCode", "ReferralNFA")
                    ],
                    "cpp": {
                        _text(c, "CPPstartDate"): [
                            _text(c, t)
                            for t in (
                                "InitialCategoryOfAbuse",
                                "LatestCategoryOfAbuse",
                                "NumberOfPreviousCPP",
                            )
                        ]
                        for c in ep.iter("ChildProtectionPlans")
                    },
                }
        return out

    checked = 0
    la = json.loads((clean / "truth" / "summary.json").read_text())["la_codes"][0]
    for year in (2019, 2020, 2021, 2022):
        before = episodes(clean / "cin" / f"cin_{year}_{la}.xml")
        after = episodes(clean / "cin" / f"cin_{year + 1}_{la}.xml")
        for key, ep in before.items():
            if ep["closure"] is None:
                assert key in after, "an open episode must be re-sent with its referral date"
                later = after[key]
                assert later["fields"][:2] == ep["fields"][:2]
                assert (later["fields"][2] in {"1", "true"}) == (ep["fields"][2] in {"1", "true"})
                for start, values in ep["cpp"].items():
                    if start in later["cpp"]:
                        assert later["cpp"][start] == values
                checked += 1
            else:
                assert key not in after, "a closed episode is not re-sent"
    assert checked > 50


def test_truth_matches_returns_and_has_no_overlaps(clean: Path) -> None:
    episodes = pl.read_parquet(clean / "truth" / "episodes.parquet")
    needed = {
        "la_code", "la_child_id", "upn", "referral_date", "closure_date", "latent_closure_date",
        "closure_reason", "age_band", "disabled", "first_cpp_start", "entered_care_date",
        "rereferral_12m", "latent_cpp_days", "latent_close_days", "cpp_hazard_ratio",
    }  # fmt: skip
    assert needed <= set(episodes.columns)
    overlaps = (
        episodes.sort("person_id", "referral_date")
        .with_columns(prev_close=pl.col("latent_closure_date").shift(1).over("person_id"))
        .filter(pl.col("prev_close") >= pl.col("referral_date"))
    )
    assert overlaps.height == 0
    la = episodes["la_code"][0]
    in_2020 = episodes.filter(
        (pl.col("la_code") == la)
        & (pl.col("referral_date") <= date(2020, 3, 31))
        & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= date(2019, 4, 1)))
    )
    root = etree.parse(str(clean / "cin" / f"cin_2020_{la}.xml")).getroot()
    assert len(root.findall(".//CINdetails")) == in_2020.height
    assert len(root.findall(".//Child")) == in_2020["la_child_id"].n_unique()


def test_children_moving_la_keep_their_upn_under_a_new_id(clean: Path) -> None:
    children = pl.read_parquet(clean / "truth" / "children.parquet")
    movers = (
        children.group_by("person_id")
        .agg(pl.col("la_code").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    assert movers.height > 0
    sample = children.join(movers, on="person_id", how="semi").filter(pl.col("upn").is_not_null())
    assert sample.group_by("person_id").agg(pl.col("upn").n_unique())["upn"].max() == 1


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    def digest(out: Path) -> dict[str, str]:
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        generate(out, las=2, years=(2018, 2019), scale=120, seed=seed, mess=True, progress=False)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_mess_is_recorded_and_present_in_the_files(messy: Path) -> None:
    record = json.loads((messy / "truth" / "mess.json").read_text())
    counts = record["counts"]
    assert set(counts) == {*KINDS, "truncated_xml"}
    assert all(counts[k] > 0 for k in KINDS) and counts["truncated_xml"] == 1
    assert (
        sum(r["kind"] == "duplicate_child" for r in record["records"]) == counts["duplicate_child"]
    )
    truncated = messy / "cin" / record["truncated_files"][0]
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(truncated))
    found = {k: 0 for k in KINDS}
    for path in _cin_files(messy):
        year, la = int(path.stem.split("_")[1]), path.stem.split("_")[2]
        root = etree.parse(str(path)).getroot()
        ids = [e.text for e in root.iter("LAchildID")]
        mine = [r for r in record["records"] if r["census_year"] == year and r["la_code"] == la]
        dups = {r["la_child_id"] for r in mine if r["kind"] == "duplicate_child"}
        assert {i for i in ids if ids.count(i) > 1} == dups
        by_id = {}
        for child in root.iter("Child"):
            by_id[_text(child, "ChildIdentifiers/LAchildID")] = child
        for r in mine:
            child = by_id[r["la_child_id"]]
            if r["kind"] == "missing_upn":
                assert child.find("ChildIdentifiers/UPN") is None
                assert child.find("ChildIdentifiers/UPNunknown") is None
            elif r["kind"] == "closure_before_referral":
                ep = next(
                    e
                    for e in child.iter("CINdetails")
                    if _text(e, "CINreferralDate") == r["referral_date"]
                )
                assert _text(ep, "CINclosureDate") == r["value"] < r["referral_date"]
            elif r["kind"] == "unknown_code":
                values = {e.text for e in child.iter(r["field"])}
                assert r["value"] in values
            found[r["kind"]] += 1
    assert found == {k: counts[k] for k in KINDS}


def test_upn_check_letter_worked_example() -> None:
    assert upn_check_letter("207000016049") == "P"
    assert is_valid_upn("P207000016049") and not is_valid_upn("Q207000016049")


def test_effects_yaml_matches_the_generator_parameters() -> None:
    effects = yaml.safe_load(EFFECTS_YAML.read_text())
    cpp = effects["planted_effects"]["cpp_hazard"]
    assert cpp["hazard_ratios"]["age_band"] == DEFAULT_PARAMS.cpp_hr_age
    assert cpp["hazard_ratios"]["disabled"] == DEFAULT_PARAMS.cpp_hr_disabled
    assert cpp["la_random_effect_sd_log"] == DEFAULT_PARAMS.cpp_hazard_sd_log
    assert {
        k: v["hazard_ratio"] for k, v in cpp["outlier_las"].items()
    } == DEFAULT_PARAMS.outlier_cpp_hr
    closure = effects["planted_effects"]["closure_hazard"]
    assert closure["hazard_ratios"]["disabled"] == DEFAULT_PARAMS.closure_hr_disabled
    assert (
        effects["planted_effects"]["referral_rate"]["la_random_effect_sd_log"]
        == DEFAULT_PARAMS.referral_rate_sd_log
    )
    assert effects["planted_effects"]["moves"]["rate_per_year"] == DEFAULT_PARAMS.move_rate_per_year
    care = effects["planted_effects"]["care_entry"]
    assert care["after_cpp_probability"] == DEFAULT_PARAMS.care_after_cpp_prob
    assert care["without_plan_probability"] == DEFAULT_PARAMS.care_without_plan_prob
    first = effects["planted_effects"]["first_referral"]
    assert first["age_band_shares"] == DEFAULT_PARAMS.first_referral_age_band
    assert first["sex_shares"] == DEFAULT_PARAMS.sex_shares
    assert first["referral_amplification"] == DEFAULT_PARAMS.referral_amplification
    from cinresearch.synth.implied import first_referral_risk
    from cinresearch.synth.population import MALE_SHARE_POPULATION

    assert first["population_male_share"] == MALE_SHARE_POPULATION
    implied = first["implied_risk_before_age_5"]
    for key, sex in (("all", None), ("boys", "M"), ("girls", "F")):
        risk = first_referral_risk(2018, 4, sex=sex)["cumulative_risk"][4]
        assert round(risk, 3) == implied[key], (key, risk)
    from cinresearch.synth.education import EDUCATION_EFFECTS

    assert effects["planted_effects"]["education"] == EDUCATION_EFFECTS


def test_world_is_deterministic_in_memory_and_la_effects_are_as_stated() -> None:
    a = simulate(las=2, years=(2018, 2018), scale=100, seed=5, education=False)
    b = simulate(las=2, years=(2018, 2018), scale=100, seed=5, education=False)
    assert a.episodes.equals(b.episodes)
    assert a.las["la_code"].to_list() == ["886", "352"]
    world = simulate(las=10, years=(2018, 2018), scale=50, seed=5, education=False)
    hr = dict(zip(world.las["la_code"], world.las["cpp_hazard_ratio"], strict=True))
    assert hr["890"] == pytest.approx(2.2) and hr["826"] == pytest.approx(0.45)
