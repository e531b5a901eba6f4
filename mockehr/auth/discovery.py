"""Discovery documents (pure): SMART configuration, OpenID configuration,
and the CapabilityStatement security block. Only what works is advertised."""

from __future__ import annotations

from mockehr.auth.dpop import ALGS as DPOP_SIGNING_ALGS

SMART_CAPABILITIES = [
    "launch-ehr", "launch-standalone", "authorize-post",
    "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient", "context-standalone-encounter",
    "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2", "sso-openid-connect",
]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ASSERTION_SIGNING_ALGS = ["RS384", "ES384", "RS256", "ES256"]
SCOPES = [
    "openid", "fhirUser", "profile", "email", "launch", "launch/patient", "launch/encounter",
    "offline_access", "online_access",
    "patient/*.cruds", "user/*.cruds", "system/*.cruds",
    "patient/*.read", "patient/*.write", "user/*.read", "user/*.write", "system/*.read", "system/*.write",
]


def endpoints(root: str) -> dict:
    auth = f"{root}/auth"
    return {
        "authorization_endpoint": f"{auth}/authorize",
        "token_endpoint": f"{auth}/token",
        "registration_endpoint": f"{auth}/register",
        "introspection_endpoint": f"{auth}/introspect",
        "revocation_endpoint": f"{auth}/revoke",
        "userinfo_endpoint": f"{auth}/userinfo",
        "jwks_uri": f"{auth}/jwks",
        "management_endpoint": f"{auth}/manage",
        "end_session_endpoint": f"{auth}/logout",
        "pushed_authorization_request_endpoint": f"{auth}/par",
    }


def _par_and_dpop(urls: dict, require_par: bool) -> dict:
    """PAR (RFC 9126 5) and DPoP (RFC 9449 5.1): mockehr.auth.par_http, dpop_http."""
    fields = {"pushed_authorization_request_endpoint": urls["pushed_authorization_request_endpoint"],
              "dpop_signing_alg_values_supported": list(DPOP_SIGNING_ALGS)}
    if require_par:  # serve --require-par
        fields["require_pushed_authorization_requests"] = True
    return fields


def smart_configuration(root: str, *, require_par: bool = False) -> dict:
    urls = endpoints(root)
    return {
        "issuer": f"{root}/fhir",
        "jwks_uri": urls["jwks_uri"],
        "authorization_endpoint": urls["authorization_endpoint"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint": urls["token_endpoint"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGS,
        "registration_endpoint": urls["registration_endpoint"],
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "introspection_endpoint": urls["introspection_endpoint"],
        "revocation_endpoint": urls["revocation_endpoint"],
        "userinfo_endpoint": urls["userinfo_endpoint"],
        "management_endpoint": urls["management_endpoint"],
        "capabilities": SMART_CAPABILITIES,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        **_par_and_dpop(urls, require_par),
    }


def openid_configuration(root: str, *, require_par: bool = False) -> dict:
    urls = endpoints(root)
    urls.pop("management_endpoint")  # a SMART field, not an OpenID one
    session = {  # sessions, logout, step-up: mockehr.auth.signin, logout_pages, stepup
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": ["urn:mockehr:loa:1", "urn:mockehr:loa:2"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }
    return {
        "issuer": f"{root}/fhir",
        **urls,
        "scopes_supported": ["openid", "fhirUser", "profile", "email", "launch", "launch/patient",
                             "launch/encounter", "offline_access", "online_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGS,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "acr", "amr",
                             "fhirUser", "name", "given_name", "family_name", "email", "npi", "roles",
                             "organization"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "claims_parameter_supported": False,
        **session,
        **_par_and_dpop(urls, require_par),
    }


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_security(root: str) -> dict:
    """CapabilityStatement.rest[0].security: the SMART service coding and the oauth-uris extension."""
    urls = endpoints(root)
    subs = [("authorize", urls["authorization_endpoint"]), ("token", urls["token_endpoint"]),
            ("register", urls["registration_endpoint"]), ("introspect", urls["introspection_endpoint"]),
            ("revoke", urls["revocation_endpoint"]), ("manage", urls["management_endpoint"])]
    return {
        "cors": True,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                     "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}],
        "extension": [{"url": OAUTH_URIS,
                       "extension": [{"url": name, "valueUri": uri} for name, uri in subs]}],
        "description": "SMART App Launch 2.2: EHR and standalone launch, PKCE S256, OpenID Connect, "
                       "refresh tokens, backend services (private_key_jwt).",
    }
