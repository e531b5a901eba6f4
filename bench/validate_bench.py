"""Microseconds per validate_resource() call on a typical Observation and Patient.

    python bench/validate_bench.py [--n 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OBSERVATION = {
    "resourceType": "Observation",
    "id": "9b1f1a2e-7c1d-4a51-b0a4-3e0c7f1d2a11",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-31T08:30:00.123Z"},
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs", "display": "Vital Signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
             "text": "Heart rate"},
    "subject": {"reference": "Patient/pat-1"},
    "encounter": {"reference": "Encounter/enc-1"},
    "effectiveDateTime": "2024-01-31T08:30:00+01:00",
    "issued": "2024-01-31T08:30:00.123+01:00",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}

PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-31T08:30:00.123Z"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane Doe</div>'},
    "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"}],
    "identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN-12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Doe", "given": ["Jane", "Q"], "prefix": ["Ms."]}],
    "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
    "gender": "female",
    "birthDate": "1974-12-25",
    "address": [{"line": ["534 Erewhon St"], "city": "Springfield", "state": "MA",
                 "postalCode": "01101", "country": "US"}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                  "code": "M"}]},
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}}],
}


def per_call_us(fn, resource: dict, n: int) -> float:
    best = float("inf")
    for _ in range(5):  # best of 5 runs: least disturbed by the rest of the machine
        start = time.perf_counter()
        for _ in range(n):
            fn(resource)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n

    start = time.perf_counter()
    from mockehr.fhir import validate
    imported = time.perf_counter()
    assert validate.validate_resource(OBSERVATION) == [] and validate.validate_resource(PATIENT) == []
    loaded = time.perf_counter()
    print(f"import: {(imported - start) * 1e3:.1f} ms, first call (loads structure): "
          f"{(loaded - imported) * 1e3:.1f} ms")
    for name, resource in (("Observation", OBSERVATION), ("Patient", PATIENT)):
        print(f"{name}: {per_call_us(validate.validate_resource, resource, n):.1f} us per validation")


if __name__ == "__main__":
    main()
