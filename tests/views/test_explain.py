"""explain: what a step is, its spec links, and tokens decoded (pure functions)."""

from __future__ import annotations

import base64
import json

from mockehr.views import explain


def b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_classify_names_each_endpoint():
    assert explain.classify("GET", "/fhir/.well-known/smart-configuration") == "discovery"
    assert explain.classify("GET", "/fhir/.well-known/openid-configuration") == "discovery"
    assert explain.classify("GET", "/auth/authorize") == "authorize"
    assert explain.classify("POST", "/auth/token") == "token"
    assert explain.classify("GET", "/auth/login") == "login"
    assert explain.classify("POST", "/auth/pick-patient") == "picker"
    assert explain.classify("POST", "/auth/consent") == "consent"
    assert explain.classify("POST", "/auth/introspect") == "introspection"
    assert explain.classify("POST", "/auth/revoke") == "revocation"
    assert explain.classify("POST", "/auth/register") == "registration"
    assert explain.classify("GET", "/fhir/metadata") == "capabilities"
    assert explain.classify("GET", "/fhir/Patient/1") == "fhir"
    assert explain.classify("POST", "/admin/launches") == "admin"
    assert explain.classify("GET", "/auth/manage") == "manage"
    assert explain.classify("GET", "/sample-app") == "page"


def test_fhir_interactions():
    cases = {("GET", "/fhir/Patient/1"): ("read", "Patient/1"),
             ("GET", "/fhir/Observation"): ("search", "Observation"),
             ("POST", "/fhir/Observation/_search"): ("search", "Observation"),
             ("POST", "/fhir/Observation"): ("create", "Observation"),
             ("PUT", "/fhir/Observation/9"): ("update", "Observation/9"),
             ("DELETE", "/fhir/Observation/9"): ("delete", "Observation/9"),
             ("GET", "/fhir/Patient/1/_history/2"): ("vread", "Patient/1/_history/2"),
             ("GET", "/fhir/Patient/1/_history"): ("history", "Patient/1/_history"),
             ("GET", "/fhir/Patient/1/$everything"): ("everything", "Patient/1")}
    for (method, path), expected in cases.items():
        assert explain.fhir_interaction(method, path) == expected, path


def test_fhir_types_counts_includes_and_everything():
    assert explain.fhir_types("GET", "/fhir/Observation", []) == {"Observation"}
    query = [("_include", "MedicationRequest:medication:Medication"), ("_revinclude", "Provenance:target")]
    assert explain.fhir_types("GET", "/fhir/MedicationRequest", query) == {"MedicationRequest", "Medication",
                                                                           "Provenance"}
    assert explain.fhir_types("GET", "/fhir/Patient/1/$everything", []) == {"*"}


def test_describe_says_what_happened_and_whether_it_was_refused():
    title, text = explain.describe("token", "POST", "/auth/token", 200, {"grant_type": "refresh_token"}, True)
    assert title == "Token request: refresh" and "refresh token" in text
    title, _ = explain.describe("token", "POST", "/auth/token", 400, {"grant_type": "authorization_code"}, False)
    assert title.endswith("refused")
    title, text = explain.describe("authorize", "GET", "/auth/authorize", 302,
                                   {"launch": "L1", "scope": "launch openid",
                                    "_location": "http://app/cb?code=abc&state=s"}, True)
    assert "EHR launch" in title and "authorization code" in text and "launch openid" in text
    _, text = explain.describe("authorize", "GET", "/auth/authorize", 302,
                               {"_location": "http://x/auth/login?request=r"}, True)
    assert "login page" in text
    title, text = explain.describe("fhir", "GET", "/fhir/Patient/1", 403, {}, False)
    assert title == "FHIR read Patient/1 refused" and "refused" in text


def test_spec_links_point_at_the_right_sections():
    urls = [link["url"] for link in explain.spec_links("token", "authorization_code")]
    assert "https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-access-token" in urls
    assert "https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3" in urls
    refused = [link["url"] for link in explain.spec_links("authorize", ok=False)]
    assert refused[-1].endswith("rfc6749#section-4.1.2.1")
    assert any("launch-app-ehr-launch" in link["url"] for link in explain.spec_links("authorize", ehr_launch=True))
    assert explain.spec_links("fhir", interaction="search")[1]["url"] == "https://hl7.org/fhir/R4/search.html"
    assert explain.spec_links("introspection")[1]["label"].startswith("RFC 7662")
    for name, (label, url) in explain.LINKS.items():
        assert url.startswith("https://") and label, name


def test_decode_jwt_reads_header_and_claims_without_a_signature():
    header, claims = {"alg": "RS256", "typ": "at+jwt"}, {"sub": "Patient/1", "exp": 1700003600, "iat": 1700000000}
    assert explain.decode_jwt(f"{b64(header)}.{b64(claims)}") == {"header": header, "claims": claims}
    assert explain.decode_jwt(f"{b64(header)}.{b64(claims)}.c2ln") == {"header": header, "claims": claims}
    assert explain.decode_jwt("not-a-token") is None
    assert explain.decode_jwt("eyJ.@@@") is None
    assert explain.decode_jwt(f"{b64(header)}.{base64.urlsafe_b64encode(b'[1]').decode()}") is None


def test_claim_notes_and_token_labels():
    notes = explain.claim_notes({"iat": 1700000000, "exp": 1700003600, "auth_time": True})
    assert notes == ["iat 2023-11-14 22:13:20Z", "exp 2023-11-14 23:13:20Z, 3600 s after iat"]
    assert explain.token_label("response body access_token") == "access_token (response)"
    assert explain.token_label("Authorization: Bearer access_token") == "access token (Authorization: Bearer)"
    assert explain.token_label("form client_assertion") == "client_assertion (request)"


def test_event_titles_for_events_outside_requests():
    assert explain.event_title({"type": "fault", "spec": "throttle:every=2"})[0] == "Fault fired: throttle:every=2"
    assert explain.event_title({"type": "keys"})[0] == "Signing keys rotated"
    assert explain.event_title({"type": "whatever"})[0] == "Audit: whatever"
