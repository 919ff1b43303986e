"""Synthetic linked CIN census / SSDA903 / NPD data with documented planted effects.

``generate(out, las=10, years=(2018, 2024), scale=2000, seed=1, mess=False)`` simulates
children over time in ``las`` real English LAs (old 3-digit codes, see :mod:`.las`) and writes
the real formats: CIN census XML per LA per census year, SSDA903 Header/Episodes CSVs, NPD
pupil CSVs, ONS-style 0–17 populations, and ground truth (``out/truth``). ``simulate(...)``
returns the same world in memory as polars frames (:class:`SynthWorld`). ``scale`` is about
the number of referrals per LA per year (England ≈ 152 × 4,300). Same seed → identical files.

Calibration (2017-18 England, national_figures.md §10): referral rate 552.5 per 10,000 (LA
populations are built from it), CIN at 31 March ≈ 0.617 per referral, age / sex / disability /
primary need / referral source mixes, NFA 9.4%, re-referral within 12 months 21.9%, S47, ICPC
and CPP ratios, CPP categories and ending durations, second plans 20.2%, assessment and ICPC
working-day timeliness, closure reasons, episode durations, looked-after starts and stock. A
12-year burn-in before the first census year gives realistic carried-over episodes and
previous referrals. Checked end to end (XML -> load -> indicators) against the published
figures: ``data_contracts/calibration_2018.yaml``, ``tests/test_calibration_end_to_end.py``.

Planted effects (also in ``data_contracts/synth_effects.yaml``; tests check they agree):

* **Referral → CPP (competing risks).** After a referral that is not NFA, the latent times
  to CPP start and to closure without a plan are independent given covariates, each with a
  piecewise-constant baseline hazard on a daily scale. Cause-specific hazard ratios for CPP
  (reference: age 5–9 at referral, not disabled): unborn 2.0, under 1 1.3, 1–4 1.3, 10–15
  0.8, 16+ 0.08; disabled 1.5. LA random effect on the log CPP hazard, SD 0.25, and two named
  outliers: 890 Blackpool × 2.2 and 826 Milton Keynes × 0.45. Closure without a plan has no
  covariate effects (it cannot precede the assessment authorisation; care keeps an episode
  open). A cause-specific Cox model stratified by LA recovers the ratios.
* **Age and sex at first referral → lifetime risk.** The age band at a child's first referral
  (unborn 8%, under 1 9.5%, 1-4 13.5%, ...), uniform within the band, and 54% boys, with the
  population by single year of age, fix the cumulative risk of a first referral by age for a
  birth cohort (16.8% before age 5 for children born 2017-18): :mod:`.implied` computes it
  from the parameters; :func:`cinresearch.lifetime.birth_cohort_risk` recovers it.
* **Censoring.** Data end = 31 March of the last census year (later events unobserved);
  every episode closes on the child's 18th birthday at the latest (no plan after it).
* **LA referral rates.** Log-normal LA effect, SD 0.30, rescaled so England averages 552.5.
* **Re-referral.** After closure (not death/adoption) a new referral with probability 0.52
  × LA multiplier, after an exponential gap (mean 110 days for 45%, 900 days otherwise).
* **Moves.** Between episodes a child moves LA at 2% per year (and after an RC5 closure with
  probability 0.85): new LAchildID in the new LA, same UPN, plans counted across LAs.
* **Care.** Looked after when a CPP ends with probability 0.35; during an episode without a
  plan with probability 0.06; the CIN episode stays open until care ends.
* **Education (NPD).** For CIN children in the academic year: absence rate × 2.0, suspensions
  × 3.0, permanent exclusion × 4.0, KS2 expected standard log-odds − 0.8, KS4 Attainment 8
  − 10 points (plus FSM/SEN effects and smaller "ever CIN" effects; exact models in the YAML),
  against a never-referred comparison sample of pupils.

``mess=True`` adds missing UPNs, closures before referral, unknown codes, duplicated
children and one truncated XML file, listed record by record in ``out/truth/mess.json``
(see :mod:`.mess`).
"""

from cinresearch.synth.generate import SynthSummary, generate
from cinresearch.synth.simulate import SynthWorld, simulate

__all__ = ["SynthSummary", "SynthWorld", "generate", "simulate"]
