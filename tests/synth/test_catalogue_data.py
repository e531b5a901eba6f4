"""The clinical tables and personas only name things that exist, and say true things."""

from __future__ import annotations

from mockehr.synth.clinical import CONDITIONS, EFFECTS, LAB_TESTS, PANELS, SCREENING_PANELS
from mockehr.synth.formulary import ALLERGENS, DRUGS, PROCEDURES, VACCINES, CHILD_SCHEDULE
from mockehr.synth.personas import FEATURES, PERSONAS


def test_catalogue_keys_resolve():
    for key, condition in CONDITIONS.items():
        assert all(d in DRUGS for d in condition.drugs), key
        assert all(p in PANELS for p, _ in condition.monitoring), key
        assert all(p in PROCEDURES for p, _ in condition.procedures), key
    for panel in PANELS.values():
        assert all(t in LAB_TESTS for t in panel.tests)
    assert all(p in PANELS for p, _ in SCREENING_PANELS)
    assert all(k in CONDITIONS for k in EFFECTS)
    assert all(v in VACCINES for v, _ in CHILD_SCHEDULE)


def test_personas_use_known_keys():
    slugs = [p.slug for p in PERSONAS]
    assert len(PERSONAS) == 25 and len(set(slugs)) == 25
    for persona in PERSONAS:
        assert all(f in FEATURES for f in persona.features), persona.slug
        assert all(dx.condition in CONDITIONS for dx in persona.diagnoses), persona.slug
        assert all(a == "nka" or a in ALLERGENS for a in persona.allergies), persona.slug
        assert all(step.drug in DRUGS for step in persona.extra_drugs), persona.slug
        assert all(e.procedure is None or e.procedure in PROCEDURES for e in persona.events), persona.slug
        assert all(a in DRUGS and b in DRUGS for a, b in persona.drug_swaps), persona.slug
        assert all(p in PANELS for p, _ in persona.extra_labs), persona.slug
        assert persona.story and persona.good_for


def test_reference_ranges_contain_healthy_values():
    """A healthy person's values (mean +/- 1.5 sd, as sampled) are in range, so the
    'everything normal' persona really has no flags."""
    for test in LAB_TESTS.values():
        for typical, low, high in ((test.typical, test.low, test.high),
                                   (test.female_typical, test.female_low, test.female_high)):
            if typical is None or test.loinc in ("789-8", "4544-3", "787-2", "786-4", "98979-8", "2093-3"):
                continue   # derived from other results
            mean, sd = typical
            assert low is None or mean - 1.5 * sd >= low, test.loinc
            assert high is None or mean + 1.5 * sd <= high, test.loinc
