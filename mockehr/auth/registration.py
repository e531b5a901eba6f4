"""Validation of OAuth 2.0 Dynamic Client Registration metadata (RFC 7591).

Pure: no Flask, no network (a jwks_uri is checked as a URL, never fetched).
`validate_client_metadata` returns a `ClientMetadata` or raises
`RegistrationError`, and nothing else, whatever the body holds. Permissive
where the specs allow (http redirect URIs, unknown fields kept), strict where
a mistake would only surface later at the token endpoint (keys, grant types).
A JSON null counts as an absent field throughout.
"""

from __future__ import annotations

import ipaddress
import math
import re
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from joserfc.jwk import KeySet

from mockehr.auth.pairwise import registration_problem
from mockehr.auth.sim_errors import check_sim_error

TOKEN_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
ASSERTION_ALGS = ("RS384", "ES384", "RS256", "ES256")  # SMART requires RS384 and ES384 support
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SUBJECT_TYPES = ("public", "pairwise")

_REFUSED_GRANTS = {
    "implicit": "the implicit grant is not supported by SMART (use authorization_code with PKCE)",
    "password": "the resource owner password grant is not supported by SMART",
}
_EC_CURVE_ALGS = {"P-256": "ES256", "P-384": "ES384"}  # RFC 7518 3.4: each ES alg has one curve
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_MIN_RSA_BITS = 2048
# Issued by the server, never chosen by the client, so never kept from the request.
_SERVER_OWNED = {"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
                 "registration_access_token", "registration_client_uri", "software_statement"}
_OPTIONAL_URLS = ("logo_uri", "client_uri", "policy_uri", "tos_uri")
# Unknown fields are kept if JSON-safe; these flags are type-checked as the server acts on them.
_EXTRA_BOOLS = ("require_pushed_authorization_requests", "dpop_bound_access_tokens")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 3.3 scope-token
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")  # RFC 3986 3.1
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_DEPTH = 32


class RegistrationError(ValueError):
    """A registration request we refuse; `error` is the RFC 7591 3.2.2 code."""

    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def to_dict(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def _bad(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


@dataclass(frozen=True)
class ClientMetadata:
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    client_name: str | None
    scope: str | None  # as registered (space separated); None = anything
    jwks: dict | None = field(hash=False)
    jwks_uri: str | None
    subject_type: str
    require_pkce: bool
    contacts: tuple[str, ...]
    logo_uri: str | None
    client_uri: str | None
    policy_uri: str | None
    tos_uri: str | None
    extra: dict = field(hash=False)

    def to_response(self) -> dict:
        """The metadata for the 201 answer (a fresh copy); the caller adds client_id/secret."""
        answer = _json_copy(self.extra)
        answer.update(token_endpoint_auth_method=self.token_endpoint_auth_method,
                      grant_types=list(self.grant_types), response_types=list(self.response_types),
                      subject_type=self.subject_type, require_pkce=self.require_pkce)
        for name in ("redirect_uris", "contacts"):
            if getattr(self, name):
                answer[name] = list(getattr(self, name))
        for name in ("client_name", "scope", "jwks", "jwks_uri", *_OPTIONAL_URLS):
            if getattr(self, name) is not None:
                answer[name] = _json_copy(getattr(self, name))
        return answer


def validate_client_metadata(body: object, *, allow_http_localhost_only: bool = False) -> ClientMetadata:
    """Check an RFC 7591 registration body and fill in its defaults.

    `allow_http_localhost_only` refuses plain-http redirect_uris and jwks_uri
    unless the host is loopback (RFC 8252 8.3); by default http is fine for
    any host, since this is a local sandbox.

    client_credentials needs a confidential client: private_key_jwt (SMART
    Backend Services) or, as plain OAuth allows, client_secret_basic/post.
    """
    if not isinstance(body, dict):
        raise _bad("the registration body must be a JSON object")
    statement = body.get("software_statement")
    # We do not verify software statements (RFC 7591 3.1.1 lets a server ignore them),
    # but one that is not even a compact JWS is a client bug worth reporting.
    if statement is not None and (not _is_text(statement) or statement.count(".") != 2):
        raise RegistrationError("invalid_software_statement", "software_statement must be a signed JWT (compact JWS)")

    jwks = None if body.get("jwks") is None else _jwks(body["jwks"])
    jwks_uri = _url(body, "jwks_uri", loopback_http_only=allow_http_localhost_only)
    if jwks is not None and jwks_uri is not None:
        raise _bad("jwks and jwks_uri must not both be present (RFC 7591 2); send one")
    has_keys = jwks is not None or jwks_uri is not None
    # RFC 7591 defaults to client_secret_basic; a client that sent keys clearly meant private_key_jwt.
    method = _string(body, "token_endpoint_auth_method", "private_key_jwt" if has_keys else "client_secret_basic")
    if method not in TOKEN_AUTH_METHODS:
        raise _bad(f"token_endpoint_auth_method {_show(method)} is not supported; "
                   f"use one of {', '.join(TOKEN_AUTH_METHODS)}")
    if method == "private_key_jwt" and not has_keys:
        raise _bad("token_endpoint_auth_method 'private_key_jwt' needs the public keys: send jwks or jwks_uri")

    grant_types = _grant_types(body)
    if "client_credentials" in grant_types and method == "none":
        raise _bad("grant type 'client_credentials' needs an authenticated client; "
                   "token_endpoint_auth_method 'none' (public client) cannot use it")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise _bad("grant type 'refresh_token' is only issued with 'authorization_code'; add it or drop refresh_token")
    response_types = _response_types(body, grant_types)
    redirect_uris = _redirect_uris(body, allow_http_localhost_only)
    if "authorization_code" in grant_types and not redirect_uris:
        raise RegistrationError("invalid_redirect_uri",
                                "redirect_uris is required for the authorization_code grant (RFC 6749 3.1.2.2)")

    subject_type = _string(body, "subject_type", "public")
    if subject_type not in SUBJECT_TYPES:
        raise _bad(f"subject_type {_show(subject_type)} must be 'public' or 'pairwise'")
    _session_metadata(body, redirect_uris, subject_type, allow_http_localhost_only)
    return ClientMetadata(
        redirect_uris=redirect_uris, token_endpoint_auth_method=method,
        grant_types=grant_types, response_types=response_types,
        client_name=_string(body, "client_name"), scope=_scope(body),
        jwks=jwks, jwks_uri=jwks_uri, subject_type=subject_type,
        require_pkce=_boolean(body, "require_pkce", False),
        contacts=_string_list(body, "contacts"),
        **{name: _url(body, name) for name in _OPTIONAL_URLS},
        extra=_extra(body),
    )


def _session_metadata(body: dict, redirect_uris: tuple[str, ...], subject_type: str,
                      loopback_http_only: bool) -> None:
    """OIDC metadata kept in `extra`: sector_identifier_uri (pairwise; never fetched), post_logout_redirect_uris
    (RP-Initiated Logout 3.1), backchannel_logout_uri and backchannel_logout_session_required (Back-Channel
    Logout 2.2)."""
    sector_uri = _url(body, "sector_identifier_uri", loopback_http_only=loopback_http_only)
    problem = registration_problem(subject_type, redirect_uris, sector_uri)
    if problem:
        raise _bad(problem)
    _string_list(body, "post_logout_redirect_uris")
    for index, uri in enumerate(body.get("post_logout_redirect_uris") or ()):
        reason = _redirect_uri_problem(uri, loopback_http_only)
        if reason:
            raise _bad(f"post_logout_redirect_uris[{index}] {_show(uri)} {reason}")
    _url(body, "backchannel_logout_uri", loopback_http_only=loopback_http_only)
    _boolean(body, "backchannel_logout_session_required")


def _string(body: dict, name: str, default: str | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return default
    if not _is_text(value):
        raise _bad(f"{name} must be a string, not {_json_type(value)}")
    return value


def _boolean(body: dict, name: str, default: bool | None = None) -> bool | None:
    value = body.get(name)
    if value is not None and type(value) is not bool:
        raise _bad(f"{name} must be a JSON boolean (true or false), not {_json_type(value)}")
    return default if value is None else value


def _string_list(body: dict, name: str, error: str = "invalid_client_metadata") -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RegistrationError(error, f"{name} must be an array of strings, not {_json_type(value)}")
    for index, item in enumerate(value):
        if not _is_text(item):
            raise RegistrationError(error, f"{name}[{index}] must be a string, not {_json_type(item)}")
    return tuple(dict.fromkeys(value))  # drop repeats, keep order


def _grant_types(body: dict) -> tuple[str, ...]:
    grants = ("authorization_code",) if body.get("grant_types") is None else _string_list(body, "grant_types")
    if not grants:
        raise _bad("grant_types must list at least one grant type (omit it for ['authorization_code'])")
    for grant in grants:
        if grant in _REFUSED_GRANTS:
            raise _bad(f"grant_types: {_REFUSED_GRANTS[grant]}")
        if grant not in GRANT_TYPES:
            raise _bad(f"grant_types: {_show(grant)} is not supported; use {', '.join(GRANT_TYPES)}")
    return grants


def _response_types(body: dict, grants: tuple[str, ...]) -> tuple[str, ...]:
    # RFC 7591's default ["code"] would contradict a client_credentials-only client (2.1),
    # so the default follows the grant types instead.
    if body.get("response_types") is None:
        return ("code",) if "authorization_code" in grants else ()
    types = _string_list(body, "response_types")
    for response_type in types:
        if response_type != "code":
            raise _bad(f"response_types: {_show(response_type)} is not supported; only 'code' is")
    if "authorization_code" in grants and "code" not in types:
        raise _bad("grant type 'authorization_code' needs response type 'code' (RFC 7591 2.1)")
    if "code" in types and "authorization_code" not in grants:
        raise _bad("response type 'code' needs grant type 'authorization_code' (RFC 7591 2.1)")
    return types


def _scope(body: dict) -> str | None:
    scope = _string(body, "scope")
    if scope is None:
        return None
    tokens = [token for token in scope.split(" ") if token]
    if not tokens:
        raise _bad("scope lists no scopes; omit it to allow any scope")
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise _bad(f"scope token {_show(token)} has characters RFC 6749 3.3 does not allow")
    return " ".join(tokens)


def _redirect_uris(body: dict, loopback_http_only: bool) -> tuple[str, ...]:
    uris = _string_list(body, "redirect_uris", error="invalid_redirect_uri")
    for index, uri in enumerate(body.get("redirect_uris") or ()):
        reason = _redirect_uri_problem(uri, loopback_http_only)
        if reason:
            raise RegistrationError("invalid_redirect_uri", f"redirect_uris[{index}] {_show(uri)} {reason}")
    return uris


def _redirect_uri_problem(uri: str, loopback_http_only: bool) -> str | None:
    if _has_bad_chars(uri):
        return "must not contain spaces or control characters"
    if "#" in uri:
        return "must not contain a fragment (RFC 6749 3.1.2)"
    scheme = uri.partition(":")[0] if ":" in uri else ""
    if not scheme:
        return "must be an absolute URI (RFC 6749 3.1.2)"
    if scheme.lower() in ("http", "https"):
        return _http_url_problem(uri, loopback_http_only)
    # Native apps use a private-use scheme named after a domain they own (RFC 8252 7.1);
    # requiring the dot also keeps out javascript:, data: and file:.
    if "." not in scheme or not _SCHEME.fullmatch(scheme):
        return "must use http(s) or a private-use scheme like com.example.app:/callback (RFC 8252 7.1)"
    if uri == scheme + ":":
        return "needs a path after the scheme, like com.example.app:/callback"
    return None


def _url(body: dict, name: str, *, loopback_http_only: bool = False) -> str | None:
    value = _string(body, name)
    reason = value is not None and _http_url_problem(value, loopback_http_only)
    if reason:
        raise _bad(f"{name} {_show(value)} {reason}")
    return value


def _http_url_problem(url: str, loopback_http_only: bool) -> str | None:
    """Why `url` is not an absolute http(s) URL we accept, or None."""
    if _has_bad_chars(url):
        return "must not contain spaces or control characters"
    if "#" in url:
        return "must not contain a fragment"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if loopback_http_only and parts.scheme.lower() == "http" and parts.hostname != "localhost":
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return None
        except ValueError:
            pass
        return "must use https (plain http is only allowed for localhost)"
    return None


def _has_bad_chars(text: str) -> bool:
    return any(ord(char) <= 0x20 or ord(char) == 0x7F for char in text)


def _jwks(value: object) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise _bad('jwks must be a JSON object like {"keys": [...]}')
    if not value["keys"]:
        raise _bad("jwks.keys is empty; register at least one public key")
    kids: set[str] = set()
    for index, jwk in enumerate(value["keys"]):
        _check_jwk(jwk, f"jwks.keys[{index}]")
        if jwk.get("kid") in kids:  # the token endpoint picks the key by kid, so it must be unique
            raise _bad(f"jwks.keys[{index}] repeats kid {_show(jwk['kid'])}; each key needs its own kid")
        if "kid" in jwk:
            kids.add(jwk["kid"])
    return {"keys": [_json_copy(jwk) for jwk in value["keys"]]}


def _check_jwk(jwk: object, where: str) -> None:
    if not isinstance(jwk, dict):
        raise _bad(f"{where} must be a JSON object, not {_json_type(jwk)}")
    private = [member for member in _PRIVATE_JWK_MEMBERS if member in jwk]
    if private:
        raise _bad(f"{where} contains private key member(s) {', '.join(private)}; register the public key only")
    kty, alg, crv = jwk.get("kty"), jwk.get("alg"), jwk.get("crv")
    if kty not in ("RSA", "EC"):
        raise _bad(f"{where} kty {_show(kty)} is not supported; use RSA or EC")
    for member in ("kid", "alg", "use"):
        if member in jwk and not _is_text(jwk[member]):
            raise _bad(f"{where} {member} must be a string, not {_json_type(jwk[member])}")
    if jwk.get("use", "sig") != "sig":
        raise _bad(f"{where} has use {_show(jwk['use'])}; client assertion keys must be 'sig'")
    if kty == "EC" and crv not in ("P-256", "P-384"):  # a tuple, not the dict: crv may be unhashable
        raise _bad(f"{where} curve {_show(crv)} is not supported; use P-256 or P-384")
    allowed = tuple(a for a in ASSERTION_ALGS if a.startswith("RS")) if kty == "RSA" else (_EC_CURVE_ALGS[crv],)
    if alg is not None and alg not in allowed:
        raise _bad(f"{where} alg {_show(alg)} cannot sign client assertions with this key; use {' or '.join(allowed)}")
    try:
        _json_copy(jwk)
        with warnings.catch_warnings():  # joserfc warns on small RSA keys; we refuse them below, clearer
            warnings.simplefilter("ignore")
            key = KeySet.import_key_set({"keys": [jwk]}).keys[0]
    except Exception:  # noqa: BLE001 - untrusted input into a parser with many failure types
        raise _bad(f"{where} is not a valid {kty} public key (RFC 7518 6)") from None
    if key.is_private:
        raise _bad(f"{where} is a private key; register the public key only")
    if kty == "RSA" and key.raw_value.key_size < _MIN_RSA_BITS:
        raise _bad(f"{where} RSA key has {key.raw_value.key_size} bits; at least {_MIN_RSA_BITS} are required")


class _NotJson(Exception):
    pass


def _json_copy(value, depth: int = 0):
    """A deep copy of a value the server's JSON encoder (orjson) can write, else _NotJson."""
    if depth > _MAX_DEPTH:
        raise _NotJson
    if value is None or isinstance(value, bool) or _is_text(value):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:  # orjson refuses wider integers
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list):
        return [_json_copy(item, depth + 1) for item in value]
    if isinstance(value, dict) and all(_is_text(key) for key in value):
        return {key: _json_copy(item, depth + 1) for key, item in value.items()}
    raise _NotJson


def _extra(body: dict) -> dict:
    for name in _EXTRA_BOOLS:
        _boolean(body, name)
    if problem := check_sim_error(body.get("sim_error")):  # mockehr's own: a simulated error for this client
        raise _bad(problem)
    known = (set(ClientMetadata.__dataclass_fields__) - {"extra"}) | _SERVER_OWNED
    extra = {}
    for name, value in body.items():
        if _is_text(name) and name not in known:
            try:
                extra[name] = _json_copy(value)
            except _NotJson:
                pass  # RFC 7591 2: a server ignores metadata it cannot use
    return extra


def _is_text(value: object) -> bool:
    # JSON "\\ud800" escapes decode to lone surrogates, which orjson refuses to write back.
    return isinstance(value, str) and not _SURROGATE.search(value)


def _show(value: object) -> str:
    """A short repr for messages; never recurses into client-sent structures."""
    if not _is_text(value):
        return f"({_json_type(value)})"
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def _json_type(value: object) -> str:
    for kind, name in ((type(None), "null"), (bool, "a boolean"), ((int, float), "a number"),
                       (str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
