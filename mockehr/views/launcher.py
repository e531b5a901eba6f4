"""The launcher page at ROOT/: choose a launch, see its URLs and client configuration, launch it.

Thin routes over mockehr.views.launch_options and launch_snippets (pure). One form
drives everything: GET / with the options prefills the page (that URL is the deep
link), POST /launcher/launch mints an EHR launch (mockehr.admin.mint_launch: the
control API's validation, without its guard) and POST /launcher/register registers
a client with the registration endpoint's own validation.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request
from joserfc.jwk import ECKey, RSAKey

from mockehr.admin import AdminError, mint_launch
from mockehr.auth import consent
from mockehr.auth.registration import RegistrationError
from mockehr.auth.service import AuthService
from mockehr.directory import encounters_of
from mockehr.auth.sim_errors import SIM_ERRORS
from mockehr.pages import patient_rows
from mockehr.paths import launcher_dir
from mockehr.views import ehr_frame, launch_options as lo
from mockehr.views.launch_snippets import Registered, endpoints, settings_rows, snippets

ACTIONS = ("launch", "frame", "mint")
TABLE_LIMIT = 100  # patient table rows on the launcher; the patient browser has them all
NO_STORE = {"Cache-Control": "no-store"}  # pages that show a new secret or private key


def _auth() -> AuthService:
    return current_app.extensions["mockehr.auth"]


def _store():
    return current_app.extensions["mockehr.store"]


def _root() -> str:
    return current_app.config["MOCKEHR_ROOT_URL"]()


def defaults() -> lo.Defaults:
    store = _store()
    first = {rtype: min(store.index(rtype).ids, default="") for rtype in ("Patient", "Practitioner")}
    return lo.Defaults(patient=first["Patient"], practitioner=first["Practitioner"],
                       app_url=f"{_root()}/sample-app", client_id="mockehr-sample-app")


def parse(values) -> lo.Parsed:
    parsed = lo.parse_options(values.to_dict(flat=False), defaults())
    parsed.problems.extend(_store_problems(parsed.options))
    return parsed


def _store_problems(o: lo.LaunchOptions) -> list[str]:
    """Context ids the store does not have (mint_launch checks again, with the same words)."""
    if not o.mode.ehr:
        return []
    exists = _auth().directory.exists
    wanted = [("patient", "Patient", o.patient), ("encounter", "Encounter", o.encounter)]
    if o.launch_type == "ehr":
        wanted.append(("practitioner", "Practitioner", o.practitioner))
    return [f"{name} '{rid}' is not in the FHIR store" for name, rtype, rid in wanted if rid and not exists(rtype, rid)]


def new_key_pair(alg: str) -> tuple[dict, dict]:
    """(private JWK, public JWKS) for a backend or asymmetric client; the kid is the key's thumbprint."""
    parameters = {"alg": alg, "use": "sig"}
    if alg == "ES384":
        key = ECKey.generate_key("P-384", parameters=parameters, private=True)
    else:
        key = RSAKey.generate_key(2048, parameters=parameters, private=True)
    kid = key.thumbprint()
    return {**key.as_dict(private=True), "kid": kid}, {"keys": [{**key.as_dict(private=False), "kid": kid}]}


def build_blueprint() -> Blueprint:
    bp = Blueprint("launcher", __name__, template_folder=str(launcher_dir() / "templates"))
    bp.register_blueprint(ehr_frame.build_blueprint())  # ROOT/ehr, where "Open in the EHR frame" goes

    @bp.get("/")
    def page():
        return render(parse(request.args))

    @bp.post("/launcher/launch")
    def launch():
        parsed = parse(request.form)
        action = request.form.get("action", "launch")
        if action not in ACTIONS:
            parsed.problems.append(f"unknown action '{action}'; use one of {', '.join(ACTIONS)}")
        if parsed.problems:
            return render(parsed, status=400)
        o = parsed.options
        if not o.mode.ehr:
            if o.mode.user and action == "launch":
                return redirect(o.app_url, 303)  # a standalone app starts on its own page
            return render(parsed, 400, errors=[f"a {o.mode.label.lower()} has no launch to create; "
                                               "only EHR and portal launches do"])
        try:
            minted = mint_launch(lo.launch_body(o))
        except AdminError as exc:
            return render(parsed, 400, errors=[exc.message])
        if action == "launch":
            return redirect(minted["launch_url"], 303)
        if action == "frame":
            return redirect(f"{_root()}/ehr?{urlencode({'launch': minted['launch']})}", 303)
        return render(parsed, minted=minted)

    @bp.post("/launcher/register")
    def register():
        parsed = parse(request.form)
        if parsed.problems:
            return render(parsed, status=400)
        o = parsed.options
        private_jwk = public_jwks = None
        if o.client_type == "asymmetric" and not o.jwks_uri:
            if o.jwks:
                public_jwks = json.loads(o.jwks)
            else:
                private_jwk, public_jwks = new_key_pair(o.key_alg)
        try:
            client, secret, _ = _auth().register_client(lo.registration_body(o, public_jwks), via="launcher")
        except RegistrationError as exc:
            return render(parsed, 400, errors=[f"The registration was refused ({exc.error}): {exc.description}"])
        registered = Registered(client.client_id, secret, private_jwk, public_jwks)
        parsed.options = dataclasses.replace(o, client_id=client.client_id)
        response = render(parsed, 201, registered=registered)
        response.headers.update(NO_STORE)
        return response

    return bp


def render(parsed: lo.Parsed, status: int = 200, *, errors: list[str] | None = None, minted: dict | None = None,
           registered: Registered | None = None) -> Response:
    o = parsed.options
    root = _root()
    urls = endpoints(root)
    store = _store()
    people = consent.patient_rows(store.live("Patient"))
    ages = {row["id"]: row for row in patient_rows(store, date.today())}
    pickers = [{**row, "age": ages.get(row["id"], {}).get("age", "?")} for row in people]
    table = list(ages.values())
    values = {
        "active": "launcher", "o": o, "problems": parsed.problems, "notes": parsed.notes, "errors": errors or [],
        "minted": minted, "registered": registered, "root": root, "urls": urls,
        "modes": lo.MODES, "client_types": lo.CLIENT_TYPES, "presets": lo.PRESETS, "key_algs": lo.KEY_ALGS,
        "sim_errors": SIM_ERRORS, "relevant": lo.RELEVANT,
        "patients": pickers,
        "practitioners": consent.practitioner_rows(store.live("Practitioner"), store.live("PractitionerRole")),
        "encounters": _encounters(o.patient) if o.mode.ehr else [],
        "launch_url": _launch_url(o, urls.fhir_base, minted),
        "deep_link": f"{root}/?{lo.deep_link_query(o, defaults())}".rstrip("?"),
        "settings": settings_rows(o, urls, registered), "snippets": snippets(o, urls, registered),
        "auto_approve": _auth().auto_approve,
        "table": table[:TABLE_LIMIT], "table_total": len(table),
    }
    return Response(render_template("launcher.html", **values), status=status, mimetype="text/html")


def _launch_url(o: lo.LaunchOptions, iss: str, minted: dict | None) -> str | None:
    """The URL the app is opened with: a real one once minted, else what it will look like."""
    if minted:
        return minted.get("launch_url")
    if o.launch_type == "backend":
        return None
    if not o.mode.ehr:
        return o.app_url
    return None


def _encounters(patient_id: str | None) -> list[dict]:
    return consent.encounter_rows(encounters_of(_store(), patient_id))
