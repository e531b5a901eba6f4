"""The pure part of Bulk Data export (mockehr/fhir/bulk.py) and its files (bulk_files.py)."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import pytest

from mockehr.fhir import bulk
from mockehr.fhir.bulk_files import ExportFiles, FileChunks, SplitWriter
from mockehr.fhir.outcome import FHIRError


def refused(call, *args, status: int = 400, **kwargs) -> str:
    with pytest.raises(FHIRError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status, caught.value
    return caught.value.diagnostics


# ---- headers and bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("accept, prefer, lenient", [
    ("application/fhir+json", "respond-async", False),
    ("application/fhir+json; charset=utf-8", "respond-async", False),
    ("application/json, application/fhir+json;q=0.9", "respond-async, handling=lenient", True),
    ("application/fhir+json", "handling=lenient; respond-async", True),
    ("APPLICATION/FHIR+JSON", "Respond-Async", False),
])
def test_headers_accepted(accept, prefer, lenient):
    assert bulk.check_headers(accept, prefer) is lenient


@pytest.mark.parametrize("accept, prefer, words", [
    (None, "respond-async", "no Accept header"),
    ("*/*", "respond-async", "Accept: */*"),
    ("application/fhir+ndjson", "respond-async", "Accept: application/fhir+ndjson"),
    ("application/fhir+json", None, "no Prefer header"),
    ("application/fhir+json", "return=representation", "Prefer: return=representation"),
])
def test_headers_refused(accept, prefer, words):
    assert words in refused(bulk.check_headers, accept, prefer)


def test_parameters_body():
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient"}, {"name": "_since", "valueInstant": "2024-01-01T00:00:00Z"},
        {"name": "patient", "valueReference": {"reference": "Patient/p1"}}]}
    assert bulk.pairs_from_parameters(body) == [("_type", "Patient"), ("_since", "2024-01-01T00:00:00Z"),
                                                ("patient", "Patient/p1")]
    assert bulk.pairs_from_parameters({"resourceType": "Parameters"}) == []


@pytest.mark.parametrize("body, words", [
    ([], "got 'list'"),
    ({"resourceType": "Bundle"}, "got 'Bundle'"),
    ({"resourceType": "Parameters", "parameter": [{"valueString": "x"}]}, "has no name"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type"}]}, "exactly one value[x]"),
    ({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueBoolean": True}]}, "must be a string"),
    ({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"display": "x"}}]},
     "must be a string"),
])
def test_parameters_body_refused(body, words):
    assert words in refused(bulk.pairs_from_parameters, body)


# ---- kick-off parameters ------------------------------------------------------------------------

def test_defaults():
    req = bulk.parse_kickoff("system", [])
    assert (req.types, req.since, req.output_format, req.type_filters, req.elements, req.patients, req.notes) == (
        None, None, bulk.NDJSON, {}, {}, None, [])


def test_every_parameter():
    req = bulk.parse_kickoff("group", [
        ("_type", "Patient, Observation"), ("_type", "Condition,Patient"), ("_outputFormat", "ndjson"),
        ("_since", "2024-03-01T10:00:00+01:00"), ("_elements", "id,Patient.name"),
        ("_typeFilter", "Observation?category=laboratory,Observation?code=http://loinc.org|1,2&status=final"),
        ("patient", "Patient/a"), ("patient", "http://x.org/fhir/Patient/b"), ("patient", "Patient/a"),
    ], group="g1", post=True)
    assert req.types == ("Patient", "Observation", "Condition")
    assert req.output_format == bulk.NDJSON
    assert req.since_epoch == 1709283600.0
    assert req.elements_for("Patient") == ["id", "name"] and req.elements_for("Condition") == ["id"]
    assert req.type_filters == {"Observation": (
        (("category", "laboratory"),), (("code", "http://loinc.org|1,2"), ("status", "final")))}
    assert req.patients == ("a", "b")
    assert req.group == "g1"


@pytest.mark.parametrize("level, pairs, words", [
    ("system", [("_outputFormat", "csv")], "_outputFormat 'csv' is not supported"),
    ("system", [("_since", "2024-13-01")], "_since"),
    ("system", [("_since", "2024"), ("_since", "2025")], "given 2 times"),
    ("system", [("_type", "Patient,Nope")], "'Nope' is not a resource type this server serves"),
    ("system", [("_type", " , ")], "nothing to export"),
    ("patient", [("_type", "Medication,Organization")], "outside the patient compartment"),
    ("system", [("_typeFilter", "Observation?")], "is not a query"),
    ("system", [("_typeFilter", "Observation?_include=Observation:subject")], "_include"),
    ("system", [("_typeFilter", "Observation?date=soon")], "_typeFilter 'Observation?date=soon'"),
    ("system", [("_typeFilter", "Observation?foo=1")], "unknown search parameter 'foo'"),
    ("system", [("_typeFilter", "Thing?x=1")], "'Thing' is not a resource type"),
    ("system", [("_type", "Patient"), ("_typeFilter", "Observation?status=final")], "which _type does not ask for"),
    ("system", [("_elements", "Patient.name.given")], "only top-level"),
    ("system", [("_elements", "Thing.name")], "'Thing'"),
    ("system", [("includeAssociatedData", "LatestProvenanceResources")], "not supported"),
    ("system", [("_count", "10")], "'_count' is not a $export parameter"),
    ("system", [("patient", "Patient/a")], "POSTed Parameters body only"),
])
def test_refused(level, pairs, words):
    assert words in refused(bulk.parse_kickoff, level, pairs)


def test_patient_parameter_rules():
    assert "not to the system-level" in refused(bulk.parse_kickoff, "system", [("patient", "Patient/a")], post=True)
    assert "not a reference" in refused(bulk.parse_kickoff, "patient", [("patient", "Observation/a")], post=True)


def test_lenient_notes_instead_of_refusing():
    req = bulk.parse_kickoff("system", [("_type", "Patient,Nope"), ("_count", "3"),
                                        ("_typeFilter", "Patient?foo=1&gender=female,Patient?bar=2"),
                                        ("includeAssociatedData", "x")], lenient=True)
    assert req.types == ("Patient",)
    assert req.type_filters == {"Patient": ((("gender", "female"),),)}  # the unknown parameter dropped
    assert len(req.notes) == 5 and all("handling=lenient" in n for n in req.notes)
    # what is wrong, rather than unsupported, is still refused
    assert "_outputFormat" in refused(bulk.parse_kickoff, "system", [("_outputFormat", "csv")], lenient=True)


def test_unknown_level_is_a_programming_error():
    with pytest.raises(ValueError):
        bulk.parse_kickoff("everything", [])


# ---- authorization ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    allowed: bool
    patient: str | None = None
    filters: tuple | None = None
    reason: str = ""
    missing_scope: str = ""


def decider(allowed: dict):
    """allowed: type -> Decision; anything else is refused with a missing scope."""
    return lambda rtype: allowed.get(rtype, Decision(False, reason="no scope", missing_scope=f"system/{rtype}.r"))


def test_system_scopes_export_what_they_cover():
    labs = ((("category", "laboratory"),),)
    decide = decider({"Patient": Decision(True), "Observation": Decision(True, filters=labs)})
    assert bulk.authorize(bulk.parse_kickoff("system", []), {"system"}, None, decide) == {
        "Patient": None, "Observation": labs}
    assert bulk.authorize(bulk.parse_kickoff("patient", []), {"system"}, None, decide) == {
        "Patient": None, "Observation": labs}


def test_asking_for_a_type_the_scopes_do_not_cover():
    decide = decider({"Patient": Decision(True)})
    with pytest.raises(FHIRError) as caught:
        bulk.authorize(bulk.parse_kickoff("system", [("_type", "Patient,Encounter")]), {"system"}, None, decide)
    assert caught.value.status == 403 and "Encounter" in caught.value.diagnostics
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="system/Encounter.r"'
    lenient = bulk.parse_kickoff("system", [("_type", "Patient,Encounter")], lenient=True)
    assert bulk.authorize(lenient, {"system"}, None, decide) == {"Patient": None}
    assert "Encounter" in lenient.notes[0]


def test_nothing_exportable_is_403():
    decide = decider({"Medication": Decision(True)})
    assert "patient compartment" in refused(bulk.authorize, bulk.parse_kickoff("group", [], group="g"), {"system"},
                                            None, decide, status=403)
    assert "any resource type" in refused(bulk.authorize, bulk.parse_kickoff("system", []), {"system"}, None,
                                          decider({}), status=403)


def test_user_and_patient_contexts():
    decide = decider({"Patient": Decision(True)})
    group = bulk.parse_kickoff("group", [], group="g")
    assert bulk.authorize(group, {"user"}, "Practitioner/p1", decide) == {"Patient": None}
    assert "Group export only" in refused(bulk.authorize, bulk.parse_kickoff("system", []), {"user"},
                                          "Practitioner/p1", decide, status=403)
    assert "practitioner" in refused(bulk.authorize, group, {"user"}, "Patient/x", decide, status=403)
    assert "patient/ scopes" in refused(bulk.authorize, group, {"patient"}, None, decide, status=403)
    # a Patient user's user/ scopes are limited to their record: nothing to export in bulk
    own = decider({"Patient": Decision(True, patient="x")})
    assert "nothing it may export" in refused(bulk.authorize, group, {"user"}, "Practitioner/p1", own, status=403)


def test_group_patients():
    group = {"member": [{"entity": {"reference": "Patient/a"}}, {"entity": {"reference": "Practitioner/d"}},
                        {"entity": {"reference": "Patient/b"}, "inactive": True}, {"entity": {}},
                        {"entity": {"reference": "http://x/fhir/Patient/c"}}, {"entity": {"reference": "Patient/a"}}]}
    assert bulk.group_patients(group) == ["a", "c"]
    assert bulk.group_patients({}) == []


# ---- files, progress, manifest ----------------------------------------------------------------------

def test_split_policy():
    policy = bulk.SplitPolicy(max_lines=3, max_bytes=100)
    assert policy.fits(0, 0, 500)          # a file always takes its first line
    assert policy.fits(2, 50, 50) and not policy.fits(3, 10, 1) and not policy.fits(1, 60, 41)
    with pytest.raises(ValueError):
        bulk.SplitPolicy(max_lines=0)


@pytest.mark.parametrize("count, failing", [(0, []), (1, [1]), (2, [2]), (5, [2, 4]), (6, [2, 4, 6])])
def test_failed_files(count, failing):
    assert bulk.failed_files(count) == failing


def test_progress_and_retry_after():
    assert bulk.progress_text(0.456, "exporting Observation") == "45% complete, exporting Observation"
    assert bulk.progress_text(2, "x") == "100% complete, x" and bulk.progress_text(-1, "x") == "0% complete, x"
    assert len(bulk.progress_text(0.5, "y" * 200)) < 100
    assert [bulk.retry_after(s) for s in (0, 0.2, 1.5, 7, 300)] == [1, 1, 2, 7, 10]


def test_manifest_always_has_output_and_error():
    assert bulk.manifest("2024-01-01T00:00:00.000Z", "http://h/fhir/$export", [], []) == {
        "transactionTime": "2024-01-01T00:00:00.000Z", "request": "http://h/fhir/$export",
        "requiresAccessToken": True, "output": [], "error": []}


def test_split_writer(tmp_path):
    seq = iter(range(1, 100))
    writer = SplitWriter(tmp_path, "Patient", bulk.SplitPolicy(max_lines=2, max_bytes=25), lambda: next(seq))
    for line in (b'{"a":1}', b'{"b":2}', b'{"c":3}', b'{"long":"' + b"x" * 40 + b'"}', b'{"d":4}'):
        writer.write(line)
    files = writer.close()
    assert [(f.name, f.count) for f in files] == [("1.Patient.ndjson", 2), ("2.Patient.ndjson", 1),
                                                  ("3.Patient.ndjson", 1), ("4.Patient.ndjson", 1)]
    assert (tmp_path / "1.Patient.ndjson").read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert all(f.size == (tmp_path / f.name).stat().st_size for f in files)
    with pytest.raises(ValueError):
        writer.write(b'{"a":\n1}')


def test_split_writer_abandon_lists_nothing(tmp_path):
    writer = SplitWriter(tmp_path, "Patient", bulk.SplitPolicy(), lambda: 1)
    writer.write(b"{}")
    writer.abandon()
    assert writer.files == [] and writer.close() == []


def test_file_chunks_survive_removal(tmp_path):
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"x" * 200_000)
    chunks = FileChunks(path)
    path.unlink()
    assert chunks.size == 200_000 and b"".join(chunks) == b"x" * 200_000
    other = tmp_path / "g.ndjson"
    other.write_bytes(b"{}\n")
    unread = FileChunks(other)
    unread.close()  # what the server does when the answer is not read (HEAD): no handle left open
    assert unread._handle.closed


def test_temporary_root_is_removed_with_its_owner():
    files = ExportFiles(None)
    root = files.root()
    assert files.job_dir("j1").is_dir() and root.name.startswith("mockehr-bulk-")
    files.remove("j1")
    assert not (root / "j1").exists()
    del files
    gc.collect()
    assert not root.exists()


def test_data_dir_root_clears_what_an_earlier_run_left(tmp_path):
    stale = tmp_path / "bulk" / "old-job"
    stale.mkdir(parents=True)
    files = ExportFiles(tmp_path)
    assert files.root() == tmp_path / "bulk" and not stale.exists()
    files.job_dir("j2")
    del files
    gc.collect()
    assert (tmp_path / "bulk" / "j2").is_dir()  # a data dir is the user's: kept
