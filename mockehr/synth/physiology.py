"""Plausible numbers: body size, vital signs and lab values for a patient on a day.

Values come from what is normal for age and sex, moved by the patient's active
conditions (clinical.EFFECTS) and drugs, and improve once treatment starts.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date

from mockehr.synth.clinical import DRUG_EFFECTS, EFFECTS, LAB_TESTS, NEWBORN_BILIRUBIN_RANGE, Effect, LabTest
from mockehr.synth.personas import Persona
from mockehr.synth.timeline import Plan

# CDC 50th percentiles by age in years: (length/height cm, weight kg), boys then girls.
GROWTH = {
    "male": ((0, 49.9, 3.3), (0.25, 61.4, 6.4), (0.5, 67.6, 7.9), (1, 75.7, 9.6), (2, 87.1, 12.2),
             (3, 95.2, 14.3), (4, 102.5, 16.3), (5, 109.2, 18.4), (6, 115.5, 20.7), (7, 121.7, 22.9),
             (8, 127.3, 25.6), (10, 137.8, 32.0), (12, 149.1, 40.5), (14, 163.2, 51.0), (16, 173.4, 61.3),
             (18, 176.1, 67.8)),
    "female": ((0, 49.1, 3.2), (0.25, 59.8, 5.8), (0.5, 65.7, 7.3), (1, 74.0, 8.9), (2, 85.7, 11.5),
               (3, 94.1, 13.9), (4, 101.6, 15.9), (5, 108.4, 18.0), (6, 114.6, 20.2), (7, 120.6, 22.4),
               (8, 126.6, 25.4), (10, 138.3, 32.5), (12, 151.5, 41.5), (14, 159.8, 49.5), (16, 162.5, 54.0),
               (18, 163.4, 56.0)),
}
# Head circumference medians (cm) by age in years, for the first two years.
HEAD = {"male": ((0, 34.5), (0.083, 37.3), (0.25, 40.5), (0.5, 43.3), (1, 46.1), (2, 48.3)),
        "female": ((0, 33.9), (0.083, 36.5), (0.25, 39.5), (0.5, 42.2), (1, 45.0), (2, 47.2))}

# Resting vital signs by age (upper bound in years): (mean, sd).
HEART_RATE = ((0.1, 140, 10), (1, 128, 10), (3, 112, 9), (6, 100, 8), (12, 88, 8), (18, 78, 8), (200, 72, 7))
RESP_RATE = ((0.1, 44, 5), (1, 34, 4), (3, 27, 3), (6, 23, 2), (12, 20, 2), (18, 17, 2), (200, 15, 1.5))


@dataclass(frozen=True)
class Body:
    sex: str
    height_factor: float   # this child's size relative to the median
    weight_factor: float
    adult_height: float    # cm
    adult_bmi: float
    phase: float           # where the slow weight drift starts


def make_body(persona: Persona, sex: str, rng: random.Random) -> Body:
    keys = [dx.condition for dx in persona.diagnoses]
    if "obesity" in keys:
        bmi = rng.gauss(34.5, 1.8)
    elif "t2dm" in keys or "prediabetes" in keys:
        bmi = rng.gauss(30.5, 1.5)
    else:
        bmi = min(max(rng.gauss(25.0, 2.5), 19.5), 29.4)
    height = rng.gauss(176.5, 6.5) if sex == "male" else rng.gauss(163.0, 6.0)
    return Body(sex, rng.gauss(1.0, 0.025), rng.gauss(1.0, 0.07), height, bmi, rng.uniform(0, 6.28))


def _interpolate(table: tuple, age: float, column: int) -> float:
    for lower, upper in zip(table, table[1:]):
        if age <= upper[0]:
            span = (age - lower[0]) / (upper[0] - lower[0])
            return lower[column] + (upper[column] - lower[column]) * max(span, 0.0)
    return table[-1][column]


def normal_cdf_percent(z: float) -> float:
    return round(min(max(50 * (1 + math.erf(z / math.sqrt(2))), 1.0), 99.0), 1)


def age_years(plan: Plan, day: date) -> float:
    return (day - plan.birth).days / 365.25


def height_cm(body: Body, plan: Plan, day: date) -> float:
    age = age_years(plan, day)
    if age >= 18:
        return body.adult_height
    return _interpolate(GROWTH[body.sex], age, 1) * body.height_factor


def weight_kg(body: Body, plan: Plan, day: date) -> float:
    age = age_years(plan, day)
    if age < 18:
        weight = _interpolate(GROWTH[body.sex], age, 2) * body.weight_factor
        days = (day - plan.birth).days
        if days <= 12:   # newborns lose up to 7% in the first days and regain it by two weeks
            weight *= 1 - 0.07 * (days / 3 if days <= 3 else (12 - days) / 9)
        return weight
    metres = body.adult_height / 100
    drift = 1 + 0.025 * math.sin((day.toordinal() / 900) * 2 * math.pi + body.phase)
    weight = body.adult_bmi * metres * metres * drift
    pregnancy = next((p for p in plan.problems if p.key == "pregnancy" and p.active_on(day)), None)
    if pregnancy:
        weeks = (day - pregnancy.onset).days / 7 + 8   # gestational age: first seen at 8 weeks
        weight += max(weeks - 12, 0) * 0.45
    return weight


def head_cm(body: Body, plan: Plan, day: date) -> float:
    return _interpolate(HEAD[body.sex], age_years(plan, day), 1) * (1 + (body.height_factor - 1) * 0.8)


def head_percentile(body: Body) -> float:
    return normal_cdf_percent((body.height_factor - 1) * 0.8 / 0.03)


def weight_for_length_percentile(body: Body) -> float:
    return normal_cdf_percent((body.weight_factor / body.height_factor - 1) / 0.08)


def bmi_percentile(body: Body) -> float:
    return normal_cdf_percent((body.weight_factor / body.height_factor ** 2 - 1) / 0.13)


def _by_age(table: tuple, age: float) -> tuple[float, float]:
    return next((mean, sd) for upper, mean, sd in table if age < upper)


def vital_baseline(key: str, plan: Plan, day: date) -> tuple[float, float]:
    age = age_years(plan, day)
    if key == "hr":
        return _by_age(HEART_RATE, age)
    if key == "rr":
        return _by_age(RESP_RATE, age)
    if key == "sbp":
        return (96 + 1.2 * age, 6) if age < 12 else (112, 8) if age < 18 else (114 + 0.3 * max(age - 30, 0), 8)
    if key == "dbp":
        return (58 + 0.6 * age, 5) if age < 12 else (68, 6) if age < 18 else (74 + 0.1 * max(age - 30, 0), 6)
    if key == "temp":
        return 36.8, 0.2
    if key == "spo2":
        return 98.0, 0.8
    raise KeyError(key)


def lab_baseline(test: LabTest, sex: str) -> tuple[float, float]:
    return test.female_typical if sex == "female" and test.female_typical else test.typical


def reference_range(test: LabTest, sex: str, newborn: bool) -> tuple[float | None, float | None]:
    if newborn and test.loinc == "1975-2":
        return NEWBORN_BILIRUBIN_RANGE
    if sex == "female" and test.female_typical:
        return test.female_low, test.female_high
    return test.low, test.high


def _effect_mean(effect: Effect, treated_since: date | None, day: date, control: float) -> tuple[float, float]:
    if effect.treated_mean is None or treated_since is None or day < treated_since:
        return effect.mean, effect.sd
    progress = min((day - treated_since).days / effect.ramp_days, 1.0) * control
    sd = effect.treated_sd if effect.treated_sd is not None else effect.sd
    return effect.mean + (effect.treated_mean - effect.mean) * progress, sd


def expected(key: str, persona: Persona, plan: Plan, day: date, baseline: tuple[float, float]) -> tuple[float, float]:
    """Mean and sd of a measurement that day: the first active condition that moves it
    (acute problems before chronic ones), else a drug that does, else the baseline."""
    problems = sorted(plan.problems, key=lambda p: p.definition.chronic)
    for problem in problems:
        effect = EFFECTS.get(problem.key, {}).get(key)
        if effect and problem.active_on(day):
            control = 0.4 if problem.key in persona.poorly_controlled else 1.0
            return _effect_mean(effect, problem.treated_since or problem.onset, day, control)
    for course in plan.courses:
        effect = DRUG_EFFECTS.get(course.drug, {}).get(key)
        if effect and course.active_on(day):
            return effect.mean, effect.sd
    return baseline


def sample(rng: random.Random, mean: float, sd: float, low: float = 0.0) -> float:
    """A normal draw cut at 1.5 sd, so that a healthy person's values stay in range."""
    return max(mean + sd * min(max(rng.gauss(0.0, 1.0), -1.5), 1.5), low)


def ckd_epi_2021(creatinine: float, age: float, sex: str) -> float:
    """eGFR in mL/min/1.73 m2 by the race-free CKD-EPI 2021 creatinine equation."""
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine / kappa
    egfr = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938 ** age
    return egfr * (1.012 if sex == "female" else 1.0)


# Computed from other results of the same panel rather than measured.
DERIVED = ("789-8", "4544-3", "787-2", "786-4", "98979-8")


def panel_values(tests: tuple[str, ...], persona: Persona, plan: Plan, day: date, rng: random.Random) -> dict:
    """Values for one panel's tests, with the derived ones (indices, totals, eGFR) computed
    from the measured ones so a panel is internally consistent."""
    sex = plan.sex
    measured = [code for code in tests if code not in DERIVED]
    values = {code: sample(rng, *expected(code, persona, plan, day, lab_baseline(LAB_TESTS[code], sex)), 0.01)
              for code in measured}
    if "4544-3" in tests:   # a counter measures hemoglobin and cell size; the rest follows
        hgb, mch = values["718-7"], values["785-6"]
        values["789-8"] = hgb / mch * 10
        values["4544-3"] = hgb * sample(rng, 2.97, 0.02)
        values["787-2"] = values["4544-3"] / values["789-8"] * 10
        values["786-4"] = hgb / values["4544-3"] * 100
    if "2093-3" in values:
        values["2093-3"] = values["18262-6"] + values["2085-9"] + values["2571-8"] / 5
    age = age_years(plan, day)
    if "98979-8" in tests and age >= 18:
        values["98979-8"] = ckd_epi_2021(values["2160-0"], age, sex)
    return {code: rounded(values[code], LAB_TESTS[code].decimals) for code in tests if code in values}


def rounded(value: float, decimals: int) -> float | int:
    """JSON numbers as a lab prints them: whole numbers without a trailing .0."""
    return int(round(value)) if decimals == 0 else round(value, decimals)


def interpretation(value: float, low: float | None, high: float | None) -> str:
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return "N"
