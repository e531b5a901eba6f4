"""Every resource is valid FHIR R4: fhir.resources (R4B models) and fhirclient (R4, strict)."""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from pydantic import ValidationError


def problems(resources: list[dict]) -> list[str]:
    found = []
    for resource in resources:
        where = f"{resource['resourceType']}/{resource['id']}"
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValidationError as exc:
            found.append(f"{where} (fhir.resources): {exc}")
        try:
            FHIRElementFactory.instantiate(resource["resourceType"], copy.deepcopy(resource))
        except FHIRValidationError as exc:
            found.append(f"{where} (fhirclient): {exc}")
    return found


def test_default_dataset_validates(dataset):
    assert problems(dataset.resources) == []


def test_random_patients_validate(larger_dataset):
    assert problems(larger_dataset.resources) == []


@pytest.mark.parametrize("breakage", ["unknown key", "bad date", "wrong type"])
def test_validators_catch_broken_resources(dataset, breakage):
    patient = copy.deepcopy(next(r for r in dataset.resources if r["resourceType"] == "Patient"))
    if breakage == "unknown key":
        patient["favouriteColour"] = "blue"
    elif breakage == "bad date":
        patient["birthDate"] = "1990-13-40"
    else:
        patient["active"] = {"yes": True}
    assert len(problems([patient])) == 2
