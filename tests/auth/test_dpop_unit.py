"""The pure parts of PAR and DPoP: proof verification (RFC 9449 4.3) against the RFC's own example
and proofs made with PyJWT, JWK thumbprints (RFC 7638), htu normalisation, the replay cache and
server nonces (DPoPState), and the pushed request records (RFC 9126)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from joserfc import jws
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import OKPKey

from mockehr.auth import dpop
from mockehr.auth.dpop import ProofError, access_token_hash, normalize_url, thumbprint, verify_proof
from mockehr.auth.dpop_http import NONCE_LIFETIME, REPLAY_HORIZON, DPoPState
from mockehr.auth.par import LIFETIME, REQUEST_URI_PREFIX, PushedRequests, request_params
from tests.auth.dpop_helper import b64url, dpop_key

URL = "https://ehr.example.org/fhir/Patient/p1"

# RFC 9449 4.2 (figure 4): a proof for POST https://server.example.com/token at iat 1562262616, and
# (6.1) the thumbprint of its key.
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa"
    "0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6Il"
    "AtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY"
    "29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJ"
    "K70nfbV37xRZT3Lg")
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.fixture(scope="module")
def key():
    return dpop_key("ES256")


def unsigned(header: dict, claims: dict | None = None) -> str:
    """A proof-shaped JWT whose signature is junk: for the checks that come before the signature's."""
    header = {"typ": "dpop+jwt", **header}
    claims = claims or {"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())}
    encode = [b64url(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join([*encode, "c2lnbmF0dXJl"])


def check(proof: str, *, method: str = "GET", url: str = URL, now: float | None = None, **kwargs):
    return verify_proof([proof], method=method, url=url, now=time.time() if now is None else now, **kwargs)


def refused(proof, error: str = "invalid_dpop_proof", **kwargs) -> str:
    with pytest.raises(ProofError) as caught:
        check(proof, **kwargs) if isinstance(proof, str) else verify_proof(proof, method="GET", url=URL,
                                                                            now=time.time(), **kwargs)
    assert caught.value.error == error
    return caught.value.description


# -- the RFC's example and thumbprints ---------------------------------------------------------
def test_the_rfc_example_proof_verifies():
    proof = check(RFC_PROOF, method="POST", url="https://server.example.com/token", now=1562262616)
    assert (proof.jkt, proof.jti, proof.htm, proof.alg) == (RFC_JKT, "-BwC3ESc6acc2lTc", "POST", "ES256")
    assert "s ago" in refused(RFC_PROOF, method="POST", url="https://server.example.com/token")  # it is old now


def test_thumbprint_matches_rfc_7638_and_joserfc(key):
    rfc_7638_key = {
        "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB"
             "ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZ"
             "gnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniI"
             "qbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert thumbprint(rfc_7638_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"  # RFC 7638 3.1
    assert thumbprint(key.jwk) == key.jkt  # the tests' own implementation
    assert dpop.is_thumbprint(key.jkt) and not dpop.is_thumbprint(key.jkt[:-1]) and not dpop.is_thumbprint(None)
    with pytest.raises(ValueError):
        thumbprint({"kty": "oct", "k": "abc"})


def test_access_token_hash():
    # base64url(SHA-256("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")), RFC 9449 7.1's example token
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize("url, normal", [
    ("HTTPS://EHR.Example.org:443/fhir/Patient", "https://ehr.example.org/fhir/Patient"),
    ("http://127.0.0.1:80", "http://127.0.0.1/"),
    ("http://localhost:8080/fhir/Patient/a%2Db", "http://localhost:8080/fhir/Patient/a-b"),
    ("http://[::1]:8080/x?y=1#z", "http://[::1]:8080/x"),
])
def test_normalize_url(url, normal):
    assert normalize_url(url) == normal


@pytest.mark.parametrize("url", ["ftp://x/y", "/fhir/Patient", "http://:80/x", "http://x:99999/"])
def test_normalize_url_refuses_what_is_not_an_http_url(url):
    with pytest.raises(ValueError):
        normalize_url(url)


# -- proofs that pass ---------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "RS512", "PS256"])
def test_proofs_of_every_advertised_family_verify(alg):
    key = dpop_key(alg)
    proof = check(key.proof("GET", URL, access_token="tok"), access_token="tok")
    assert proof.jkt == key.jkt and proof.alg == alg and proof.ath == access_token_hash("tok")


def test_an_ed25519_proof_verifies():
    key = OKPKey.generate_key("Ed25519")
    public = key.as_dict(private=False)
    claims = b'{"jti":"e1","htm":"GET","htu":"%s","iat":%d}' % (URL.encode(), int(time.time()))
    proof = jws.serialize_compact({"alg": "Ed25519", "typ": "dpop+jwt", "jwk": public}, claims, key,
                                  algorithms=["Ed25519"])
    assert check(proof).jkt == thumbprint(public)


def test_the_url_is_compared_after_normalisation(key):
    check(key.proof("GET", "https://EHR.example.org:443/fhir/Patient/p1"))
    check(key.proof("GET", URL), url="https://ehr.example.org/fhir/Patient/p1")


# -- proofs that fail ------------------------------------------------------------------------------
def test_how_many_headers(key):
    assert "no DPoP proof" in refused([])
    assert "several" in refused([key.proof("GET", URL), key.proof("GET", URL)])
    assert "several" in refused([f"{key.proof('GET', URL)}, {key.proof('GET', URL)}"])  # joined by the server


@pytest.mark.parametrize("text, words", [
    ("abc", "not a signed JWT"), ("a.b", "not a signed JWT"), ("a..c", "not a signed JWT"),
    ("!!!.e30.sig", "header is not base64url"), ("W10.e30.sig", "header must be a JSON object"),
])
def test_what_is_not_a_jwt(text, words):
    assert words in refused(text)


def test_claims_and_header(key):
    assert "typ" in refused(key.proof("GET", URL, header={"typ": "JWT"}))
    for name in ("jti", "htm", "htu", "iat"):
        assert f"no {name} claim" in refused(key.proof("GET", URL, **{name: None}))
    assert "iat claim must be a number" in refused(key.proof("GET", URL, iat="now"))
    assert "jti claim must be a string" in refused(key.proof("GET", URL, jti=""))
    assert "nonce claim must be a string" in refused(key.proof("GET", URL, nonce=5))


def test_algorithms_and_keys(key):
    body = {"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())}
    assert "symmetric" in refused(jwt.encode(body, "k" * 32, algorithm="HS256",
                                             headers={"typ": "dpop+jwt", "jwk": key.jwk}))
    none = jwt.encode(body, None, algorithm="none", headers={"typ": "dpop+jwt", "jwk": key.jwk}) + "x"
    assert "'none' is never accepted" in refused(none)
    assert "no jwk" in refused(key.proof("GET", URL, header={"jwk": None}))
    assert "private key member(s) d" in refused(key.proof("GET", URL, header={"jwk": {**key.jwk, "d": "AA"}}))
    assert "needs a RSA key" in refused(unsigned({"alg": "RS256", "jwk": key.jwk}))
    assert "curve 'P-384'" in refused(unsigned({"alg": "ES256", "jwk": dpop_key("ES384").jwk}))
    assert "not a valid EC public key" in refused(key.proof("GET", URL, header={"jwk": {**key.jwk, "x": "AAAA"}}))


def test_a_small_rsa_key_is_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
    assert "1024 bits" in refused(unsigned({"alg": "RS256", "jwk": public}))  # refused before the signature


def test_signature(key):
    other = dpop_key("ES256")
    forged = other.proof("GET", URL, header={"jwk": key.jwk})  # signed by another key than the one named
    assert "signature" in refused(forged)
    assert "signature" in refused(key.proof("GET", URL)[:-4] + "AAAA")


def test_method_url_and_time(key):
    assert "htm" in refused(key.proof("POST", URL))
    assert "htm" in refused(key.proof("get", URL))  # methods are case-sensitive
    assert "htu" in refused(key.proof("GET", URL.replace("p1", "p2")))
    assert "without query" in refused(key.proof("GET", URL + "?a=1"))
    assert "not an absolute" in refused(key.proof("GET", "/fhir/Patient/p1"))
    now = time.time()
    assert "61 s ago" in refused(key.proof("GET", URL, iat=int(now) - 61), now=int(now))
    assert "in the future" in refused(key.proof("GET", URL, iat=int(now) + 61), now=int(now))
    check(key.proof("GET", URL, iat=int(now) - 60), now=int(now))
    check(key.proof("GET", URL, iat=int(now) + 60), now=int(now))
    check(key.proof("GET", URL, iat=int(now) - 100), now=int(now), window=120)


def test_ath(key):
    assert "no ath" in refused(key.proof("GET", URL), access_token="tok")
    assert "ath does not match" in refused(key.proof("GET", URL, access_token="other"), access_token="tok")
    check(key.proof("GET", URL, access_token="other"))  # without a token (token endpoint) ath is not checked


def test_the_nonce_callback_answers_use_dpop_nonce(key):
    def wants(nonce):
        return None if nonce == "n-1" else "wrong nonce"

    assert refused(key.proof("GET", URL), "use_dpop_nonce", nonce_problem=wants) == "wrong nonce"
    assert check(key.proof("GET", URL, nonce="n-1"), nonce_problem=wants).nonce == "n-1"
    # a nonce problem is reported before a stale iat: the client's retry with the nonce then fixes both
    stale = key.proof("GET", URL, iat=int(time.time()) - 300)
    refused(stale, "use_dpop_nonce", nonce_problem=wants)


def test_a_proof_that_is_far_too_long_or_deeply_nested_is_refused(key):
    assert "longer than" in refused("a" * (dpop.MAX_PROOF_LENGTH + 1))
    deep = b64url(b"[" * 5000 + b"]" * 5000)  # json.loads gives up with a RecursionError
    assert "header is not base64url-encoded JSON" in refused(f"{deep}.e30.c2ln")
    assert "payload is not base64url-encoded JSON" in refused(f"e30.{deep}.c2ln")


# -- DPoPState: replay cache and nonces ----------------------------------------------------------
class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_replay_cache_remembers_a_jti_while_it_could_pass():
    clock = Clock()
    state = DPoPState(clock)
    assert state.fresh("a") and not state.fresh("a") and state.fresh("b")
    clock.now += REPLAY_HORIZON - 1
    assert not state.fresh("a")
    clock.now += 2  # past the horizon: the proof's iat could not pass any more, so the jti is forgotten
    assert state.fresh("a")
    state.clear()
    assert state.fresh("b")


def test_nonces_are_issued_checked_and_expire():
    clock = Clock()
    state, other = DPoPState(clock), DPoPState(clock)
    nonce = state.nonce()
    assert state.nonce_problem(nonce) is None and state.nonce() == nonce  # one nonce a minute
    assert "requires a nonce" in state.nonce_problem(None)
    assert "not issued" in other.nonce_problem(nonce)  # another server's secret
    for forged in (nonce[:-1] + ("A" if nonce[-1] != "A" else "B"), "", ".", "x.y", "é.é", "AAAAAAAAAAAAAAAA.x"):
        assert "not issued" in state.nonce_problem(forged), forged
    clock.now += 61
    assert state.nonce() != nonce and state.nonce_problem(nonce) is None  # the previous one still works
    clock.now += NONCE_LIFETIME
    assert "expired" in state.nonce_problem(nonce)


# -- pushed requests -----------------------------------------------------------------------------
def test_a_pushed_request_is_taken_once_by_its_client():
    clock = Clock()
    store = PushedRequests(clock)
    record = store.push("app", {"client_id": "app", "scope": "openid"})
    assert record.request_uri.startswith(REQUEST_URI_PREFIX) and record.expires == clock.now + LIFETIME
    assert store.take(record.request_uri, "other").record is None  # not found for another client ...
    assert "another client" in store.take(record.request_uri, "other").problem
    taken = store.take(record.request_uri, "app")  # ... and still there for its own
    assert taken.record.params == {"client_id": "app", "scope": "openid"} and taken.problem is None
    again = store.take(record.request_uri, "app")
    assert again.record is record and "already used" in again.problem
    assert store.take(REQUEST_URI_PREFIX + "nope", "app") == type(again)(None)


def test_a_pushed_request_expires_and_is_forgotten_later():
    clock = Clock()
    store = PushedRequests(clock)
    record = store.push("app", {})
    clock.now += LIFETIME + 1
    late = store.take(record.request_uri, "app")
    assert late.record is record and "expired 1 s ago" in late.problem
    clock.now += 3600
    store.push("app", {})  # pushing purges records long past their expiry
    assert store.take(record.request_uri, "app").record is None
    store.clear()


def test_request_params_drop_client_authentication():
    form = {"client_id": "x", "client_secret": "s", "client_assertion": "a", "client_assertion_type": "t",
            "scope": "openid"}
    assert request_params(form, "app") == {"client_id": "app", "scope": "openid"}
