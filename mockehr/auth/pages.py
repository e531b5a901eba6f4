"""The interactive authorization pages: login, patient picker, encounter picker, consent.

Thin Flask routes over mockehr.auth.consent (the flow and the consent logic, pure).
Every form is CSRF-protected twice: a hidden per-request token (PendingAuthorization.csrf)
and a browser cookie; the first browser that opens a pending request is the only one that
may continue it. Any POST missing either, or not matching, gets the 400 page and no code.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request

from mockehr.auth import consent, logout_pages, signin, stepup
from mockehr.auth.authorize import granted_scope
from mockehr.auth.consent import CONSENT, ENCOUNTER, LOGIN, PATIENT, SECOND_FACTOR, STEP_PATHS, Progress
from mockehr.auth.model import PendingAuthorization, digest, new_secret
from mockehr.auth.routes import authorization_redirect
from mockehr.auth.scopes import parse_scopes
from mockehr.auth.service import AuthService
from mockehr.directory import encounters_of
from mockehr.paths import launcher_dir

COOKIE = "mockehr_browser"
LIST_LIMIT = 50  # rows a list shows before asking for a search
PAGE_HEADERS = {
    "Cache-Control": "no-store", "Pragma": "no-cache",  # the pages carry CSRF tokens
    # No clickjacking of login or consent from other sites; the simulated EHR frame (same origin) may frame them.
    "Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
}
EXPIRED = ("This sign-in request is unknown or has expired (they last 30 minutes and work once). "
           "Go back to the app and start again.")


class Refused(Exception):
    """A request the pages will not serve: shown as the 400 page, never redirected."""

    def __init__(self, message: str, heading: str = "This sign-in cannot continue"):
        super().__init__(message)
        self.message = message
        self.heading = heading


@dataclass
class Visit:
    pending: PendingAuthorization
    progress: Progress
    new_cookie: str | None = None
    opened: bool = False  # this GET opened the request (the session may have signed the user in)

    @property
    def req(self):
        return self.pending.request

    @property
    def ctx(self):
        return self.pending.context


class Bindings:
    """Per pending request: the browser it is bound to and the page flow's own state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: dict[str, Progress] = {}

    def get(self, request_id: str) -> Progress | None:
        return self._progress.get(request_id)

    def bind(self, request_id: str, browser_digest: str, live: set[str]) -> tuple[Progress, bool]:
        """(progress, created now); forgets requests that are no longer pending."""
        with self._lock:
            for old in [r for r in self._progress if r not in live]:
                del self._progress[old]
            if request_id in self._progress:
                return self._progress[request_id], False
            progress = self._progress[request_id] = Progress(browser_digest)
            return progress, True

    def forget(self, request_id: str | None) -> None:
        with self._lock:
            self._progress.pop(request_id or "", None)


def _auth() -> AuthService:
    return current_app.extensions["mockehr.auth"]


def _store():
    return current_app.extensions["mockehr.store"]


def _now() -> int:
    return int(_auth().clock())


def build_blueprint() -> Blueprint:
    folder = launcher_dir()
    bp = Blueprint("auth_pages", __name__, template_folder=str(folder / "templates"))
    bindings = Bindings()

    @bp.errorhandler(Refused)
    def refused(exc: Refused):
        return _render("auth_error.html", None, status=400, heading=exc.heading, message=exc.message,
                       detail="Nothing was sent to the app.")

    @bp.errorhandler(signin.SignedOut)
    def signed_out(exc: signin.SignedOut):
        return _render("auth_error.html", None, status=400, heading="You were signed out", message=str(exc),
                       detail="Nothing was sent to the app. Go back to the app and start again.")

    bp.after_app_request(signin.set_cookie)  # the session cookie, on whatever response signs a browser in or out
    logout_pages.install(bp, _render)

    # -- opening a request -------------------------------------------------
    def visit(for_post: bool) -> Visit:
        service = _auth()
        request_id = request.args.get("request") or request.form.get("request")
        pending = service.state.pending_request(request_id)
        if pending is None:
            bindings.forget(request_id)
            raise Refused(EXPIRED, "Sign-in request not found")
        cookie = request.cookies.get(COOKIE)
        if for_post:
            return _check_post(pending, bindings.get(pending.request_id), cookie)
        new_cookie = None
        if not cookie:
            cookie = new_cookie = new_secret(24)
        with service.state.lock:
            live = set(service.state.pending)
        progress, created = bindings.bind(pending.request_id, digest(cookie), live)
        if created:
            consent.start(pending.request, pending.context, _now())
            signin.on_open(service, pending.request, pending.context, progress)  # single sign-on, EHR launch user
            if pending.context.user and pending.request.launch is not None and pending.request.launch.user:
                service.audit.record("login", client=pending.request.client.client_id, user=pending.context.user,
                                     method="ehr-launch", reason="the EHR launch names the user: no login page")
        elif not hmac.compare_digest(progress.browser, digest(cookie)):
            raise Refused("This sign-in was started in another browser (or its cookies were cleared). "
                          "Go back to the app and start again from this browser.")
        return Visit(pending, progress, new_cookie, opened=created)

    def _check_post(pending: PendingAuthorization, progress: Progress | None, cookie: str | None) -> Visit:
        problem = None
        if not cookie:
            problem = "the browser sent no sign-in cookie (cookies blocked, or the form was posted from elsewhere)"
        elif progress is None or not hmac.compare_digest(progress.browser, digest(cookie)):
            problem = "the sign-in cookie does not belong to this request"
        elif not request.form.get("csrf_token"):
            problem = "the form carries no CSRF token"
        elif not hmac.compare_digest(request.form["csrf_token"], pending.csrf):
            problem = "the form's CSRF token does not match this request"
        if problem:
            _auth().audit.record("login" if request.path == STEP_PATHS[LOGIN] else "consent", "failure",
                                 client=pending.request.client.client_id, reason=f"form refused: {problem}")
            raise Refused(f"The form was refused: {problem}. Reload the page and try again, or go back to "
                          "the app and start over.", "Form refused (CSRF protection)")
        return Visit(pending, progress)

    def go(v: Visit, step: str, status: int = 303) -> Response:
        return _with_cookie(redirect(step_url(v, step), status), v)

    def step_url(v: Visit, step: str, **query) -> str:
        return f"{_auth().root_url()}{STEP_PATHS[step]}?{urlencode({'request': v.pending.request_id, **query})}"

    def show(v: Visit, step: str, template: str, status: int = 200, **values) -> Response:
        values.update(app=_app_facts(v), steps=consent.progress_bar(step, v.req, v.ctx, v.progress),
                      request_id=v.pending.request_id, csrf=v.pending.csrf, action=step_url(v, step),
                      back={s: step_url(v, s) for s in STEP_PATHS})
        return _with_cookie(_render(template, v, status, **values), v)

    def landing(step: str) -> tuple[Visit, Response | None]:
        v = visit(for_post=False)
        target = consent.page_to_show(step, v.req, v.ctx, v.progress)
        return v, (go(v, target, 302) if target != step else None)

    # -- 1. login ----------------------------------------------------------
    @bp.get("/auth/login")
    def login_page():
        v, elsewhere = landing(LOGIN)
        if elsewhere:
            return elsewhere
        if v.opened and consent.done(LOGIN, v.ctx, v.progress, v.req):  # single sign-on: no login page
            return go(v, consent.next_step(v.req, v.ctx, v.progress), 302)
        q = request.args.get("q", "").strip()
        store = _store()
        clinicians = consent.practitioner_rows(store.live("Practitioner"), store.live("PractitionerRole"))
        patients = consent.patient_rows(store.live("Patient"))
        hinted = _hinted_row(v.req.login_hint, clinicians + patients)
        chosen = v.ctx.user
        shown_c = [r for r in clinicians if consent.matches(r, q, ("name", "id", "role"))]
        shown_p = [r for r in patients if consent.matches(r, q)]
        return show(v, LOGIN, "login.html", q=q, hinted=hinted, chosen=chosen, notice=v.progress.notice,
                    clinicians=shown_c[:LIST_LIMIT], clinicians_total=len(shown_c),
                    patients=shown_p[:LIST_LIMIT], patients_total=len(shown_p), limit=LIST_LIMIT)

    @bp.post("/auth/login")
    def login_choose():
        v = visit(for_post=True)
        if not consent.applies(LOGIN, v.req, v.ctx):
            return go(v, consent.next_step(v.req, v.ctx, v.progress))
        user = request.form.get("user")
        parsed = consent.parse_user(user)
        if parsed is None or not _auth().directory.exists(*parsed):
            raise Refused(f"'{user or ''}' is not a practitioner or patient of this EHR. Go back and choose "
                          "someone from the list.", "Unknown user")
        consent.choose_user(v.req, v.ctx, v.progress, user, _now())
        signin.signed_in(_auth(), v.req, v.ctx, user)
        v.progress.notice = None
        _auth().audit.record("login", client=v.req.client.client_id, user=user, method="login page", sid=v.ctx.sid)
        return go(v, consent.next_step(v.req, v.ctx, v.progress))

    # -- 1b. second factor (step-up) -------------------------------------------
    def second_factor_view(v: Visit, status: int = 200, problem: str | None = None) -> Response:
        requirements = v.req.oidc
        why = requirements.step_up if requirements is not None and requirements.step_up else None
        return show(v, SECOND_FACTOR, "second_factor.html", status, user=_person(v.ctx.user), problem=problem,
                    code=stepup.DEMO_CODE, fault=why, acr=stepup.LOA2)

    @bp.get("/auth/second-factor")
    def second_factor_page():
        v, elsewhere = landing(SECOND_FACTOR)
        if elsewhere:
            return elsewhere
        return second_factor_view(v)

    @bp.post("/auth/second-factor")
    def second_factor_check():
        v = visit(for_post=True)
        if consent.page_to_show(SECOND_FACTOR, v.req, v.ctx, v.progress) != SECOND_FACTOR:
            return go(v, consent.next_step(v.req, v.ctx, v.progress))
        if not stepup.check_code(request.form.get("otp")):
            _auth().audit.record("step-up", "failure", client=v.req.client.client_id, user=v.ctx.user, sid=v.ctx.sid,
                                 method="second-factor page", reason="the one-time code was wrong")
            return second_factor_view(v, 400, "That code is not right. Enter the 6 digits shown below.")
        signin.stepped_up(_auth(), v.req, v.ctx)
        return go(v, consent.next_step(v.req, v.ctx, v.progress))

    # -- 2. patient picker -------------------------------------------------
    @bp.get("/auth/pick-patient")
    def patient_page():
        v, elsewhere = landing(PATIENT)
        if elsewhere:
            return elsewhere
        q = request.args.get("q", "").strip()
        rows = [r for r in consent.patient_rows(_store().live("Patient"))
                if consent.matches(r, q, ("name", "id", "mrn"))]
        return show(v, PATIENT, "pick_patient.html", q=q, patients=rows[:LIST_LIMIT], total=len(rows),
                    limit=LIST_LIMIT, chosen=v.ctx.patient, user=_person(v.ctx.user))

    @bp.post("/auth/pick-patient")
    def patient_choose():
        v = visit(for_post=True)
        if consent.page_to_show(PATIENT, v.req, v.ctx, v.progress) != PATIENT:
            return go(v, consent.next_step(v.req, v.ctx, v.progress))
        patient = request.form.get("patient", "")
        if not patient or "/" in patient or not _auth().directory.exists("Patient", patient):
            raise Refused(f"There is no patient '{patient}'. Go back and choose one from the list.", "Unknown patient")
        consent.choose_patient(v.ctx, v.progress, patient)
        return go(v, consent.next_step(v.req, v.ctx, v.progress))

    # -- 3. encounter picker -----------------------------------------------
    @bp.get("/auth/pick-encounter")
    def encounter_page():
        v, elsewhere = landing(ENCOUNTER)
        if elsewhere:
            return elsewhere
        return show(v, ENCOUNTER, "pick_encounter.html", encounters=_encounters(v.ctx.patient),
                    patient=_person(f"Patient/{v.ctx.patient}"), chosen=v.ctx.encounter)

    @bp.post("/auth/pick-encounter")
    def encounter_choose():
        v = visit(for_post=True)
        if consent.page_to_show(ENCOUNTER, v.req, v.ctx, v.progress) != ENCOUNTER:
            return go(v, consent.next_step(v.req, v.ctx, v.progress))
        encounter = request.form.get("encounter") or None
        if encounter is not None and encounter not in {r["id"] for r in _encounters(v.ctx.patient)}:
            raise Refused(f"Encounter '{encounter}' is not one of this patient's encounters.", "Unknown encounter")
        consent.choose_encounter(v.ctx, v.progress, encounter)
        return go(v, consent.next_step(v.req, v.ctx, v.progress))

    # -- 4. consent --------------------------------------------------------
    def consent_view(v: Visit, status: int = 200, problem: str | None = None) -> Response:
        req, ctx = v.req, v.ctx
        encounter = next((r for r in _encounters(ctx.patient) if r["id"] == ctx.encounter), None) \
            if ctx.encounter and ctx.patient else None
        return show(v, CONSENT, "consent.html", status, items=consent.consent_items(req, ctx), problem=problem,
                    user=_person(ctx.user), patient=_person(f"Patient/{ctx.patient}") if ctx.patient else None,
                    encounter=encounter, encounter_id=ctx.encounter, ehr_launch=req.is_ehr_launch,
                    flags=req.flags)

    @bp.get("/auth/consent")
    def consent_page():
        v, elsewhere = landing(CONSENT)
        if elsewhere:
            return elsewhere
        if v.req.launch is not None and v.req.launch.skip_consent:  # the EHR consented for the user
            scope = granted_scope(v.req, v.ctx)
            if scope:
                return approve(v, scope, decision="skipped: the launch says skip_consent")
        scope = granted_scope(v.req, v.ctx)
        if scope and signin.remembered(_auth(), v.req, v.ctx, scope):  # same app, same patient, same session
            return approve(v, scope, decision="skipped: approved earlier in this sign-in session")
        return consent_view(v)

    @bp.post("/auth/consent")
    def consent_decide():
        v = visit(for_post=True)
        service, req, ctx = _auth(), v.req, v.ctx
        target = consent.page_to_show(CONSENT, req, ctx, v.progress)
        if target != CONSENT:
            return go(v, target)
        where = service.where()
        who = {"client": req.client.client_id, "user": ctx.user, "patient": ctx.patient, "encounter": ctx.encounter,
               "launch": "ehr" if req.is_ehr_launch else "standalone"}
        if request.form.get("decision") == "deny":
            finish(v)
            service.audit.record("consent", "failure", **who, decision="denied", requested=req.scopes.text())
            return authorization_redirect(req.redirect_uri, req.state, where.issuer, error="access_denied",
                                          error_description="the user denied the request")
        if request.form.get("decision") != "approve":
            return consent_view(v, 400, "Choose Allow access or Deny.")
        approved = consent.approved_scope_text(req.scopes, request.form.getlist("scope"))
        scope = granted_scope(req, ctx, parse_scopes(approved)) if approved else ""
        if not scope:
            return consent_view(v, 400, "Nothing was ticked that this app could be given. Tick at least one "
                                        "permission, or choose Deny.")
        return approve(v, scope, decision="approved",
                       refused=" ".join(consent.refused_scopes(req.scopes, approved)) or None)

    def approve(v: Visit, scope: str, **decision) -> Response:
        service, req, ctx = _auth(), v.req, v.ctx
        if ctx.sid:
            signin.live_session(service, ctx)  # SignedOut: logged out in another tab meanwhile
        code = service.issue_code(req, ctx, scope)
        if decision.get("decision") == "approved":
            signin.remember(service, req, ctx, scope)
        finish(v)
        service.audit.record("consent", client=req.client.client_id, user=ctx.user, patient=ctx.patient,
                             encounter=ctx.encounter, launch="ehr" if req.is_ehr_launch else "standalone",
                             scope=scope, **decision)
        return authorization_redirect(req.redirect_uri, req.state, service.where().issuer, code=code)

    def finish(v: Visit) -> None:
        _auth().state.finish_pending(v.pending.request_id)
        bindings.forget(v.pending.request_id)

    return bp


# -- helpers -----------------------------------------------------------------
def _render(template: str, v: Visit | None, status: int = 200, **values) -> Response:
    values.setdefault("app", _app_facts(v) if v else None)
    values.setdefault("steps", None)
    response = Response(render_template(template, **values), status=status, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


def _with_cookie(response: Response, v: Visit) -> Response:
    response.headers.update(PAGE_HEADERS)
    if v.new_cookie:
        response.set_cookie(COOKIE, v.new_cookie, path="/auth", httponly=True, samesite="Lax",
                            secure=request.is_secure)
    return response


def _app_facts(v: Visit) -> dict:
    client = v.req.client
    name = getattr(client.metadata, "client_name", None) or client.client_id
    return {"name": name, "client_id": client.client_id, "host": consent.redirect_host(v.req.redirect_uri),
            "auto_registered": client.auto_registered}


def _hinted_row(hint: str | None, rows: list[dict]) -> dict | None:
    return next((r for r in rows if r["ref"] == hint), None) if hint else None


def _person(ref: str | None) -> dict | None:
    """{"ref", "name", ...} for a Practitioner/Patient reference, for the pages' headings."""
    parsed = consent.parse_user(ref)
    if parsed is None:
        return None
    version = _store().read(*parsed)
    if version is None or version.resource is None:
        return {"ref": ref, "id": parsed[1], "name": ref, "kind": parsed[0]}
    row = consent.patient_rows([version.resource])[0] if parsed[0] == "Patient" else \
        consent.practitioner_rows([version.resource], [])[0]
    return {**row, "kind": parsed[0]}


def _encounters(patient_id: str | None) -> list[dict]:
    return consent.encounter_rows(encounters_of(_store(), patient_id))
