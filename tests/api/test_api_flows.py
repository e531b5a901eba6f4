"""MockEHR's flow helpers: registration, authorize (auto-approve and through the pages), backend
tokens, refresh, direct tokens, launches. Every token is verified against the JWKS (PyJWT) and used."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from mockehr import MockEHR
from mockehr.api_flows import FlowError, new_key
from tests.api.tokens import fhir, verify_access, verify_response

P1 = "p00001-diabetes-htn"
P3 = "p00003-child-asthma"
OKAFOR = "Practitioner/pr-okafor"


@pytest.fixture(scope="module")
def ehr():
    with MockEHR(auto_approve=True) as running:
        yield running


@pytest.fixture(scope="module")
def paged():
    """No auto-approve: the helper must complete login, pickers and consent."""
    with MockEHR() as running:
        yield running


def test_public_client_gets_a_patient_token_it_can_use(ehr):
    client = ehr.register_client()
    assert client.kind == "public" and client.client_secret is None
    assert client.registration["token_endpoint_auth_method"] == "none"
    token = ehr.authorize(client, patient=P1)
    claims = verify_response(ehr, token, client.client_id)
    assert token.patient == claims["patient"] == P1
    assert token.refresh_token and token.id_token
    assert set(token.scope.split()) == {"launch", "openid", "fhirUser", "offline_access", "patient/*.rs"}
    assert fhir(ehr, f"Patient/{P1}", token.access_token).json()["id"] == P1
    # patient/ scopes are the patient's compartment only
    assert fhir(ehr, f"Patient/{P3}", token.access_token).status_code == 403


def test_authorize_sends_pkce_state_and_aud_like_an_app(ehr):
    client = ehr.register_client(require_pkce=True)
    ehr.requests.clear()
    ehr.authorize(client, user=f"Patient/{P3}", scope="openid fhirUser patient/*.rs")
    first = ehr.requests.take(path="/auth/authorize")
    assert first.args["code_challenge_method"] == "S256" and len(first.args["code_challenge"]) == 43
    assert first.args["aud"] == ehr.fhir_base and first.args["state"]
    assert first.args["login_hint"] == f"Patient/{P3}" and "launch" not in first.args
    token_request = ehr.requests.take(path="/auth/token")
    assert token_request.body["grant_type"] == "authorization_code"
    assert token_request.body["code_verifier"].endswith("…")  # redacted, as in the inspector
    assert token_request.status == 200


def test_a_patient_user_is_their_own_patient_without_a_launch(ehr):
    token = ehr.authorize("any-app", user=f"Patient/{P3}", scope="launch/patient openid fhirUser patient/*.rs")
    claims = verify_response(ehr, token)
    assert claims["patient"] == P3 and claims["sub"] == f"Patient/{P3}"
    assert ehr.audit(type="authorize")[-1]["launch"] == "standalone"


def test_patient_and_encounter_travel_in_an_ehr_launch(ehr):
    encounter = f"{P1}-enc-002"
    token = ehr.authorize(ehr.register_client(), patient=P1, user=OKAFOR, encounter=encounter,
                          scope="launch openid fhirUser patient/*.rs")
    claims = verify_response(ehr, token)
    assert (claims["patient"], claims["encounter"], claims["sub"]) == (P1, encounter, OKAFOR)
    assert token["need_patient_banner"] is True
    assert ehr.audit(type="launch")[-1]["patient"] == P1


def test_an_explicit_launch_is_used_as_is(ehr):
    launch = ehr.launch(patient=P3, user=OKAFOR, app_url="http://localhost:3000/launch", intent="reconcile")
    assert launch.iss == ehr.fhir_base
    assert launch.url == "http://localhost:3000/launch?" + urlencode({"launch": launch.launch, "iss": launch.iss})
    token = ehr.authorize(ehr.register_client(), launch=launch)
    assert verify_response(ehr, token)["patient"] == P3
    assert token["intent"] == "reconcile"
    with pytest.raises(ValueError, match="pass them to launch"):
        ehr.authorize("app", launch=launch, patient=P1)


@pytest.mark.parametrize("kind", ["secret", "secret_post", "private_key_jwt"])
def test_confidential_clients_authenticate_at_the_token_endpoint(ehr, kind):
    client = ehr.register_client(kind)
    ehr.requests.clear()
    token = ehr.authorize(client, patient=P1)
    verify_response(ehr, token, client.client_id)
    sent = ehr.requests.take(path="/auth/token")
    if kind == "secret":
        assert sent.headers["Authorization"].startswith(f"Basic {client.client_id}:")
        assert "client_id" not in sent.body
    elif kind == "secret_post":
        assert sent.body["client_id"] == client.client_id and sent.body["client_secret"].endswith("…")
    else:
        assert sent.body["client_assertion_type"].endswith("jwt-bearer")
        assert client.private_jwk["d"] and "d" not in client.jwks["keys"][0]


def test_backend_services_with_a_generated_key(ehr):
    client = ehr.register_client("private_key_jwt", grant_types=["client_credentials"], alg="RS384")
    assert client.redirect_uris == [] and client.private_jwk["kty"] == "RSA" and client.private_jwk["alg"] == "RS384"
    token = ehr.backend_token(client, "system/Patient.rs")
    claims = verify_response(ehr, token, client.client_id)
    assert claims["scope"] == "system/Patient.rs" and "refresh_token" not in token
    assert fhir(ehr, "Patient?_count=2", token.access_token).json()["resourceType"] == "Bundle"
    assert fhir(ehr, "Observation?_count=2", token.access_token).status_code == 403


def test_backend_services_with_your_own_key_or_a_secret(ehr):
    jwk = new_key("ES384")
    own = ehr.register_client("private_key_jwt", grant_types=["client_credentials"], jwk=jwk)
    assert own.private_jwk is jwk
    verify_response(ehr, ehr.backend_token(own), own.client_id)
    secret = ehr.register_client("secret", grant_types=["client_credentials"], scope="system/*.rs")
    assert verify_response(ehr, ehr.backend_token(secret, "system/*.rs"))["client_id"] == secret.client_id
    with pytest.raises(ValueError, match="public client"):
        ehr.backend_token(ehr.register_client())


def test_refresh_rotates(ehr):
    client = ehr.register_client("secret")
    first = ehr.authorize(client, patient=P1)
    second = ehr.refresh(client, first.refresh_token)
    verify_response(ehr, second)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(FlowError) as refused:  # reuse of a rotated refresh token revokes the grant
        ehr.refresh(client, first.refresh_token)
    assert (refused.value.step, refused.value.error, refused.value.status) == ("token", "invalid_grant", 400)


def test_issue_token_mints_directly(ehr):
    token = ehr.issue_token(patient=P1)
    claims = verify_response(ehr, token)
    assert (claims["scope"], claims["patient"], claims["client_id"]) == ("patient/*.rs", P1, "mockehr-python")
    user = ehr.issue_token("openid fhirUser user/*.rs", user=OKAFOR, client_id="my-app")
    assert verify_response(ehr, user)["fhirUser"] == f"{ehr.fhir_base}/{OKAFOR}"
    system = ehr.issue_token()
    assert verify_access(ehr, system.access_token)["scope"] == "system/*.rs"
    assert ehr.audit(type="token")[-1]["grant_type"] == "direct (control API)"
    with pytest.raises(ValueError, match="is not in the FHIR store"):
        ehr.issue_token(patient="nobody")
    with pytest.raises(ValueError, match="need a patient"):
        ehr.issue_token("patient/*.rs")


def test_launch_refuses_what_the_control_api_refuses(ehr):
    with pytest.raises(ValueError, match="patient 'nobody' is not in the FHIR store"):
        ehr.launch(patient="nobody")
    with pytest.raises(ValueError, match="unknown field"):
        ehr.launch(patient=P1, colour="blue")


def test_register_client_refusals_are_flow_errors(ehr):
    with pytest.raises(FlowError) as refused:
        ehr.register_client("public", grant_types=["client_credentials"])
    assert refused.value.step == "registration" and refused.value.error == "invalid_client_metadata"
    with pytest.raises(ValueError, match="kind 'magic'"):
        ehr.register_client("magic")


def test_a_deny_fault_ends_authorize_in_access_denied(ehr):
    fault = ehr.faults.add("deny:count=1")
    try:
        with pytest.raises(FlowError) as denied:
            ehr.authorize(ehr.register_client(), patient=P1)
        assert (denied.value.step, denied.value.error) == ("authorize", "access_denied")
        assert "simulated by fault" in denied.value.description
        verify_response(ehr, ehr.authorize(ehr.register_client(), patient=P1))  # count=1: spent
    finally:
        ehr.faults.remove(fault)


def test_pages_are_completed_like_a_browser(paged):
    client = paged.register_client("secret")
    paged.requests.clear()
    token = paged.authorize(client, scope="launch/patient launch/encounter openid fhirUser patient/*.rs")
    claims = verify_response(paged, token, client.client_id)
    directory = paged.app().extensions["mockehr.auth"].directory
    assert claims["sub"] == f"Practitioner/{directory.default_practitioner()}"  # auto-approve's picks
    assert claims["patient"] == directory.first_patient()
    assert claims["encounter"] == directory.latest_encounter(claims["patient"])
    pages = [r.path for r in paged.requests if r.method == "POST" and r.path != "/auth/token"]
    assert pages == ["/auth/login", "/auth/pick-patient", "/auth/pick-encounter", "/auth/consent"]
    assert [e["type"] for e in paged.audit()][-4:] == ["login", "authorize", "consent", "token"]


def test_pages_take_the_user_and_patient_you_name(paged):
    token = paged.authorize(paged.register_client(), user=OKAFOR,
                            scope="launch/patient openid fhirUser patient/*.rs user/Practitioner.rs")
    assert verify_response(paged, token)["sub"] == OKAFOR
    picked = paged.authorize(paged.register_client(), patient=P3, user=OKAFOR)
    assert verify_response(paged, picked)["patient"] == P3  # an EHR launch: no picker shown
    assert paged.audit(type="login")[-1]["method"] == "ehr-launch"


def test_strict_servers_refuse_unregistered_clients_with_the_page_message():
    with MockEHR(auto_approve=True, strict=True) as strict:
        with pytest.raises(FlowError) as refused:
            strict.authorize("never-registered", patient=P1)
        assert refused.value.step == "authorize" and refused.value.status == 400
        assert "Unknown client_id 'never-registered'" in refused.value.description
        verify_response(strict, strict.authorize(strict.register_client(), patient=P1))
