"""The launcher's options as pure functions (mockehr.views.launch_options): reading a query string,
deep links that round-trip, scope presets, and the launch and registration bodies they become."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings, strategies as st

from mockehr.auth.registration import validate_client_metadata
from mockehr.auth.sim_errors import SIM_ERRORS
from mockehr.views import launch_options as lo

DEFAULTS = lo.Defaults(patient="p1", practitioner="pr1", app_url="http://ehr.test/sample-app",
                       client_id="sample")


def parse(**query) -> lo.Parsed:
    return lo.parse_options({k: v if isinstance(v, list) else [v] for k, v in query.items()}, DEFAULTS)


def options(**query) -> lo.LaunchOptions:
    parsed = parse(**query)
    assert parsed.problems == [], parsed.problems
    return parsed.options


def roundtrip(o: lo.LaunchOptions) -> lo.LaunchOptions:
    query = parse_qs(lo.deep_link_query(o, DEFAULTS), keep_blank_values=True)
    parsed = lo.parse_options(query, DEFAULTS)
    assert parsed.problems == [], parsed.problems
    return parsed.options


def relevant(o: lo.LaunchOptions) -> dict:
    values = lo.query_values(o)
    return {name: values[name] for name, modes in lo.RELEVANT.items() if o.launch_type in modes
            and not (name in ("jwks", "jwks_uri", "key_alg") and o.client_type != "asymmetric")}


# -- reading options -----------------------------------------------------------------------

def test_empty_query_is_a_provider_ehr_launch_of_the_defaults():
    o = options()
    assert (o.launch_type, o.patient, o.practitioner, o.app_url, o.client_id) == \
           ("ehr", "p1", "pr1", "http://ehr.test/sample-app", "sample")
    assert o.scope == "launch openid fhirUser offline_access patient/*.rs"
    assert o.need_patient_banner and o.skip_login and not o.skip_consent
    assert o.effective_redirect_uri == o.app_url


def test_an_empty_patient_means_none_while_a_missing_one_means_the_default():
    assert options().patient == "p1"
    assert options(patient="").patient == ""
    assert options(patient="Patient/p7").patient == "p7"  # a reference is fine too


def test_the_last_value_wins_so_a_ticked_checkbox_beats_its_hidden_zero():
    assert options(need_patient_banner=["0", "1"]).need_patient_banner is True
    assert options(need_patient_banner=["0"]).need_patient_banner is False
    assert options(skip_login=["0"]).skip_login is False


@pytest.mark.parametrize("query, message", [
    ({"launch_type": "bogus"}, "launch_type 'bogus' is not one of ehr, portal, provider, patient, backend"),
    ({"patient": "a b"}, "patient 'a b' is not a FHIR id"),
    ({"app_url": "javascript:alert(1)"}, "app_url 'javascript:alert(1)' must be an absolute http(s) URL"),
    ({"app_url": "http://x:99999/"}, "app_url 'http://x:99999/' is not a valid URL"),
    ({"redirect_uri": "http://app.test/cb#frag"}, "redirect_uri 'http://app.test/cb#frag' must not contain a fragment"),
    ({"client_id": "has space"}, "client_id 'has space' must be printable characters without spaces"),
    ({"client_type": "secret"}, "client_type 'secret' is not one of public, symmetric, asymmetric"),
    ({"launch_type": "backend", "client_type": "public"}, "a backend service cannot be a public client"),
    ({"client_type": "asymmetric", "jwks": "{nope"}, "the JWKS is not JSON"),
    ({"client_type": "asymmetric", "jwks": "[]"}, 'the JWKS must be a JSON object like {"keys": [...]}'),
    ({"jwks": '{"keys": []}', "jwks_uri": "http://app.test/jwks"}, "give either a JWKS or a JWKS URL, not both"),
    ({"need_patient_banner": "maybe"}, "need_patient_banner 'maybe' must be 1 or 0"),
    ({"smart_style_url": "style.css"}, "smart_style_url 'style.css' must be an absolute http(s) URL"),
    ({"fhir_context": "[{"}, "fhirContext is not valid JSON"),
    ({"fhir_context": "not a reference"}, "fhirContext line 'not a reference' is not a reference"),
    ({"sim_error": "nope"}, "sim_error 'nope' is not one of auth_invalid_client_id"),
    ({"sim_error": "invalid_jti"}, "'Token - invalid jti (backend services)' does not apply to a provider ehr launch"),
    ({"launch_type": "portal", "patient": ""}, "a patient portal launch signs the patient in: choose the patient"),
    ({"scope_preset": "everything"}, "scope_preset 'everything' is not one of read, read-write, minimal"),
])
def test_bad_options_are_named_in_problems_never_raised(query, message):
    problems = parse(**query).problems
    assert any(message in p for p in problems), problems


def test_a_portal_launch_without_a_patient_is_fine_when_the_user_signs_in_on_the_login_page():
    assert parse(launch_type="portal", patient="", skip_login="0").problems == []


def test_a_malformed_scope_is_a_note_not_a_problem_so_the_error_can_be_tried():
    parsed = parse(scope="patient/Observation.xyz")
    assert parsed.problems == []
    assert parsed.notes and "The server will refuse this scope" in parsed.notes[0]


# -- scopes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("launch_type, patient, version, expected", [
    ("ehr", "p1", "v2", "launch openid fhirUser offline_access patient/*.rs"),
    ("ehr", "", "v2", "launch launch/patient openid fhirUser offline_access patient/*.rs"),
    ("ehr", "p1", "v1", "launch openid fhirUser offline_access patient/*.read"),
    ("provider", "", "v2", "launch/patient openid fhirUser offline_access user/*.rs"),
    ("patient", "", "v1", "launch/patient openid fhirUser offline_access patient/*.read"),
    ("backend", "", "v1", "system/*.read"),
])
def test_presets_follow_the_launch_type_the_patient_and_the_smart_version(launch_type, patient, version, expected):
    assert lo.preset_scope(launch_type, "read", version, bool(patient)) == expected


def test_to_v1_converts_permission_letters_and_leaves_granular_scopes_alone():
    assert lo.to_v1("patient/*.cruds user/Observation.cud launch patient/Observation.rs?category=x|y") == \
        "patient/*.* user/Observation.write launch patient/Observation.rs?category=x|y"


def test_a_scope_still_showing_the_last_preset_follows_a_new_preset():
    shown = lo.preset_scope("ehr", "read", "v2", True)
    o = options(scope=shown, scope_auto=shown, scope_preset="minimal")
    assert o.scope == "launch openid fhirUser patient/Patient.rs" and not o.scope_is_custom


def test_a_typed_scope_is_kept_whatever_the_preset():
    shown = lo.preset_scope("ehr", "read", "v2", True)
    o = options(scope="launch   patient/Patient.r", scope_auto=shown, scope_preset="minimal")
    assert o.scope == "launch patient/Patient.r" and o.scope_is_custom


# -- deep links ------------------------------------------------------------------------------

def test_a_deep_link_lists_the_launch_type_and_only_what_differs_from_the_defaults():
    assert lo.deep_link_query(options(), DEFAULTS) == "launch_type=ehr"
    o = options(launch_type="portal", patient="p9", encounter="e1", intent="summary", need_patient_banner="0",
                practitioner="pr2")
    assert parse_qs(lo.deep_link_query(o, DEFAULTS)) == {
        "launch_type": ["portal"], "patient": ["p9"], "encounter": ["e1"], "intent": ["summary"],
        "need_patient_banner": ["0"]}  # a portal launch has no clinician: pr2 is left out


def test_a_deep_link_keeps_a_chosen_no_patient():
    o = options(patient="")
    assert "patient=&" in lo.deep_link_query(o, DEFAULTS) + "&"
    assert roundtrip(o).patient == ""


def test_key_options_appear_only_for_asymmetric_clients():
    o = options(key_alg="RS384", jwks_uri="http://app.test/jwks")
    assert "jwks_uri" not in lo.deep_link_query(o, DEFAULTS)
    assert "jwks_uri=" in lo.deep_link_query(replace(o, client_type="asymmetric"), DEFAULTS)


_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="\x7f"),
                min_size=1, max_size=12)
_client_id = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(launch_type=st.sampled_from(list(lo.MODES)), patient=st.sampled_from(["", "p1", "p2"]),
       encounter=st.sampled_from(["", "e1"]), practitioner=st.sampled_from(["pr1", "pr2"]),
       client_type=st.sampled_from(["symmetric", "asymmetric", "public"]), key_alg=st.sampled_from(lo.KEY_ALGS),
       preset=st.sampled_from(list(lo.PRESETS)), version=st.sampled_from(["v1", "v2"]),
       scope=st.one_of(st.just(""), st.just("launch patient/Observation.rs")), intent=st.one_of(st.just(""), _text),
       banner=st.booleans(), skip_login=st.booleans(), skip_consent=st.booleans(), client_id=_client_id,
       style=st.sampled_from(["", "none", "http://style.test/s.json"]))
def test_every_deep_link_round_trips(launch_type, patient, encounter, practitioner, client_type, key_alg, preset,
                                     version, scope, intent, banner, skip_login, skip_consent, client_id, style):
    if launch_type == "backend" and client_type == "public":
        client_type = "asymmetric"
    if launch_type == "portal" and not patient:
        skip_login = False
    sims = [name for name, sim in SIM_ERRORS.items() if launch_type in sim.modes]
    o = options(launch_type=launch_type, patient=patient, encounter=encounter, practitioner=practitioner,
                client_type=client_type, key_alg=key_alg, scope_preset=preset, smart_version=version, scope=scope,
                intent=intent, need_patient_banner="1" if banner else "0", skip_login="1" if skip_login else "0",
                skip_consent="1" if skip_consent else "0", client_id=client_id, smart_style_url=style,
                sim_error=sims[len(client_id) % len(sims)], fhir_context="Observation/o1")
    assert relevant(roundtrip(o)) == relevant(o)


# -- what the options become ---------------------------------------------------------------

def test_launch_body_names_the_clinician_only_when_login_is_skipped():
    o = options(encounter="e1", intent="summary", fhir_context="Observation/o1\nDiagnosticReport/d2",
                smart_style_url="none", sim_error="request_expired_token")
    assert lo.launch_body(o) == {
        "app_url": "http://ehr.test/sample-app", "need_patient_banner": True, "patient": "p1", "encounter": "e1",
        "user": "Practitioner/pr1", "intent": "summary", "sim_error": "request_expired_token",
        "smart_style_url": False,
        "fhirContext": [{"reference": "Observation/o1"}, {"reference": "DiagnosticReport/d2"}]}
    assert "user" not in lo.launch_body(replace(o, skip_login=False))


def test_a_portal_launch_signs_the_patient_in():
    body = lo.launch_body(options(launch_type="portal", patient="p5"))
    assert body["user"] == "Patient/p5" and body["patient"] == "p5"


def test_skip_consent_is_sent_only_when_ticked():
    assert "skip_consent" not in lo.launch_body(options())
    assert lo.launch_body(options(skip_consent="1"))["skip_consent"] is True


def test_fhir_context_accepts_the_launch_api_json_too():
    assert lo.parse_fhir_context('[{"reference": "Observation/1", "role": "x"}]') == \
        [{"reference": "Observation/1", "role": "x"}]
    assert lo.parse_fhir_context("  \n") == []


@pytest.mark.parametrize("query, method, grants", [
    ({"client_type": "public"}, "none", ["authorization_code", "refresh_token"]),
    ({"client_type": "symmetric", "launch_type": "provider"}, "client_secret_basic",
     ["authorization_code", "refresh_token"]),
    ({"launch_type": "backend"}, "private_key_jwt", ["client_credentials"]),
])
def test_registration_bodies_pass_the_registration_endpoint_validation(query, method, grants):
    jwks = {"keys": [{"kty": "EC", "crv": "P-384", "alg": "ES384", "kid": "k1",
                      "x": "n1Y3LKWYFob8YCQX6a1eDxcisgM_x8OkaMqM7eCXiaR-2YNQcNvbnYhTCjk5hQKA",
                      "y": "--N2lXRrtnqVAZGYn1F3miSKhXU_m_f6IIkUbh7A_5LunbgB_YN6vPb19A8Xcvsl"}]}
    o = options(**query)
    metadata = validate_client_metadata(lo.registration_body(o, jwks))
    assert metadata.token_endpoint_auth_method == method and list(metadata.grant_types) == grants
    if o.launch_type == "backend":
        assert metadata.scope == "system/*.rs" and metadata.jwks == jwks
    else:
        assert metadata.redirect_uris == ("http://ehr.test/sample-app",)


def test_a_simulated_error_travels_in_the_registration_metadata():
    body = lo.registration_body(options(launch_type="patient", sim_error="auth_invalid_scope"), None)
    assert body["sim_error"] == "auth_invalid_scope"


def test_simulated_errors_are_offered_per_launch_type():
    backend = dict(lo.sim_errors_for("backend"))
    assert "invalid_jti" in backend and "auth_invalid_scope" not in backend
    assert "invalid_jti" not in dict(lo.sim_errors_for("ehr"))
