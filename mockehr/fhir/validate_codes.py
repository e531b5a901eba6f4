"""Codes of the FHIR R4 (4.0.1) REQUIRED bindings that the validator enforces.

Pure data plus one small check; used by mockehr.fhir.validate. BINDINGS maps a
type name as keyed in r4_structure.json (BackboneElements by their fhirclient
class name: "PatientContact", "TimingRepeat", ...) -> JSON element name ->
ValueSet. A ValueSet without `system` binds a `code` element (single or list);
one with `system` binds a CodeableConcept, whose codings of that system must
carry a code of the set (codings of other systems are let through).

Scope: the 27 resource types mockehr serves, Bundle, and the datatypes they
use (those met only as extension values included). Each code list is the
R4 value set expansion, in the spec's order. The lists were produced from the
R4 short descriptions ("male | female | other | unknown") in the fhirclient
R4 models; the truncated ones ("registered | preliminary | final | amended +":
observation-status, encounter-status, diagnostic-report-status,
udi-entry-type) and event-timing, which has none, were completed from the R4
value sets. tests/fhir/test_validate_codes.py checks the table against
fhirclient (R4) and fhir.resources.R4B, and lists the code elements left out
on purpose (bindings that are not required, or required but not enumerable
here: mime types, currencies, FHIRAllTypes).
"""

from __future__ import annotations

import difflib

from mockehr.fhir.validate_primitives import show

R4_VS = "http://hl7.org/fhir/ValueSet/"
THO_CS = "http://terminology.hl7.org/CodeSystem/"


class ValueSet:
    """Allowed codes of one value set; `codes` keeps the spec's order, for messages."""

    __slots__ = ("name", "codes", "allowed", "system")

    def __init__(self, name: str, codes: str, system: str | None = None) -> None:
        self.name = name  # the R4 value set id: http://hl7.org/fhir/ValueSet/<name>
        self.codes = tuple(codes.split())
        self.allowed = frozenset(self.codes)
        self.system = system  # set only for CodeableConcept bindings

    @property
    def url(self) -> str:
        return R4_VS + self.name

    def __repr__(self) -> str:
        return f"ValueSet({self.name!r})"


# --- value sets (R4 4.0.1), each named by its canonical http://hl7.org/fhir/ValueSet/<id> ---
ADDRESS_TYPE = ValueSet("address-type", "postal physical both")
ADDRESS_USE = ValueSet("address-use", "home work temp old billing")
ADMINISTRATIVE_GENDER = ValueSet("administrative-gender", "male female other unknown")
ALLERGY_CATEGORY = ValueSet("allergy-intolerance-category", "food medication environment biologic")
ALLERGY_CRITICALITY = ValueSet("allergy-intolerance-criticality", "low high unable-to-assess")
ALLERGY_TYPE = ValueSet("allergy-intolerance-type", "allergy intolerance")
# CodeableConcept, system http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical
ALLERGY_CLINICAL = ValueSet("allergyintolerance-clinical", "active inactive resolved",
                            THO_CS + "allergyintolerance-clinical")
# CodeableConcept; R5 / later terminology.hl7.org add "presumed": not R4
ALLERGY_VERIFICATION = ValueSet("allergyintolerance-verification", "unconfirmed confirmed refuted entered-in-error",
                                THO_CS + "allergyintolerance-verification")
# R4B adds "subscription-notification": not R4
BUNDLE_TYPE = ValueSet("bundle-type", "document message transaction transaction-response batch batch-response "
                                      "history searchset collection")
CARE_PLAN_ACTIVITY_KIND = ValueSet("care-plan-activity-kind", "Appointment CommunicationRequest DeviceRequest "
                                   "MedicationRequest NutritionOrder Task ServiceRequest VisionPrescription")
CARE_PLAN_ACTIVITY_STATUS = ValueSet("care-plan-activity-status", "not-started scheduled in-progress on-hold "
                                     "completed cancelled stopped unknown entered-in-error")
CARE_PLAN_INTENT = ValueSet("care-plan-intent", "proposal plan order option")
CARE_TEAM_STATUS = ValueSet("care-team-status", "proposed active suspended inactive entered-in-error")
COMPOSITION_STATUS = ValueSet("composition-status", "preliminary final amended entered-in-error")
# CodeableConcept, system http://terminology.hl7.org/CodeSystem/condition-clinical
CONDITION_CLINICAL = ValueSet("condition-clinical", "active recurrence relapse inactive remission resolved",
                              THO_CS + "condition-clinical")
# CodeableConcept, system http://terminology.hl7.org/CodeSystem/condition-ver-status
CONDITION_VER_STATUS = ValueSet("condition-ver-status", "unconfirmed provisional differential confirmed refuted "
                                "entered-in-error", THO_CS + "condition-ver-status")
CONTACT_POINT_SYSTEM = ValueSet("contact-point-system", "phone fax email pager url sms other")
CONTACT_POINT_USE = ValueSet("contact-point-use", "home work temp old mobile")
CONTRIBUTOR_TYPE = ValueSet("contributor-type", "author editor reviewer endorser")
DAYS_OF_WEEK = ValueSet("days-of-week", "mon tue wed thu fri sat sun")
DEVICE_NAMETYPE = ValueSet("device-nametype", "udi-label-name user-friendly-name patient-reported-name "
                                              "manufacturer-name model-name other")
DEVICE_STATUS = ValueSet("device-status", "active inactive entered-in-error unknown")
DIAGNOSTIC_REPORT_STATUS = ValueSet("diagnostic-report-status", "registered partial preliminary final amended "
                                    "corrected appended cancelled entered-in-error unknown")
DOCUMENT_REFERENCE_STATUS = ValueSet("document-reference-status", "current superseded entered-in-error")
DOCUMENT_RELATIONSHIP_TYPE = ValueSet("document-relationship-type", "replaces transforms signs appends")
ENCOUNTER_LOCATION_STATUS = ValueSet("encounter-location-status", "planned active reserved completed")
ENCOUNTER_STATUS = ValueSet("encounter-status", "planned arrived triaged in-progress onleave finished cancelled "
                                                "entered-in-error unknown")
# event-timing codes plus the v3 TimingEvent codes the R4 value set includes (R5 adds IMD)
EVENT_TIMING = ValueSet("event-timing", "MORN MORN.early MORN.late NOON AFT AFT.early AFT.late EVE EVE.early "
                                        "EVE.late NIGHT PHS HS WAKE C CM CD CV AC ACM ACD ACV PC PCM PCD PCV")
EVENT_STATUS = ValueSet("event-status", "preparation in-progress not-done on-hold stopped completed "
                                        "entered-in-error unknown")
FM_STATUS = ValueSet("fm-status", "active cancelled draft entered-in-error")
GOAL_STATUS = ValueSet("goal-status", "proposed planned accepted active on-hold completed cancelled "
                                      "entered-in-error rejected")
GROUP_TYPE = ValueSet("group-type", "person animal practitioner device medication substance")
HTTP_VERB = ValueSet("http-verb", "GET HEAD POST PUT DELETE PATCH")
IDENTIFIER_USE = ValueSet("identifier-use", "usual official temp secondary old")
IMMUNIZATION_STATUS = ValueSet("immunization-status", "completed entered-in-error not-done")
LINK_TYPE = ValueSet("link-type", "replaced-by replaces refer seealso")
LOCATION_MODE = ValueSet("location-mode", "instance kind")
LOCATION_STATUS = ValueSet("location-status", "active suspended inactive")
MEDICATION_STATUS = ValueSet("medication-status", "active inactive entered-in-error")
MEDICATIONDISPENSE_STATUS = ValueSet("medicationdispense-status", "preparation in-progress cancelled on-hold "
                                     "completed entered-in-error stopped declined unknown")
MEDICATIONREQUEST_INTENT = ValueSet("medicationrequest-intent", "proposal plan order original-order reflex-order "
                                    "filler-order instance-order option")
MEDICATIONREQUEST_STATUS = ValueSet("medicationrequest-status", "active on-hold cancelled completed "
                                    "entered-in-error stopped draft unknown")
NAME_USE = ValueSet("name-use", "usual official temp nickname anonymous old maiden")
NARRATIVE_STATUS = ValueSet("narrative-status", "generated extensions additional empty")
OBSERVATION_STATUS = ValueSet("observation-status", "registered preliminary final amended corrected cancelled "
                                                    "entered-in-error unknown")
OPERATION_PARAMETER_USE = ValueSet("operation-parameter-use", "in out")
PROVENANCE_ENTITY_ROLE = ValueSet("provenance-entity-role", "derivation revision quotation source removal")
# R5 adds "ad": not R4
QUANTITY_COMPARATOR = ValueSet("quantity-comparator", "< <= >= >")
QUESTIONNAIRE_ANSWERS_STATUS = ValueSet("questionnaire-answers-status", "in-progress completed amended "
                                        "entered-in-error stopped")
REACTION_EVENT_SEVERITY = ValueSet("reaction-event-severity", "mild moderate severe")
RELATED_ARTIFACT_TYPE = ValueSet("related-artifact-type", "documentation justification citation predecessor "
                                 "successor derived-from depends-on composed-of")
REQUEST_INTENT = ValueSet("request-intent", "proposal plan directive order original-order reflex-order "
                                            "filler-order instance-order option")
REQUEST_PRIORITY = ValueSet("request-priority", "routine urgent asap stat")
REQUEST_STATUS = ValueSet("request-status", "draft active on-hold revoked completed entered-in-error unknown")
SEARCH_ENTRY_MODE = ValueSet("search-entry-mode", "match include outcome")
SORT_DIRECTION = ValueSet("sort-direction", "ascending descending")
SPECIMEN_STATUS = ValueSet("specimen-status", "available unavailable unsatisfactory entered-in-error")
TRIGGER_TYPE = ValueSet("trigger-type", "named-event periodic data-changed data-added data-modified data-removed "
                                        "data-accessed data-access-ended")
UDI_ENTRY_TYPE = ValueSet("udi-entry-type", "barcode rfid manual card self-reported unknown")
UNITS_OF_TIME = ValueSet("units-of-time", "s min h d wk mo a")


# --- type -> element -> value set (the binding; see each ValueSet above for its source) ---
BINDINGS: dict[str, dict[str, ValueSet]] = {
    # resources
    "AllergyIntolerance": {"clinicalStatus": ALLERGY_CLINICAL, "verificationStatus": ALLERGY_VERIFICATION,
                           "type": ALLERGY_TYPE, "category": ALLERGY_CATEGORY, "criticality": ALLERGY_CRITICALITY},
    "AllergyIntoleranceReaction": {"severity": REACTION_EVENT_SEVERITY},
    "CarePlan": {"status": REQUEST_STATUS, "intent": CARE_PLAN_INTENT},
    "CarePlanActivityDetail": {"kind": CARE_PLAN_ACTIVITY_KIND, "status": CARE_PLAN_ACTIVITY_STATUS},
    "CareTeam": {"status": CARE_TEAM_STATUS},
    "Condition": {"clinicalStatus": CONDITION_CLINICAL, "verificationStatus": CONDITION_VER_STATUS},
    "Coverage": {"status": FM_STATUS},
    "Device": {"status": DEVICE_STATUS},
    "DeviceDeviceName": {"type": DEVICE_NAMETYPE},
    "DeviceUdiCarrier": {"entryType": UDI_ENTRY_TYPE},
    "DiagnosticReport": {"status": DIAGNOSTIC_REPORT_STATUS},
    "DocumentReference": {"status": DOCUMENT_REFERENCE_STATUS, "docStatus": COMPOSITION_STATUS},
    "DocumentReferenceRelatesTo": {"code": DOCUMENT_RELATIONSHIP_TYPE},
    "Encounter": {"status": ENCOUNTER_STATUS},
    "EncounterLocation": {"status": ENCOUNTER_LOCATION_STATUS},
    "EncounterStatusHistory": {"status": ENCOUNTER_STATUS},
    "Goal": {"lifecycleStatus": GOAL_STATUS},
    "Group": {"type": GROUP_TYPE},
    "Immunization": {"status": IMMUNIZATION_STATUS},
    "Location": {"status": LOCATION_STATUS, "mode": LOCATION_MODE},
    "LocationHoursOfOperation": {"daysOfWeek": DAYS_OF_WEEK},
    "Medication": {"status": MEDICATION_STATUS},
    "MedicationDispense": {"status": MEDICATIONDISPENSE_STATUS},
    "MedicationRequest": {"status": MEDICATIONREQUEST_STATUS, "intent": MEDICATIONREQUEST_INTENT,
                          "priority": REQUEST_PRIORITY},
    "Observation": {"status": OBSERVATION_STATUS},
    "Patient": {"gender": ADMINISTRATIVE_GENDER},
    "PatientContact": {"gender": ADMINISTRATIVE_GENDER},
    "PatientLink": {"type": LINK_TYPE},
    "Practitioner": {"gender": ADMINISTRATIVE_GENDER},
    "PractitionerRoleAvailableTime": {"daysOfWeek": DAYS_OF_WEEK},
    "Procedure": {"status": EVENT_STATUS},
    "ProvenanceEntity": {"role": PROVENANCE_ENTITY_ROLE},
    "QuestionnaireResponse": {"status": QUESTIONNAIRE_ANSWERS_STATUS},
    "RelatedPerson": {"gender": ADMINISTRATIVE_GENDER},
    "ServiceRequest": {"status": REQUEST_STATUS, "intent": REQUEST_INTENT, "priority": REQUEST_PRIORITY},
    "Specimen": {"status": SPECIMEN_STATUS},
    "Bundle": {"type": BUNDLE_TYPE},
    "BundleEntryRequest": {"method": HTTP_VERB},
    "BundleEntrySearch": {"mode": SEARCH_ENTRY_MODE},
    # datatypes
    "Address": {"use": ADDRESS_USE, "type": ADDRESS_TYPE},
    "ContactPoint": {"system": CONTACT_POINT_SYSTEM, "use": CONTACT_POINT_USE},
    "HumanName": {"use": NAME_USE},
    "Identifier": {"use": IDENTIFIER_USE},
    "Narrative": {"status": NARRATIVE_STATUS},
    "Quantity": {"comparator": QUANTITY_COMPARATOR},
    "Age": {"comparator": QUANTITY_COMPARATOR},
    "Count": {"comparator": QUANTITY_COMPARATOR},
    "Distance": {"comparator": QUANTITY_COMPARATOR},
    "Duration": {"comparator": QUANTITY_COMPARATOR},
    "TimingRepeat": {"durationUnit": UNITS_OF_TIME, "periodUnit": UNITS_OF_TIME, "dayOfWeek": DAYS_OF_WEEK,
                     "when": EVENT_TIMING},
    # datatypes met only as extension values
    "Contributor": {"type": CONTRIBUTOR_TYPE},
    "DataRequirementSort": {"direction": SORT_DIRECTION},
    "ParameterDefinition": {"use": OPERATION_PARAMETER_USE},
    "RelatedArtifact": {"type": RELATED_ARTIFACT_TYPE},
    "TriggerDefinition": {"type": TRIGGER_TYPE},
}


def code_problem(vs: ValueSet, code: object) -> str | None:
    """Why `code` is not allowed by `vs` (message tail), or None when it is; never raises."""
    if not isinstance(code, str):
        return None  # not a code: the primitive check reports it
    if code in vs.allowed:
        return None
    hint = ""
    if len(code) <= 64:  # a suggestion for what looks like a typo, not for any text
        folded = [c for c in vs.codes if c.lower() == code.lower()]
        match = folded or difflib.get_close_matches(code, vs.codes, n=1, cutoff=0.6)
        if match:
            hint = f"; did you mean '{match[0]}'?"
    return f"{show(code)} is not in the required value set {vs.name} ({', '.join(vs.codes)}){hint}"
