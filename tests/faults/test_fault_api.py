"""The control API around faults (and tokens, reset, audit, the admin token), and `serve --fault`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.faults.conftest import start_ehr
from tests.helpers import REPO, ServeProcess

# ---- POST /admin/faults: bad specs ------------------------------------------------------------

BAD_SPECS = [
    ("throtle", "unknown kind 'throtle' (did you mean 'throttle'?)"),
    ("rate-limit", "unknown kind 'rate-limit' (known kinds: throttle, error, latency, rotate-keys, token-lifetime, "
                   "deny, expire-refresh, revoke-all, drop, clock, bad-signature, jwks-down, slow-body, "
                   "step-up, transient-error, file-generation-failed, some-file-generation-failed, file-expired)"),
    ("throttle:evrey=2", "throttle does not take 'evrey' (did you mean 'every'?)"),
    ("deny:path=/x", "deny does not take 'path' (it takes every, rate, count)"),
    ("revoke-all:count=1", "revoke-all does not take 'count' (it takes no keys)"),
    ("throttle:every=0", "'every' must be a whole number >= 1, got '0'"),
    ("error:status=200", "'status' must be an HTTP error status 400-599, got '200'"),
    ("throttle:retry_after=soon", "'retry_after' must be a whole number of seconds from 0 to 86400, got 'soon'"),
    ("throttle:rate=2", "'rate' must be between 0 and 1, got '2'"),
    ("rotate-keys:keep_old=maybe", "'keep_old' must be true or false, got 'maybe'"),
    ("latency", "latency needs 'ms' (e.g. 'latency:ms=200')"),
    ("throttle:every", "missing '=' in 'every'"),
    ("throttle:path=fhir/*", "'path' must be a glob over the URL path starting with '/', got 'fhir/*'"),
    ("throttle:every=2,every=3", "duplicate key 'every'"),
    ("throttle:", "nothing after ':' in 'throttle:'"),
    ("t" * 1001, "fault spec is too long (1001 characters, at most 1000)"),
    ("", "empty fault spec (expected KIND[:key=value,...])"),
]


@pytest.mark.parametrize("spec, message", BAD_SPECS, ids=[(s[:30] or "empty") for s, _ in BAD_SPECS])
def test_a_bad_spec_is_a_400_with_the_parser_message(ehr, spec, message):
    answer = ehr.admin("POST", "faults", json={"spec": spec})
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"error": message}
    assert ehr.faults() == []  # nothing was added


@pytest.mark.parametrize("send", [
    {"json": {}},
    {"json": {"kind": "throttle"}},
    {"json": {"spec": 3}},
    {"json": {"spec": None}},
    {"json": {"spec": ["throttle"]}},
    {"json": ["throttle"]},
    {"data": "throttle", "headers": {"Content-Type": "application/json"}},
    {"data": "spec=throttle", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {},
], ids=["empty-object", "no-spec", "number", "null", "list-spec", "list-body", "not-json", "form", "no-body"])
def test_a_missing_or_malformed_spec_is_a_400(ehr, send):
    answer = ehr.admin("POST", "faults", **send)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert isinstance(message, str) and message
    assert "spec" in message or "JSON" in message
    assert ehr.faults() == []


def test_the_missing_spec_message_shows_the_shape(ehr):
    answer = ehr.admin("POST", "faults", json={})
    assert answer.json()["error"] == 'send {"spec": "KIND[:key=value,...]"}, e.g. {"spec": "throttle:every=2"}'


# ---- GET, DELETE ---------------------------------------------------------------------------------

def test_add_answers_201_with_the_listed_fault(ehr):
    answer = ehr.admin("POST", "faults", json={"spec": "error:status=503,every=3"})
    assert answer.status_code == 201
    added = answer.json()
    assert added == {"id": added["id"], "spec": "error:status=503,every=3", "kind": "error",
                     "description": "answer 503 to every 3rd request on /fhir/*", "fired": 0, "remaining": None,
                     "spent": False}
    assert ehr.faults() == [added]


def test_list_shows_fired_remaining_and_spent(ehr):
    limited = ehr.add_fault("throttle:count=2,path=/fhir/metadata")
    endless = ehr.add_fault("error:status=503,path=/fhir/.well-known/*")
    assert [f["id"] for f in ehr.faults()] == [limited["id"], endless["id"]]  # in the order added
    assert (limited["fired"], limited["remaining"], limited["spent"]) == (0, 2, False)
    assert (endless["fired"], endless["remaining"], endless["spent"]) == (0, None, False)
    assert ehr.read(None, "metadata").status_code == 429
    assert ehr.fault(limited["id"])["fired"] == 1 and ehr.fault(limited["id"])["remaining"] == 1
    assert ehr.read(None, "metadata").status_code == 429
    assert ehr.read(None, "metadata").status_code == 200
    for _ in range(3):
        assert ehr.read(None, ".well-known/smart-configuration").status_code == 503
    listed = {f["id"]: f for f in ehr.faults()}
    assert (listed[limited["id"]]["fired"], listed[limited["id"]]["remaining"],
            listed[limited["id"]]["spent"]) == (2, 0, True)  # spent, still listed
    assert (listed[endless["id"]]["fired"], listed[endless["id"]]["remaining"],
            listed[endless["id"]]["spent"]) == (3, None, False)


def test_one_shot_faults_are_listed_spent_at_once(ehr):
    fault = ehr.add_fault("revoke-all")
    assert (fault["fired"], fault["remaining"], fault["spent"]) == (1, 0, True)
    lasting = ehr.add_fault("token-lifetime:seconds=60")
    assert (lasting["fired"], lasting["remaining"], lasting["spent"]) == (0, None, False)
    assert ehr.mint()["expires_in"] == 60


def test_delete_one_then_404(ehr):
    keep = ehr.add_fault("throttle:path=/fhir/metadata")
    gone = ehr.add_fault("error:path=/fhir/.well-known/*")
    answer = ehr.remove_fault(gone["id"])
    assert answer.status_code == 200 and answer.json() == {"removed": gone["id"]}
    assert [f["id"] for f in ehr.faults()] == [keep["id"]]
    assert ehr.read(None, ".well-known/smart-configuration").status_code == 200  # no longer fires
    assert ehr.read(None, "metadata").status_code == 429  # the other one still does
    again = ehr.remove_fault(gone["id"])
    assert again.status_code == 404
    assert again.json() == {"error": f"no fault '{gone['id']}'; GET /admin/faults lists them"}
    assert ehr.remove_fault("f999999").status_code == 404
    assert ehr.remove_fault("not-an-id").status_code == 404


def test_delete_all(ehr):
    ids = [ehr.add_fault(spec)["id"] for spec in ("throttle", "latency:ms=1", "deny:count=3")]
    answer = ehr.admin("DELETE", "faults")
    assert answer.status_code == 200 and answer.json() == {"cleared": 3}
    assert ehr.faults() == []
    assert ehr.read(None, "metadata").status_code == 200
    assert ehr.admin("DELETE", "faults").json() == {"cleared": 0}
    fresh = ehr.add_fault("throttle")
    assert fresh["id"] not in ids  # an old id never names a new fault


def test_add_list_remove_are_audited(ehr):
    since = ehr.last_event_id()
    fault = ehr.add_fault("throttle:every=5")
    ehr.remove_fault(fault["id"])
    ehr.add_fault("deny")
    ehr.admin("DELETE", "faults")
    events = [(e["type"], e["outcome"], e.get("fault"), e.get("count")) for e in ehr.audit(since)
              if e["type"] == "fault"]
    assert events[0] == ("fault", "added", fault["id"], None)
    assert events[1] == ("fault", "removed", fault["id"], None)
    assert events[2][:2] == ("fault", "added")
    assert events[3] == ("fault", "cleared", None, 1)


# ---- POST /admin/reset ------------------------------------------------------------------------

def test_reset_keeps_the_settings_faults_and_drops_the_rest(dataset_dir):
    ehr = start_ehr(dataset_dir, faults=("throttle:path=/fhir/Practitioner*,count=5",))
    try:
        token = ehr.token_for()
        assert ehr.read(token, "Practitioner/prac-1").status_code == 429
        ehr.add_fault("error:path=/fhir/metadata")
        assert [f["fired"] for f in ehr.faults()] == [1, 0]
        answer = ehr.admin("POST", "reset")
        assert answer.status_code == 200 and answer.json() == {"reset": True}
        [kept] = ehr.faults()
        assert (kept["id"], kept["spec"], kept["fired"], kept["remaining"]) == (
            "f1", "throttle:path=/fhir/Practitioner*,count=5", 0, 5)  # as at start
        assert ehr.read(None, "metadata").status_code == 200  # the run-time fault is gone
        token = ehr.token_for()  # (the reset took the tokens too)
        assert ehr.read(token, "Practitioner/prac-1").status_code == 429
        assert ehr.read(token, "Patient/pat-a").status_code == 200
    finally:
        ehr.server.stop()


def test_reset_does_not_leave_one_shot_settings_faults_pending(dataset_dir):
    """A one-shot fault of --fault (revoke-all, rotate-keys) acts at start, and at a reset; it must not
    lie in wait after a reset and strike when some unrelated fault is added later."""
    ehr = start_ehr(dataset_dir, faults=("revoke-all", "rotate-keys"))
    try:
        assert ehr.admin("POST", "reset").status_code == 200
        assert [f["spent"] for f in ehr.faults()] == [True, True]
        token = ehr.token_for()
        kids = ehr.kids()
        ehr.add_fault("throttle:path=/nowhere")
        assert ehr.kids() == kids
        assert ehr.read(token).status_code == 200
    finally:
        ehr.server.stop()


# ---- the admin token ----------------------------------------------------------------------------

CALLS = [
    ("GET", "faults", {}),
    ("POST", "faults", {"json": {"spec": "throttle"}}),
    ("DELETE", "faults", {}),
    ("DELETE", "faults/f1", {}),
    ("POST", "tokens", {"json": {"scope": "system/*.rs"}}),
    ("POST", "reset", {}),
    ("GET", "audit", {"params": {"since": "0"}}),
    ("POST", "keys/rotate", {"json": {}}),
    ("POST", "launches", {"json": {"patient": "pat-a"}}),
]


@pytest.fixture(scope="module")
def guarded(dataset_dir):
    ehr = start_ehr(dataset_dir, admin_token="s3cret-admin")
    yield ehr
    ehr.server.stop()


@pytest.mark.parametrize("method, path, kwargs", CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_admin_token_missing_is_401_wrong_is_403(guarded, method, path, kwargs):
    url = f"{guarded.url}/admin/{path}"
    for headers in ({}, {"Authorization": "Basic czNjcmV0LWFkbWluOg=="}, {"Authorization": "Bearer"},
                    {"Authorization": "bearer"}, {"Authorization": "s3cret-admin"}):
        answer = requests.request(method, url, headers=headers, timeout=30, **kwargs)
        assert answer.status_code == 401, (headers, answer.status_code, answer.text)
        assert answer.json()["error"]
    for token in ("nope", "s3cret-admin-not", "S3CRET-ADMIN", "s3cret-admi", "é-not-ascii", " "):
        answer = requests.request(method, url, headers={"Authorization": f"Bearer {token}".encode()},
                                  timeout=30, **kwargs)
        assert answer.status_code in (401, 403), (token, answer.status_code, answer.text)
        assert answer.json()["error"]
    answer = requests.request(method, url, headers={"Authorization": "Bearer nope"}, timeout=30, **kwargs)
    assert answer.status_code == 403 and answer.json() == {"error": "wrong admin token"}
    # the request did nothing: the faults are as they were
    assert guarded.admin("GET", "faults").status_code == 200


def test_admin_token_right_is_accepted(guarded):
    fault = guarded.add_fault("throttle:path=/fhir/metadata")  # FaultEhr sends the admin token
    assert guarded.read(None, "metadata").status_code == 429
    assert guarded.remove_fault(fault["id"]).status_code == 200
    answer = requests.get(f"{guarded.url}/admin/faults", headers={"Authorization": "Bearer s3cret-admin"},
                          timeout=30)
    assert answer.status_code == 200 and answer.json() == []
    assert guarded.mint()["access_token"]


# ---- POST /admin/tokens --------------------------------------------------------------------------

def test_tokens_with_a_patient_and_a_user(ehr):
    answer = ehr.mint("launch/patient openid fhirUser patient/*.rs", patient="pat-a", user="Practitioner/prac-1",
                      encounter="enc-a1", client_id="curl-experiments")
    assert answer["patient"] == "pat-a" and answer["encounter"] == "enc-a1"
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    claims = ehr.verify_access_token(answer["access_token"])  # signed with a key of the JWKS
    assert claims["patient"] == "pat-a" and claims["encounter"] == "enc-a1"
    assert claims["sub"] == "Practitioner/prac-1"
    assert claims["fhirUser"] == f"{ehr.fhir_base}/Practitioner/prac-1"
    assert claims["client_id"] == "curl-experiments"
    assert claims["scope"] == answer["scope"]
    ehr.verify_id_token(answer["id_token"], "curl-experiments", access_token=answer["access_token"])
    assert ehr.read(answer["access_token"], "Patient/pat-a").status_code == 200
    assert ehr.read(answer["access_token"], "Patient/pat-b").status_code == 403  # another patient
    # "Patient/" prefixes are accepted too
    assert ehr.mint("patient/*.rs", patient="Patient/pat-b")["patient"] == "pat-b"


def test_tokens_system_scope_and_audit(ehr):
    since = ehr.last_event_id()
    answer = ehr.mint("system/Patient.rs")
    claims = ehr.verify_access_token(answer["access_token"])
    assert claims["client_id"] == "mockehr-cli" and "patient" not in claims
    assert ehr.read(answer["access_token"], "Patient/pat-b").status_code == 200
    assert ehr.read(answer["access_token"], "Observation").status_code == 403
    [event] = [e for e in ehr.audit(since) if e["type"] == "token"]
    assert event["outcome"] == "success" and event["scope"] == "system/Patient.rs"
    assert answer["access_token"] not in str(event)


@pytest.mark.parametrize("body, message", [
    ({"scope": "patient/*.rs", "patient": "nobody"}, "patient 'nobody' is not in the FHIR store"),
    ({"scope": "patient/*.rs"}, "patient/ scopes need a patient in context: add \"patient\""),
    ({"scope": "patient/*.zz", "patient": "pat-a"}, "'zz' is not a permission"),
    ({"scope": "user/*.rs", "user": "Practitioner/nobody"}, "user 'Practitioner/nobody' must be"),
    ({"scope": "user/*.rs", "user": "prac-1"}, "user 'prac-1' must be"),
    ({"scope": "patient/*.rs", "patient": "pat-a", "encounter": "enc-zz"}, "encounter 'enc-zz' is not in"),
    ({"patient": "pat-a"}, "scope is required"),
    ({"scope": ""}, "scope is required"),
    ({"scope": "system/*.rs", "pateint": "pat-a"}, "unknown field(s) pateint"),
    ({"scope": 7}, "scope must be a string"),
    ({"scope": "system/*.rs", "patient": ["pat-a"]}, "patient must be a string"),
])
def test_tokens_bad_input_is_a_400_with_a_message(ehr, body, message):
    answer = ehr.admin("POST", "tokens", json=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


def test_tokens_body_that_is_not_an_object(ehr):
    for send in ({"json": ["system/*.rs"]}, {"data": "{", "headers": {"Content-Type": "application/json"}}):
        answer = ehr.admin("POST", "tokens", **send)
        assert answer.status_code == 400 and answer.json()["error"]


# ---- GET /admin/audit?since= ------------------------------------------------------------------

def test_audit_since_is_a_cursor(ehr):
    since = ehr.last_event_id()
    fault = ehr.add_fault("throttle:path=/fhir/metadata")
    ehr.read(None, "metadata")
    newer = ehr.audit(since)
    assert newer and all(e["id"] > since for e in newer)
    assert [e["id"] for e in newer] == sorted(e["id"] for e in newer)  # oldest first
    assert any(e["type"] == "fault" and e["outcome"] == "fired" and e["fault"] == fault["id"] for e in newer)
    assert ehr.audit(newer[-1]["id"]) == []
    for bad in ("abc", "-1", "1.5"):
        answer = ehr.admin("GET", "audit", params={"since": bad})
        assert answer.status_code == 400 and "since" in answer.json()["error"]


# ---- mockehr serve --fault ---------------------------------------------------------------------

def test_serve_with_a_bad_fault_exits_2_with_the_parser_message():
    result = subprocess.run([sys.executable, "-m", "mockehr", "serve", "--fault", "throtle", "--port", "0"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "unknown kind 'throtle' (did you mean 'throttle'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "mockehr serving" not in result.stdout


def test_serve_with_a_fault_throttles():
    with ServeProcess("--fault", "throttle:every=2,path=/fhir/.well-known/*", "--fault", "latency:ms=0") as server:
        faults = requests.get(f"{server.url}/admin/faults", timeout=30).json()
        assert [(f["id"], f["spec"]) for f in faults] == [("f1", "throttle:every=2,path=/fhir/.well-known/*"),
                                                          ("f2", "latency:ms=0")]
        url = f"{server.fhir_base}/.well-known/smart-configuration"
        answers = [requests.get(url, timeout=30) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 429, 200, 429]
        throttled = answers[1]
        assert throttled.headers["Retry-After"] == "1"
        assert throttled.json()["resourceType"] == "OperationOutcome"
        assert throttled.json()["issue"][0]["code"] == "throttled"
        # serve's own faults can be removed over the API like any other
        assert requests.delete(f"{server.url}/admin/faults/f1", timeout=30).status_code == 200
        assert [requests.get(url, timeout=30).status_code for _ in range(2)] == [200, 200]


def test_serve_fault_seed_repeats_a_rate_pattern():
    patterns = []
    for _ in range(2):
        with ServeProcess("--fault", "error:rate=0.5,path=/fhir/.well-known/*", "--fault-seed", "11") as server:
            url = f"{server.fhir_base}/.well-known/smart-configuration"
            patterns.append([requests.get(url, timeout=30).status_code for _ in range(16)])
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 500}
