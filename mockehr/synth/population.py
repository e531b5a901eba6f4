"""Patients beyond the designed ones: random, but drawn from rough US prevalence."""

from __future__ import annotations

import random

from mockehr.synth.clinical import CONDITIONS
from mockehr.synth.codes import years as Y
from mockehr.synth.formulary import ALLERGENS
from mockehr.synth.personas import Dx, Event, Persona

# (lowest age, chance by age band [<18, 18-39, 40-64, 65+], who: any | female | male)
PREVALENCE = {
    "hypertension": (18, (0, 0.08, 0.33, 0.6), "any"),
    "hyperlipidemia": (30, (0, 0.04, 0.28, 0.45), "any"),
    "t2dm": (30, (0, 0.03, 0.12, 0.22), "any"),
    "prediabetes": (30, (0, 0.06, 0.12, 0.1), "any"),
    "obesity": (12, (0.05, 0.25, 0.33, 0.28), "any"),
    "asthma": (3, (0.08, 0.07, 0.07, 0.06), "any"),
    "copd": (45, (0, 0, 0.06, 0.11), "any"),
    "ckd3": (50, (0, 0, 0.04, 0.14), "any"),
    "afib": (55, (0, 0, 0.02, 0.1), "any"),
    "heart-failure": (55, (0, 0, 0.02, 0.07), "any"),
    "cad": (45, (0, 0, 0.05, 0.14), "any"),
    "hypothyroidism": (18, (0, 0.05, 0.1, 0.14), "female"),
    "depression": (14, (0.03, 0.1, 0.09, 0.07), "any"),
    "anxiety": (10, (0.05, 0.1, 0.08, 0.05), "any"),
    "osteoporosis": (55, (0, 0, 0.06, 0.2), "female"),
    "osteoarthritis-knee": (45, (0, 0, 0.08, 0.15), "any"),
    "adhd": (5, (0.08, 0.03, 0, 0), "any"),
    "allergic-rhinitis": (4, (0.1, 0.12, 0.1, 0.06), "any"),
    "migraine": (12, (0.03, 0.12, 0.1, 0.03), "female"),
}
# (condition, where it is seen, ages from-to, chance in percent over the record)
ACUTE = (("strep-throat", "clinic", 3, 60, 25), ("sinusitis", "clinic", 12, 99, 25),
         ("bronchitis", "clinic", 5, 99, 20), ("uti", "clinic", 16, 99, 20), ("otitis-media", "clinic", 0, 12, 30),
         ("ankle-sprain", "emergency", 8, 70, 10), ("pneumonia", "inpatient", 65, 99, 6))
AGE_BANDS = ((0.02, 0, 1), (0.18, 1, 18), (0.27, 18, 40), (0.32, 40, 65), (0.21, 65, 92))
RACE_WEIGHTS = (("white", 0.6), ("black", 0.13), ("asian", 0.06), ("aian", 0.01), ("nhpi", 0.005),
                ("multiple", 0.04), ("unknown", 0.03), ("declined", 0.02))


def _weighted(rng: random.Random, pairs) -> str:
    roll, total = rng.random() * sum(w for _, w in pairs), 0.0
    for value, weight in pairs:
        total += weight
        if roll < total:
            return value
    return pairs[-1][0]


def _band(age: float) -> int:
    return 0 if age < 18 else 1 if age < 40 else 2 if age < 65 else 3


def random_persona(rng: random.Random) -> Persona:
    _, low, high = _pick_band(rng)
    age = rng.uniform(low, high)
    gender = rng.choice(("female", "male"))
    history = Y(rng.uniform(1, 4))
    diagnoses = []
    for key, (min_age, chances, who) in PREVALENCE.items():
        if age < min_age or (who != "any" and who != gender) or rng.random() >= chances[_band(age)]:
            continue
        if key == "prediabetes" and any(d.condition == "t2dm" for d in diagnoses):
            continue
        onset = Y(rng.uniform(0.3, min(age - min_age, 15) + 0.3))
        diagnoses.append(Dx(key, min(onset, Y(age) - 30)))
    span = min(history, Y(age)) - 5
    for key, setting, min_age, max_age, chance_percent in ACUTE:
        if span > 20 and min_age <= age < max_age and rng.random() < chance_percent / 100:
            diagnoses.append(Dx(key, rng.randint(20, span), setting, stay_days=rng.randint(2, 5)))
    smoking = None if age < 12 else _weighted(rng, (("never", 0.6), ("former", 0.25), ("current", 0.15)))
    if smoking == "current" and age >= 18:
        diagnoses.insert(0, Dx("tobacco-dependence", Y(min(age - 16, 20))))
    hispanic = rng.random() < 0.18
    spanish = hispanic and rng.random() < 0.35
    if age >= 65:
        coverage = "medicare"
    else:
        coverage = _weighted(rng, (("commercial", 0.68), ("medicaid", 0.27 if age >= 18 else 0.4), ("none", 0.05)))
    allergy_roll = rng.random()
    allergies: tuple[str, ...] = ()
    if allergy_roll < 0.3:
        allergies = ("nka",)
    elif allergy_roll < 0.6:
        keys = list(ALLERGENS)
        allergies = tuple(dict.fromkeys(rng.choice(keys) for _ in range(rng.randint(1, 2))))
    names = [CONDITIONS[d.condition].name for d in diagnoses if CONDITIONS[d.condition].chronic]
    female = gender == "female"
    person = ("woman" if female else "man") if age >= 18 else ("girl" if female else "boy")
    how_old = f"{int(age)}-year-old" if age >= 1 else f"{int(age * 12)}-month-old"
    story = f"{how_old} {person}" + (f" with {', '.join(names)}." if names else " in good health.")
    features = tuple(f for f, on in (("parents", age < 18), ("contact", age >= 75),
                                     ("dispenses", rng.random() < 0.3)) if on)
    events = (Event(Y(age), "birth", stay_days=2),) if age < 1 else ()
    return Persona(
        slug="", gender=gender, age_days=Y(age), story=story, good_for=("volume and variety",),
        diagnoses=tuple(diagnoses), events=events, allergies=allergies, history_days=history,
        race=_weighted(rng, RACE_WEIGHTS), ethnicity="hispanic" if hispanic else "not-hispanic",
        language="es" if spanish else "en", interpreter=spanish and rng.random() < 0.5,
        name_locale="es_MX" if hispanic else "en_US", smoking=smoking,
        coverage=None if coverage == "none" else coverage,
        medication_style="reference" if rng.random() < 0.2 else "codeable", features=features,
    )


def _pick_band(rng: random.Random) -> tuple[float, float, float]:
    roll, total = rng.random(), 0.0
    for band in AGE_BANDS:
        total += band[0]
        if roll < total:
            return band
    return AGE_BANDS[-1]
