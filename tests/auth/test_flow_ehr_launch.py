"""EHR launch: POST /admin/launches, then the app's authorize with `launch`, then the context in the token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from tests.auth.conftest import REDIRECT

APP_URL = "http://app.example/launch?tenant=t1"
FULL_SCOPE = "launch openid fhirUser patient/*.rs user/*.rs"


def _launch_params(launch: dict) -> dict:
    query = parse_qs(urlsplit(launch["launch_url"]).query)
    return {k: v[0] for k, v in query.items()}


def test_admin_launch_answers_launch_iss_and_a_launch_url_on_the_app(ehr):
    launch = ehr.launch(patient="pat-b", user="Practitioner/prac-2", app_url=APP_URL)
    assert set(launch) == {"launch", "iss", "launch_url"}
    assert launch["iss"] == ehr.fhir_base == ehr.issuer
    assert launch["launch_url"].startswith("http://app.example/launch?")
    params = _launch_params(launch)
    assert params == {"tenant": "t1", "launch": launch["launch"], "iss": ehr.fhir_base}  # app's own query kept


def test_ehr_launch_hands_every_context_field_to_the_token_response(ehr):
    context = [{"reference": "Encounter/enc-a1"}, {"reference": "Observation/obs-a-lab", "role": "focus"}]
    launch = ehr.launch(patient="pat-a", user="Practitioner/prac-2", encounter="enc-a1", fhirContext=context,
                        intent="reconcile-medications", need_patient_banner=False, app_url=APP_URL)
    client = ehr.public_client()
    params = _launch_params(launch)
    flow = ehr.code_flow(client["client_id"], FULL_SCOPE, launch=params["launch"], nonce="n-ehr",
                         id_token_expected=True)
    body = flow.body
    assert body["patient"] == "pat-a"
    assert body["encounter"] == "enc-a1"
    assert body["fhirContext"] == context
    assert body["intent"] == "reconcile-medications"
    assert body["need_patient_banner"] is False
    style = body["smart_style_url"]
    assert style.startswith("http://") and urlsplit(style).netloc == urlsplit(ehr.url).netloc  # absolute URL
    answer = requests.get(style, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert isinstance(answer.json(), dict) and answer.json()
    assert set(body["scope"].split()) == set(FULL_SCOPE.split())
    # the user is the launch's user, not the default practitioner
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Practitioner/prac-2"
    assert flow.access_claims["patient"] == "pat-a" and flow.access_claims["encounter"] == "enc-a1"
    # and the token works for that patient
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200


def test_launch_defaults_banner_true_and_honours_a_custom_style_url(ehr):
    client = ehr.public_client()
    plain = ehr.launch(patient="pat-b")
    assert "launch_url" not in plain  # no app_url, no launch_url
    flow = ehr.code_flow(client["client_id"], "launch patient/*.rs", launch=plain["launch"])
    assert flow.body["need_patient_banner"] is True
    assert flow.body["patient"] == "pat-b"
    assert "encounter" not in flow.body and "fhirContext" not in flow.body and "intent" not in flow.body
    custom = ehr.launch(patient="pat-b", smart_style_url="https://style.example/s.json")
    flow = ehr.code_flow(client["client_id"], "launch patient/*.rs", launch=custom["launch"])
    assert flow.body["smart_style_url"] == "https://style.example/s.json"
    none = ehr.launch(patient="pat-b", smart_style_url=False)
    flow = ehr.code_flow(client["client_id"], "launch patient/*.rs", launch=none["launch"])
    assert "smart_style_url" not in flow.body


def test_launch_with_a_patient_user_and_an_openid_scope(ehr):
    launch = ehr.launch(patient="pat-c", user="Patient/pat-c")
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch openid fhirUser patient/*.rs", launch=launch["launch"])
    assert flow.body["patient"] == "pat-c"
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Patient/pat-c"


def test_unknown_launch_is_an_invalid_request_redirect(ehr):
    client = ehr.public_client()
    params = ehr.authorize_error(client["client_id"], FULL_SCOPE, launch="no-such-launch", state="s-unknown")
    assert params["error"] == "invalid_request"
    assert params["state"] == "s-unknown"
    assert "launch" in params["error_description"]


def test_expired_launch_is_an_invalid_request_redirect(ehr):
    launch = ehr.launch(patient="pat-a")
    client = ehr.public_client()
    ehr.state.launches[launch["launch"]].expires = 0  # an hour went by
    params = ehr.authorize_error(client["client_id"], FULL_SCOPE, launch=launch["launch"])
    assert params["error"] == "invalid_request"


def test_launch_scope_without_a_launch_parameter_is_an_invalid_request(ehr):
    client = ehr.public_client()
    params = ehr.authorize_error(client["client_id"], "launch patient/*.rs", state="s-nolaunch")
    assert params["error"] == "invalid_request"
    assert params["state"] == "s-nolaunch"


def test_admin_launch_refuses_bad_context(ehr):
    url = f"{ehr.url}/admin/launches"
    for body, needle in [({"patient": "nobody"}, "patient"), ({"patient": "pat-a", "encounter": "enc-x"}, "encounter"),
                         ({"patient": "pat-a", "user": "Practitioner/nobody"}, "user"),
                         ({"patient": "pat-a", "need_patient_banner": "yes"}, "need_patient_banner"),
                         ({"patient": "pat-a", "fhirContext": "Encounter/enc-a1"}, "fhirContext"),
                         ({"patient": "pat-a", "colour": "blue"}, "colour"),
                         ({"patient": "pat-a", "encounter": "enc-b1"}, "enc-b1"),  # pat-b's encounter
                         ({"patient": "pat-a", "app_url": "not a url"}, "app_url"),
                         ({"patient": "pat-a", "app_url": "http://[::1/launch"}, "app_url"),
                         ({"patient": "pat-a", "smart_style_url": "style.json"}, "smart_style_url"),
                         ({"patient": "pat-a", "fhirContext": [{"reference": 5}]}, "fhirContext"),
                         ({"patient": "pat-a", "fhirContext": [{"role": "focus"}]}, "fhirContext")]:
        answer = requests.post(url, json=body, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert needle in answer.json()["error"]
    assert requests.post(url, data="not json", headers={"Content-Type": "application/json"},
                         timeout=30).status_code == 400


def test_a_launch_token_does_not_reach_other_patients(ehr):
    launch = ehr.launch(patient="pat-a", user="Practitioner/prac-1")
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch patient/*.rs", launch=launch["launch"],
                         redirect_uri=REDIRECT)
    assert ehr.fhir("GET", "Patient/pat-b", flow.access_token).status_code == 403
