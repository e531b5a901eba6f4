"""MockEHR's state helpers: faults, keys, reset, audit, requests and the movable clock."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime

import jwt
import orjson
import pytest
import requests

from mockehr import MockEHR
from mockehr.faults import FaultSpecError
from tests.api.tokens import fhir, jwks, verify_access, verify_response
from tests.auth.conftest import RESOURCES

P1 = "p00001-diabetes-htn"


@pytest.fixture
def ehr():
    with MockEHR(auto_approve=True) as running:
        yield running


def _observation(patient: str = P1) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "mood"},
            "subject": {"reference": f"Patient/{patient}"}, "valueString": "good"}


def test_faults_add_list_fire_remove_clear(ehr):
    token = ehr.issue_token(patient=P1).access_token
    fault = ehr.faults.add("throttle:every=2,retry_after=3")
    assert fault["id"] == "f1" and fault["kind"] == "throttle" and fault["fired"] == 0
    statuses = [fhir(ehr, f"Patient/{P1}", token).status_code for _ in range(4)]
    assert statuses == [200, 429, 200, 429]
    assert ehr.faults.list()[0]["fired"] == 2
    assert [e["outcome"] for e in ehr.audit(type="fault")] == ["added", "fired", "fired"]
    ehr.faults.remove(fault)
    assert len(ehr.faults) == 0
    with pytest.raises(KeyError, match="no fault 'f1'"):
        ehr.faults.remove("f1")
    ehr.faults.add("error:status=503")
    ehr.faults.add("latency:ms=1")
    assert [f["id"] for f in ehr.faults] == ["f2", "f3"]
    assert fhir(ehr, f"Patient/{P1}", token).status_code == 503
    assert ehr.faults.clear() == 2 and ehr.faults.list() == []
    assert fhir(ehr, f"Patient/{P1}", token).status_code == 200


def test_a_bad_fault_spec_says_why_and_changes_nothing(ehr):
    with pytest.raises(FaultSpecError, match=r"unknown kind 'throtle' \(did you mean 'throttle'\?\)"):
        ehr.faults.add("throtle")
    assert ehr.faults.list() == [] and ehr.audit(type="fault") == []
    with pytest.raises(FaultSpecError, match="'every' must be a whole number >= 1, got 'zero'"):
        MockEHR(faults=["throttle:every=zero"])
    with pytest.raises(FaultSpecError):
        ehr.reset(faults=["nonsense"])


def test_one_shot_faults_act_when_added(ehr):
    before = ehr.issue_token(patient=P1).access_token
    ehr.faults.add("revoke-all")
    assert fhir(ehr, f"Patient/{P1}", before).status_code == 401
    assert fhir(ehr, f"Patient/{P1}", ehr.issue_token(patient=P1).access_token).status_code == 200


def test_rotate_keys(ehr):
    old = ehr.issue_token(patient=P1).access_token
    old_kid = jwt.get_unverified_header(old)["kid"]
    kid = ehr.rotate_keys(keep_old=True)
    assert kid != old_kid and {old_kid, kid} <= {k.key_id for k in jwks(ehr).keys}
    assert fhir(ehr, f"Patient/{P1}", old).status_code == 200  # keep_old: still accepted
    new = ehr.issue_token(patient=P1).access_token
    assert jwt.get_unverified_header(new)["kid"] == kid
    verify_access(ehr, new)
    ehr.rotate_keys()
    assert kid not in {k.key_id for k in jwks(ehr).keys}
    assert fhir(ehr, f"Patient/{P1}", new).status_code == 401
    assert [e["keep_old"] for e in ehr.audit(type="keys")] == [True, False]


def test_reset_puts_everything_back():
    with MockEHR(auto_approve=True, faults=["latency:ms=1"]) as ehr:
        token = ehr.issue_token("patient/*.cruds", patient=P1).access_token
        created = fhir(ehr, "Observation", token, "POST", json=_observation())
        assert created.status_code == 201
        location = created.headers["Location"].split("/fhir/")[1].split("/_history")[0]
        client = ehr.register_client("secret")
        ehr.faults.add("throttle:every=5")
        ehr.clock.advance(3600)
        assert [r.path for r in ehr.requests] == ["/fhir/Observation", "/fhir/.well-known/smart-configuration",
                                                  "/auth/register"]
        assert ehr.audit()
        ehr.reset()
        assert ehr.clock.offset == 0 and len(ehr.requests) == 0 and ehr.audit() == []
        assert [f["spec"] for f in ehr.faults.list()] == ["latency:ms=1"]  # the start's faults come back
        fresh = ehr.issue_token("patient/*.cruds", patient=P1).access_token
        assert fhir(ehr, location, fresh).status_code == 404  # the write is gone
        assert fhir(ehr, f"Patient/{P1}", token).status_code == 401  # the old token too
        with pytest.raises(Exception, match="invalid_client"):
            ehr.backend_token(client)  # and the client
        ehr.reset(faults=["throttle:every=1"])  # new start faults: reset puts these back from now on
        ehr.reset()
        assert [f["spec"] for f in ehr.faults.list()] == ["throttle:every=1"]


def test_reset_is_fast_enough_to_run_before_every_test(ehr):
    token = ehr.issue_token("patient/*.cruds", patient=P1).access_token
    times = []
    for _ in range(15):
        for _ in range(5):
            assert fhir(ehr, "Observation", token, "POST", json=_observation()).status_code == 201
        ehr.register_client()
        began = time.perf_counter()
        ehr.reset()
        times.append(time.perf_counter() - began)
        token = ehr.issue_token("patient/*.cruds", patient=P1).access_token
    assert statistics.median(times) < 0.010, times  # the issue's target; bench/api_bench.py measures it


def test_requests_record_what_the_server_saw(ehr):
    token = ehr.issue_token(patient=P1)
    fhir(ehr, f"Observation?patient={P1}&_count=2", token.access_token)
    fhir(ehr, "Observation", token.access_token, "POST", json=_observation())
    seen = list(ehr.requests)
    assert [str(r) for r in seen] == [f"GET /fhir/Observation?patient={P1}&_count=2 -> 200",
                                      "POST /fhir/Observation -> 403"]
    get, post = seen
    assert get.args == {"patient": P1, "_count": "2"}
    assert get.headers["Authorization"].startswith("Bearer eyJ") and token.access_token not in str(get.headers)
    assert get.token_claims["patient"] == P1 and get.token_claims["scope"] == "patient/*.rs"
    assert post.body["valueString"] == "good" and post.response_headers["Content-Type"].startswith(
        "application/fhir+json")
    assert ehr.requests.filter(method="post", path="/fhir/Obs*") == [post]
    assert ehr.requests[-1] == post
    ehr.requests.clear()
    assert len(ehr.requests) == 0


def test_take_waits_for_the_next_request(ehr):
    token = ehr.issue_token(patient=P1).access_token
    fhir(ehr, f"Patient/{P1}", token)
    assert ehr.requests.take().path == f"/fhir/Patient/{P1}"
    later = threading.Timer(0.2, lambda: fhir(ehr, "Condition?patient=" + P1, token))
    later.start()
    assert ehr.requests.take(timeout=5, path="/fhir/Condition").args["patient"] == P1
    later.join()
    with pytest.raises(TimeoutError, match="no GET within 0.05 s"):
        ehr.requests.take(timeout=0.05, method="GET")


def test_the_clock_moves_tokens_data_and_audit(ehr):
    old = ehr.issue_token("patient/*.cruds", patient=P1, )
    real = time.time()
    ehr.clock.advance(7200)
    assert abs(ehr.clock() - real - 7200) < 5
    # the token issued before has expired on the server's clock
    refused = fhir(ehr, f"Patient/{P1}", old.access_token)
    assert refused.status_code == 401 and "expired" in refused.headers["WWW-Authenticate"]
    new = ehr.issue_token("patient/*.cruds", patient=P1)
    claims = verify_access(ehr, new.access_token)
    assert claims["iat"] >= real + 7200 - 5
    with pytest.raises(jwt.ImmatureSignatureError):  # PyJWT on the real clock: issued in the future
        jwt.decode(new.access_token, jwks(ehr).keys[0].key, algorithms=["RS256"], audience=ehr.fhir_base)
    created = fhir(ehr, "Observation", new.access_token, "POST", json=_observation()).json()
    written = datetime.fromisoformat(created["meta"]["lastUpdated"].replace("Z", "+00:00")).timestamp()
    assert abs(written - (real + 7200)) < 5
    event = datetime.fromisoformat(ehr.audit()[-1]["time"].replace("Z", "+00:00")).timestamp()
    assert abs(event - (real + 7200)) < 5
    # a token expires when the clock passes its exp, not before
    ehr.clock.advance(new["expires_in"] - 30)
    assert fhir(ehr, f"Patient/{P1}", new.access_token).status_code == 200
    ehr.clock.advance(60)
    assert fhir(ehr, f"Patient/{P1}", new.access_token).status_code == 401


def test_the_clock_drives_code_and_assertion_checks(ehr):
    client = ehr.register_client("private_key_jwt")
    ehr.clock.advance(-86400)  # a day back: assertions are signed on the server's clock, so they pass
    token = ehr.backend_token(client)
    claims = verify_response(ehr, token, client.client_id)
    assert claims["exp"] < time.time()  # already dead for the real world
    assert verify_response(ehr, ehr.authorize(client, patient=P1))["iat"] < time.time() - 86000


def test_app_and_test_client_need_no_socket():
    ehr = MockEHR(auto_approve=True)
    app = ehr.app()
    answer = ehr.test_client().get("/fhir/metadata")
    assert answer.status_code == 200 and answer.json["resourceType"] == "CapabilityStatement"
    client = ehr.register_client()  # the helpers go through the test client
    token = ehr.authorize(client, patient=P1)
    assert token.claims["iss"] == "http://localhost/fhir" and token.patient == P1
    assert ehr.test_client().get(f"/fhir/Patient/{P1}", headers=token.headers).status_code == 200
    assert not ehr.running
    with ehr:  # start() serves the same app: the client registered before is known
        assert ehr.app() is app
        assert ehr.url.startswith("http://127.0.0.1:")
        served = ehr.authorize(client, patient=P1)
        assert verify_response(ehr, served, client.client_id)["iss"] == ehr.fhir_base
    with pytest.raises(RuntimeError, match="not started"):
        ehr.url  # noqa: B018


def test_start_stop_and_the_urls():
    ehr = MockEHR()
    began = time.perf_counter()
    ehr.start()
    assert ehr.running and ehr.url == f"http://127.0.0.1:{ehr.port}"
    assert ehr.fhir_base == ehr.url + "/fhir"
    discovery = requests.get(ehr.smart_configuration_url, timeout=30).json()
    assert discovery == ehr.smart_configuration and discovery["issuer"] == ehr.fhir_base
    url = ehr.url
    ehr.stop()
    assert time.perf_counter() - began < 5
    assert not ehr.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/fhir/metadata", timeout=5)


def test_stop_does_not_wait_for_the_poll_interval():
    times = []
    for _ in range(3):
        ehr = MockEHR().start()
        began = time.perf_counter()
        ehr.stop()
        times.append(time.perf_counter() - began)
    assert min(times) < 0.2, times  # socketserver alone waits up to 0.5 s


def test_options_are_the_serve_options(tmp_path):
    with pytest.raises(TypeError, match="unknown option 'auto_aprove' \\(did you mean 'auto_approve'\\?\\)"):
        MockEHR(auto_aprove=True)
    with MockEHR(public_url="https://ehr.example.org", access_token_lifetime=60, strict=True,
                 data_dir=tmp_path / "state", admin_token="s3cret", fault_seed=3) as ehr:
        assert ehr.url == "https://ehr.example.org" and ehr.fhir_base == "https://ehr.example.org/fhir"
        assert ehr.settings.data_dir == tmp_path / "state" and ehr.settings.fault_seed == 3
        client = ehr.register_client("secret")  # strict: registered, not on the spot
        token = ehr.authorize(client, patient=P1)  # no auto_approve: through the login and consent pages
        assert token["expires_in"] == 60 and token.claims["iss"] == "https://ehr.example.org/fhir"
        local = ehr._server.local_url
        assert requests.get(local + "/admin/audit", timeout=30).status_code == 401  # the admin token rules
        assert (tmp_path / "state").is_dir()


def test_dataset_option_and_the_gc_freeze_in_a_fresh_process(tmp_path):
    for resource in RESOURCES:
        with open(tmp_path / f"{resource['resourceType']}.ndjson", "ab") as out:
            out.write(orjson.dumps(resource) + b"\n")
    code = ("import gc, sys; from mockehr import MockEHR\n"
            f"ehr = MockEHR(dataset={str(tmp_path)!r}, auto_approve=True)\n"
            "token = ehr.authorize('app', patient='pat-b', scope='launch openid fhirUser patient/*.rs')\n"
            "print(token.patient, token.claims['sub'], gc.get_freeze_count() > 0)\n")
    for env, frozen in (({}, "True"), ({"MOCKEHR_GC_FREEZE": "0"}, "False")):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **env})
        assert run.stdout.split() == ["pat-b", "Practitioner/prac-1", frozen], run.stderr[-3000:]
