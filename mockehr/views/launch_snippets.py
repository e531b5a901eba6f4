"""Ready-to-paste client configuration for the launcher (pure): what to set in the app,
fhirclient.js and Python fhirclient settings, and a backend-services token request.

Values go into the snippets through json.dumps, so they are valid JavaScript and
Python literals whatever the user typed (quotes, backslashes, non-ASCII).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mockehr.views.launch_options import LaunchOptions


@dataclass(frozen=True)
class Endpoints:
    fhir_base: str
    discovery: str
    authorize: str
    token: str
    registration: str


@dataclass(frozen=True)
class Registered:
    """A client the launcher just registered: its credentials are shown once."""

    client_id: str
    client_secret: str | None = None
    private_jwk: dict | None = None  # only when the launcher generated the key pair
    public_jwks: dict | None = None


@dataclass(frozen=True)
class Snippet:
    key: str  # stable id for the page (and tests)
    title: str
    language: str
    text: str


def endpoints(root: str) -> Endpoints:
    fhir_base = f"{root}/fhir"
    return Endpoints(fhir_base, f"{fhir_base}/.well-known/smart-configuration", f"{root}/auth/authorize",
                     f"{root}/auth/token", f"{root}/auth/register")


def settings_rows(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> list[tuple[str, str]]:
    """What to configure in the app, one (label, value) per row."""
    client_id = registered.client_id if registered else o.client_id
    rows = [("FHIR base URL (iss)", urls.fhir_base), ("SMART discovery", urls.discovery)]
    if o.launch_type == "backend":
        rows += [("Token endpoint", urls.token), ("Client id", client_id), ("Scope", o.scope)]
    else:
        rows += [("Authorize endpoint", urls.authorize), ("Token endpoint", urls.token), ("Client id", client_id),
                 ("Redirect URI", o.effective_redirect_uri), ("Scope", o.scope)]
    if registered and registered.client_secret:
        rows.append(("Client secret", registered.client_secret))
    return rows


def snippets(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> list[Snippet]:
    if o.launch_type == "backend":
        return [_backend_json(o, urls, registered), _backend_python(o, urls, registered)]
    return [_fhirclient_js(o, urls, registered), _fhirclient_py(o, urls, registered)]


def _client_id(o: LaunchOptions, registered: Registered | None) -> str:
    return registered.client_id if registered else o.client_id


def _fhirclient_js(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> Snippet:
    config: dict = {}
    if not o.mode.ehr:
        config["iss"] = urls.fhir_base  # an EHR launch gets iss from the launch URL instead
    config.update(clientId=_client_id(o, registered), scope=o.scope, redirectUri=o.effective_redirect_uri)
    extra = ""
    if o.client_type == "symmetric":
        config["clientSecret"] = registered.client_secret if registered and registered.client_secret else \
            "REGISTER-THE-CLIENT-TO-GET-A-SECRET"
    elif o.client_type == "asymmetric":
        if registered and registered.private_jwk:
            config["clientPrivateJwk"] = registered.private_jwk
        else:
            extra = "// Confidential asymmetric: add clientPrivateJwk (your private key as a JWK)\n"
    where = "the app's launch page (it receives ?launch=...&iss=...)" if o.mode.ehr else "the app's start page"
    text = (f"// fhirclient.js 2.x, on {where}\n{extra}"
            f"FHIR.oauth2.authorize({json.dumps(config, indent=2, ensure_ascii=False)});\n\n"
            "// and on the redirect page:\n"
            "FHIR.oauth2.ready().then(client => client.patient.read()).then(console.log);\n")
    return Snippet("fhirclient-js", "fhirclient.js", "javascript", text)


def _fhirclient_py(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> Snippet:
    settings: dict = {"app_id": _client_id(o, registered), "api_base": urls.fhir_base,
                      "redirect_uri": o.effective_redirect_uri, "scope": o.scope}
    if o.client_type == "symmetric":
        settings["app_secret"] = registered.client_secret if registered and registered.client_secret else \
            "REGISTER-THE-CLIENT-TO-GET-A-SECRET"
    lines = ["# Python fhirclient (pip install fhirclient)", "from fhirclient import client", "",
             f"settings = {json.dumps(settings, indent=4, ensure_ascii=False)}"]
    if o.mode.ehr:
        lines.append('settings["launch_token"] = launch  # the launch parameter your launch URL received')
    lines += ["smart = client.FHIRClient(settings=settings)",
              "print(smart.authorize_url)  # send the user's browser here",
              "# on the redirect: smart.handle_callback(the_full_redirect_url); smart.patient_id"]
    return Snippet("fhirclient-py", "Python fhirclient", "python", "\n".join(lines) + "\n")


def _backend_config(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> dict:
    client_id = registered.client_id if registered else "REGISTER-THE-CLIENT-TO-GET-AN-ID"
    config = {"fhir_base": urls.fhir_base, "token_url": urls.token, "client_id": client_id, "scope": o.scope}
    if registered and registered.client_secret:
        config["client_secret"] = registered.client_secret
    if registered and registered.private_jwk:
        config.update(alg=registered.private_jwk["alg"], kid=registered.private_jwk["kid"],
                      private_jwk=registered.private_jwk)
    return config


def _backend_json(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> Snippet:
    config = _backend_config(o, urls, registered)
    return Snippet("backend-json", "Client configuration (JSON)", "json",
                   json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _backend_python(o: LaunchOptions, urls: Endpoints, registered: Registered | None) -> Snippet:
    """A client_credentials request with a signed assertion (RFC 7523), runnable as it is once registered."""
    config = _backend_config(o, urls, registered)
    if o.client_type == "symmetric":
        text = ("# Backend services with a client secret (pip install requests)\nimport requests\n\n"
                f"CONFIG = {json.dumps(config, indent=4, ensure_ascii=False)}\n"
                "answer = requests.post(CONFIG[\"token_url\"], auth=(CONFIG[\"client_id\"], "
                "CONFIG.get(\"client_secret\", \"\")),\n"
                "                       data={\"grant_type\": \"client_credentials\", \"scope\": CONFIG[\"scope\"]})\n"
                "print(answer.json())\n")
        return Snippet("backend-python", "Python (requests)", "python", text)
    if "private_jwk" not in config:
        config.update(alg=o.key_alg, kid="YOUR-KEY-ID", private_jwk="YOUR PRIVATE KEY AS A JWK (a dict)")
    text = ("# SMART Backend Services: client_credentials with a signed JWT (pip install requests joserfc)\n"
            "import time, uuid\nimport requests\nfrom joserfc import jwt\nfrom joserfc.jwk import JWKRegistry\n\n"
            f"CONFIG = {json.dumps(config, indent=4, ensure_ascii=False)}\n"
            "key = JWKRegistry.import_key(CONFIG[\"private_jwk\"])\n"
            "now = int(time.time())\n"
            "assertion = jwt.encode({\"alg\": CONFIG[\"alg\"], \"kid\": CONFIG[\"kid\"], \"typ\": \"JWT\"},\n"
            "                       {\"iss\": CONFIG[\"client_id\"], \"sub\": CONFIG[\"client_id\"], "
            "\"aud\": CONFIG[\"token_url\"],\n"
            "                        \"exp\": now + 300, \"jti\": uuid.uuid4().hex}, key, algorithms=[CONFIG[\"alg\"]])\n"
            "answer = requests.post(CONFIG[\"token_url\"], data={\n"
            "    \"grant_type\": \"client_credentials\", \"scope\": CONFIG[\"scope\"],\n"
            "    \"client_assertion_type\": \"urn:ietf:params:oauth:client-assertion-type:jwt-bearer\",\n"
            "    \"client_assertion\": assertion})\n"
            "token = answer.json()\nprint(token)\n"
            "patients = requests.get(CONFIG[\"fhir_base\"] + \"/Patient?_count=3\",\n"
            "                        headers={\"Authorization\": \"Bearer \" + token[\"access_token\"]})\n"
            "print(patients.status_code, patients.json().get(\"total\"))\n")
    return Snippet("backend-python", "Python (requests + joserfc)", "python", text)
