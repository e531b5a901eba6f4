"""The whole backend-services Bulk Data flow over real HTTP, on the default dataset.

Discovery, an asymmetric client registered with its JWKS, a client_credentials grant with an
RS384 assertion, the Group kick-off, polling that honours Retry-After (the server runs with a
bulk delay, so there is something to wait for), the manifest, every file downloaded and every
NDJSON line validated by fhir.resources (R4B models), as Inferno's Bulk Data test kit would.
"""

from __future__ import annotations

import time

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.auth.conftest import ec_key, rsa_key
from tests.bulk.conftest import BulkEhr, check_in_progress, check_manifest

DELAY = 1.5


@pytest.fixture(scope="module")
def seeded():
    """The default dataset (25 patients, the Group all-patients), every export taking >= DELAY s."""
    server = ServerThread(Settings(port=0, auto_approve=True, bulk_delay=DELAY)).start()
    ehr = BulkEhr(server)
    yield ehr
    ehr.http.close()
    server.stop()


def test_capability_statement_declares_bulk_export(seeded):
    statement = seeded.http.get(f"{seeded.fhir_base}/metadata", timeout=30).json()
    CapabilityStatement.model_validate(statement)
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in statement["instantiates"]
    rest = statement["rest"][0]
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"} \
        in rest["operation"]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"} \
        in by_type["Patient"]["operation"]
    assert by_type["Group"]["operation"] == [
        {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]


def test_backend_service_group_export_end_to_end(seeded):
    # An asymmetric client, registered with its public key, gets a token with an RS384 assertion.
    key = rsa_key("RS384")
    smart = seeded.smart
    assert "client_credentials" in smart["grant_types_supported"]
    assert "RS384" in smart["token_endpoint_auth_signing_alg_values_supported"]
    client = seeded.backend_client(key)
    answer = seeded.client_credentials(client["client_id"], key, "system/*.rs")
    body, claims, _ = seeded.check_token_response(answer, client["client_id"], id_token_expected=False)
    token = body["access_token"]
    assert body["scope"] == "system/*.rs"

    # The Group to export, found by search; the seeded one holds several patients.
    groups = seeded.fhir("GET", "Group", token).json()["entry"]
    group = next(e["resource"] for e in groups if e["resource"]["id"] == "all-patients")
    members = {m["entity"]["reference"].split("/")[1] for m in group["member"]}
    assert len(members) >= 2

    began = time.monotonic()
    status_url = seeded.kickoff(f"Group/{group['id']}/$export", token)

    # Poll as a well-behaved client: wait Retry-After seconds between polls.
    polls = []
    while True:
        answer = seeded.poll(status_url, token)
        polls.append((time.monotonic(), answer))
        if answer.status_code != 202:
            break
        check_in_progress(answer)
        assert time.monotonic() - began < 60
        time.sleep(int(answer.headers["Retry-After"]))
    assert len(polls) >= 2, "the export (delay 1.5 s) answered 202 at least once"
    assert time.monotonic() - began >= DELAY
    for (at, before), (later, _) in zip(polls, polls[1:]):
        assert later - at >= int(before.headers["Retry-After"])
    progress = [a.headers["X-Progress"] for _, a in polls[:-1]]
    assert all("% complete" in p for p in progress), progress
    manifest = check_manifest(polls[-1][1], seeded)
    assert manifest["request"] == f"{seeded.fhir_base}/Group/all-patients/$export"
    assert manifest["error"] == []

    # Every file, every line: one FHIR resource, valid for an independent R4B validator.
    total = 0
    patients = set()
    for entry in manifest["output"]:
        lines = seeded.lines(entry["url"], token)
        assert len(lines) == entry["count"]
        model = get_fhir_model_class(entry["type"])
        for resource in lines:
            assert resource["resourceType"] == entry["type"]
            model.model_validate(resource)
            if entry["type"] == "Patient":
                patients.add(resource["id"])
        total += len(lines)
    assert patients == members
    types = [entry["type"] for entry in manifest["output"]]
    assert {"Patient", "Observation", "Condition", "Encounter"} <= set(types)
    assert {"Practitioner", "Organization", "Medication"} & set(types), "referenced resources come along"
    assert total > 1000


def test_system_export_with_an_es384_client_holds_every_resource(seeded):
    key = ec_key("ES384")
    client = seeded.backend_client(key)
    answer = seeded.client_credentials(client["client_id"], key, "system/*.read")
    token, _, _ = seeded.check_token_response(answer, client["client_id"], id_token_expected=False)
    token = token["access_token"]
    manifest = seeded.export("$export", token)
    counts: dict[str, int] = {}
    for entry in manifest["output"]:
        counts[entry["type"]] = counts.get(entry["type"], 0) + entry["count"]
    for rtype, count in counts.items():
        search = seeded.fhir("GET", rtype, token, params={"_summary": "count"}).json()
        assert search["total"] == count, rtype
    assert len(counts) >= 20
    # the files are where the manifest says, and each line is a resource of the file's type
    sample = next(e for e in manifest["output"] if e["type"] == "Patient")
    assert {r["resourceType"] for r in seeded.lines(sample["url"], token)} == {"Patient"}


def test_patient_level_export_covers_every_patient(seeded, ):
    token = seeded.bulk_token()
    manifest = seeded.export("Patient/$export", token, {"_type": "Patient"})
    ids = seeded.exported_ids(manifest, token)
    everyone = seeded.fhir("GET", "Patient", token, params={"_summary": "count"}).json()["total"]
    assert set(ids) == {"Patient"} and len(ids["Patient"]) == everyone == 25
