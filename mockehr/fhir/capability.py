"""The CapabilityStatement, built from the same tables the server runs on."""

from __future__ import annotations

from functools import lru_cache

from mockehr import __version__
from mockehr.fhir.bulk import BULK_CAPABILITY, DEFAULT_MAX_LINES, OPERATION_DEFINITIONS
from mockehr.fhir.searchparams import (
    DEFINITIONS, PATIENT_COMPARTMENT, REFERENCE_TARGETS, RESOURCE_TYPES, params_for, reference_params,
)

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"
# US Core 7.0 profiles per type (the ones our data claims in meta.profile).
_PROFILES = {
    "AllergyIntolerance": ["allergyintolerance"], "CarePlan": ["careplan"], "CareTeam": ["careteam"],
    "Condition": ["condition-problems-health-concerns", "condition-encounter-diagnosis"],
    "Coverage": ["coverage"], "Device": ["implantable-device"],
    "DiagnosticReport": ["diagnosticreport-lab", "diagnosticreport-note"],
    "DocumentReference": ["documentreference"], "Encounter": ["encounter"], "Goal": ["goal"],
    "Immunization": ["immunization"], "Location": ["location"], "Medication": ["medication"],
    "MedicationDispense": ["medicationdispense"], "MedicationRequest": ["medicationrequest"],
    "Observation": ["observation-lab", "vital-signs", "blood-pressure", "heart-rate", "respiratory-rate",
                    "body-temperature", "pulse-oximetry", "body-height", "body-weight", "bmi",
                    "smokingstatus", "observation-clinical-result", "observation-screening-assessment",
                    "simple-observation", "observation-pregnancystatus", "observation-sexual-orientation"],
    "Organization": ["organization"], "Patient": ["patient"], "Practitioner": ["practitioner"],
    "PractitionerRole": ["practitionerrole"], "Procedure": ["procedure"], "Provenance": ["provenance"],
    "QuestionnaireResponse": ["questionnaireresponse"], "RelatedPerson": ["relatedperson"],
    "ServiceRequest": ["servicerequest"], "Specimen": ["specimen"],
}
_INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"]
_SEARCH_PARAM_DOCS = {
    "_id": "Logical id", "_lastUpdated": "When the resource version last changed",
    "_profile": "Profiles this resource claims to conform to", "_tag": "Tags applied to this resource",
    "_security": "Security labels applied to this resource",
}


def _rev_includes(rtype: str) -> list[str]:
    return sorted(f"{source}:{param}" for source in RESOURCE_TYPES for param in reference_params(source)
                  if rtype in REFERENCE_TARGETS.get(param, ()))


def _resource_entry(rtype: str) -> dict:
    entry = {"type": rtype, "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}"}
    if rtype in _PROFILES:
        entry["supportedProfile"] = [US_CORE + name for name in _PROFILES[rtype]]
    entry.update({
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "referencePolicy": ["literal", "local"],
        "searchInclude": sorted(f"{rtype}:{p}" for p in reference_params(rtype)),
        "searchRevInclude": _rev_includes(rtype),
        "searchParam": [
            {"name": name, "type": ptype, "documentation": _SEARCH_PARAM_DOCS.get(name, f"{rtype}.{path}")}
            for name, (ptype, path) in params_for(rtype).items()
        ],
    })
    if rtype == "Patient":
        entry["operation"] = [{"name": "everything",
                               "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                              {"name": "export", "definition": OPERATION_DEFINITIONS["patient"]}]
    if rtype == "Group":
        entry["operation"] = [{"name": "export", "definition": OPERATION_DEFINITIONS["group"]}]
    return entry


@lru_cache(maxsize=8)
def _statement(started: str) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": started,
        "publisher": "mockehr",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server", BULK_CAPABILITY],
        "software": {"name": "mockehr", "version": __version__},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Searches accept Prefer: handling=strict to refuse unknown parameters; "
                             "patient compartment: " + ", ".join(sorted(PATIENT_COMPARTMENT)) + ". "
                             f"Bulk Data export (system, Patient, Group): NDJSON files of at most {DEFAULT_MAX_LINES:,} "
                             "resources; Patient and Group exports include the resources their data references.",
            "resource": [_resource_entry(rtype) for rtype in RESOURCE_TYPES if rtype in DEFINITIONS],
            "interaction": [{"code": "history-system"}],
            "operation": [{"name": "export", "definition": OPERATION_DEFINITIONS["system"]}],
        }],
    }


def capability_statement(fhir_base: str, started: str, security: dict | None = None) -> dict:
    statement = dict(_statement(started))
    statement["implementation"] = {"description": "mockehr FHIR R4 server", "url": fhir_base}
    if security:
        rest = dict(statement["rest"][0])
        rest["security"] = security
        statement["rest"] = [rest]
    return statement
