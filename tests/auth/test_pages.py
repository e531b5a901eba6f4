"""The interactive authorization pages (login, pickers, consent), driven over real HTTP the way an
HTML form client would: a cookie-keeping session, forms parsed with the stdlib html.parser."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import requests

from mockehr.auth import consent
from mockehr.auth.authorize import AuthorizeRequest
from mockehr.auth.model import AuthContext, Launch
from mockehr.auth.scopes import parse_scopes
from mockehr.config import Settings
from mockehr.server import ServerThread

REDIRECT = "http://app.example/callback"
LAB = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
VITALS = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
DOCTOR = "Practitioner/pr-okafor"
CHILD = "p00003-child-asthma"
ADULT = "p00001-diabetes-htn"  # laboratory and vital-signs observations


# -- an HTML form client -------------------------------------------------------
@dataclass
class Form:
    action: str
    method: str
    fields: list[dict] = field(default_factory=list)  # inputs and buttons, in document order

    def buttons(self, name: str | None = None) -> list[dict]:
        return [f for f in self.fields if f["tag"] == "button" and (name is None or f.get("name") == name)]

    def data(self, button: dict | None, ticks: dict[str, bool] | None = None) -> list[tuple[str, str]]:
        """What a browser sends: hidden/text inputs, ticked checkboxes (ticks override by value), the button."""
        ticks = ticks or {}
        out = []
        for f in self.fields:
            if f["tag"] != "input" or "disabled" in f or not f.get("name"):
                continue
            if f.get("type") == "checkbox":
                if ticks.get(f.get("value"), "checked" in f):
                    out.append((f["name"], f.get("value", "on")))
            elif f.get("type") not in ("submit", "button"):
                out.append((f["name"], f.get("value", "")))
        if button is not None and button.get("name"):
            out.append((button["name"], button.get("value", "")))
        return out


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._button: dict | None = None
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(attrs.get("action", ""), attrs.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None:
            entry = {"tag": tag, **attrs, "text": ""}
            self._form.fields.append(entry)
            if tag == "button":
                self._button = entry

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._button = None

    def handle_data(self, data):
        self.text_parts.append(data)
        if self._button is not None:
            self._button["text"] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def post_form(self, button_name: str) -> Form:
        return next(f for f in self.forms if f.method == "post" and f.buttons(button_name))


@dataclass
class Flow:
    """One browser going through the pages for one authorization request."""

    root: str
    session: requests.Session
    verifier: str
    state: str
    response: requests.Response | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.response.url).path

    @property
    def page(self) -> Page:
        return Page(self.response.text)

    @property
    def request_id(self) -> str:
        return parse_qs(urlsplit(self.response.url).query)["request"][0]

    def choose(self, name: str, value: str, ticks: dict[str, bool] | None = None,
               data_override=None) -> requests.Response:
        """Click the button name=value; follow our own redirects; stop at the app's redirect_uri."""
        form = self.page.post_form(name)
        button = next((b for b in form.buttons(name) if b.get("value") == value), None)
        assert button is not None, f"no button {name}={value} on {self.path}: " \
                                   f"{[b.get('value') for b in form.buttons(name)]}"
        data = form.data(button, ticks) if data_override is None else data_override(form.data(button, ticks))
        answer = self.session.post(form.action, data=data, allow_redirects=False, timeout=30)
        return self._follow(answer)

    def _follow(self, answer: requests.Response) -> requests.Response:
        while answer.status_code in (302, 303) and answer.headers["Location"].startswith(self.root):
            answer = self.session.get(answer.headers["Location"], allow_redirects=False, timeout=30)
        self.response = answer
        return answer

    def redirect_params(self) -> dict:
        assert self.response.status_code == 302, self.response.text[:500]
        location = self.response.headers["Location"]
        assert location.startswith(REDIRECT + "?"), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str, client_id: str) -> dict:
        answer = requests.post(f"{self.root}/auth/token", timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
            "code_verifier": self.verifier})
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0)) as running:
        yield running


@pytest.fixture
def root(server) -> str:
    return server.url


def begin(root: str, scope: str, client_id: str = "pages-test", session: requests.Session | None = None,
          **extra) -> Flow:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(8)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
              "aud": f"{root}/fhir", "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
              **extra}
    flow = Flow(root, session or requests.Session(), verifier, state)
    first = flow.session.get(f"{root}/auth/authorize?{urlencode(params)}", allow_redirects=False, timeout=30)
    assert first.status_code == 302 and "/auth/login?request=" in first.headers["Location"], first.text[:500]
    flow._follow(first)
    assert flow.response.status_code == 200, flow.response.text[:500]
    return flow


def approve(flow: Flow, ticks: dict[str, bool] | None = None) -> dict:
    assert flow.path == "/auth/consent", flow.path
    flow.choose("decision", "approve", ticks)
    params = flow.redirect_params()
    assert params["state"] == flow.state and params["iss"] == f"{flow.root}/fhir"
    return params


def fhir(root: str, token: str, path: str) -> requests.Response:
    return requests.get(f"{root}/fhir/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def audit(root: str) -> list[dict]:
    return requests.get(f"{root}/admin/audit", timeout=30).json()


# -- whole flows ---------------------------------------------------------------
def test_standalone_practitioner_login_patient_encounter_consent_token(root):
    flow = begin(root, "launch/patient launch/encounter openid fhirUser patient/*.rs", client_id="standalone-doc")
    assert flow.path == "/auth/login"
    assert "Sign in" in flow.page.text and "Choose patient" in flow.page.text and "Allow access" in flow.page.text
    flow.choose("user", DOCTOR)
    assert flow.path == "/auth/pick-patient"
    flow.choose("patient", CHILD)
    assert flow.path == "/auth/pick-encounter"
    encounters = [b["value"] for b in flow.page.post_form("encounter").buttons("encounter") if b["value"]]
    assert len(encounters) > 3 and all(e.startswith(CHILD) for e in encounters)
    dates = [b["text"].split()[0] for b in flow.page.post_form("encounter").buttons("encounter") if b["value"]]
    assert dates == sorted(dates, reverse=True), "encounters are listed newest first"
    chosen = encounters[2]  # not the newest: the choice must be the one in the token
    flow.choose("encounter", chosen)
    assert flow.path == "/auth/consent"
    assert "Willie Daniel Romero" in flow.page.text and "Chidi Okafor" in flow.page.text
    params = approve(flow)
    token = flow.exchange(params["code"], "standalone-doc")
    assert token["patient"] == CHILD and token["encounter"] == chosen
    assert set(token["scope"].split()) == {"launch/patient", "launch/encounter", "openid", "fhirUser", "patient/*.rs"}
    assert "id_token" in token
    assert fhir(root, token["access_token"], f"Patient/{CHILD}").status_code == 200
    events = audit(root)
    login = [e for e in events if e["type"] == "login" and e.get("client") == "standalone-doc"]
    decided = [e for e in events if e["type"] == "consent" and e.get("client") == "standalone-doc"]
    assert login[-1]["user"] == DOCTOR and login[-1]["method"] == "login page"
    assert decided[-1]["decision"] == "approved" and decided[-1]["patient"] == CHILD
    assert decided[-1]["encounter"] == chosen
    assert not any(params["code"] in str(e) for e in events), "the code must not appear in the audit trail"


def test_standalone_patient_user_needs_no_picker(root):
    flow = begin(root, "launch/patient openid fhirUser patient/*.rs")
    flow.choose("user", "Patient/p00014-teen")
    assert flow.path == "/auth/consent"
    token = flow.exchange(approve(flow)["code"], "pages-test")
    assert token["patient"] == "p00014-teen" and "encounter" not in token


def test_ehr_launch_skips_login_and_pickers(root):
    launch = requests.post(f"{root}/admin/launches", timeout=30, json={
        "patient": ADULT, "user": "Practitioner/pr-brennan", "encounter": f"{ADULT}-enc-001",
        "smart_style_url": True, "need_patient_banner": False, "intent": "reconcile-medications"}).json()
    flow = begin(root, "launch launch/encounter openid fhirUser user/Observation.rs patient/Patient.rs",
                 client_id="ehr-app", launch=launch["launch"])
    assert flow.path == "/auth/consent", "the EHR already knows the user, the patient and the encounter"
    assert "Owen Brennan" in flow.page.text and "James Thomas Mckinney" in flow.page.text
    token = flow.exchange(approve(flow)["code"], "ehr-app")
    assert token["patient"] == ADULT and token["encounter"] == f"{ADULT}-enc-001"
    assert token["need_patient_banner"] is False and token["intent"] == "reconcile-medications"
    assert token["smart_style_url"].endswith("/auth/smart-style.json")
    assert "launch" in token["scope"].split()
    login = [e for e in audit(root) if e["type"] == "login" and e.get("client") == "ehr-app"]
    assert login[-1]["method"] == "ehr-launch" and login[-1]["user"] == "Practitioner/pr-brennan"


def test_ehr_launch_without_a_user_shows_the_login_page(root):
    launch = requests.post(f"{root}/admin/launches", timeout=30, json={"patient": ADULT}).json()
    flow = begin(root, "launch openid fhirUser patient/*.rs", launch=launch["launch"])
    assert flow.path == "/auth/login"
    flow.choose("user", "Practitioner/pr-patel")
    assert flow.path == "/auth/consent", "the launch fixes the patient: no picker"
    token = flow.exchange(approve(flow)["code"], "pages-test")
    assert token["patient"] == ADULT


def test_login_hint_is_preselected_not_applied(root):
    flow = begin(root, "launch/patient patient/*.rs", login_hint="Practitioner/pr-nguyen")
    assert flow.path == "/auth/login"
    first = flow.page.post_form("user").buttons("user")[0]
    assert first["value"] == "Practitioner/pr-nguyen" and "autofocus" in first
    assert "Suggested by the app" in flow.page.text


def test_skipping_the_encounter(root):
    flow = begin(root, "launch/patient launch/encounter patient/*.rs")
    flow.choose("user", "Patient/p00023-healthy")
    assert flow.path == "/auth/pick-encounter", "a patient user still picks an encounter"
    flow.choose("encounter", "")
    token = flow.exchange(approve(flow)["code"], "pages-test")
    assert "encounter" not in token and "launch/encounter" not in token["scope"].split()


def test_going_back_to_login_forgets_the_earlier_choices(root):
    flow = begin(root, "launch/patient launch/encounter patient/*.rs")
    login_url = flow.response.url
    flow.choose("user", DOCTOR)
    flow.choose("patient", CHILD)
    flow._follow(flow.session.get(login_url, allow_redirects=False, timeout=30))
    assert flow.path == "/auth/login"
    flow.choose("user", "Patient/p00014-teen")
    assert flow.path == "/auth/pick-encounter"
    assert all(b["value"].startswith("p00014-teen") for b in flow.page.post_form("encounter").buttons("encounter")
               if b["value"])


def test_pages_out_of_order_redirect_to_the_step_needed(root):
    flow = begin(root, "launch/patient patient/*.rs")
    rid = flow.request_id
    for path in ("/auth/consent", "/auth/pick-patient", "/auth/pick-encounter"):
        answer = flow.session.get(f"{root}{path}?request={rid}", allow_redirects=False, timeout=30)
        assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).path == "/auth/login"


# -- consent -------------------------------------------------------------------
def test_unticking_a_scope_narrows_the_grant(root):
    flow = begin(root, "launch/patient openid fhirUser patient/Patient.rs patient/Condition.rs "
                       "patient/MedicationRequest.rs")
    flow.choose("user", f"Patient/{ADULT}")
    boxes = [f["value"] for f in flow.page.post_form("decision").fields if f.get("type") == "checkbox"
             and "checked" in f]
    assert "patient/Condition.rs" in boxes and "launch/patient" in boxes
    token = flow.exchange(approve(flow, {"patient/Condition.rs": False})["code"], "pages-test")
    assert "patient/Condition.rs" not in token["scope"].split()
    assert {"patient/Patient.rs", "patient/MedicationRequest.rs"} <= set(token["scope"].split())
    assert fhir(root, token["access_token"], f"Condition?patient={ADULT}").status_code == 403
    assert fhir(root, token["access_token"], f"MedicationRequest?patient={ADULT}").status_code == 200
    decided = [e for e in audit(root) if e["type"] == "consent"][-1]
    assert decided["refused"] == "patient/Condition.rs"


def test_granular_consent_grants_only_laboratory_observations(root):
    flow = begin(root, "launch/patient patient/Patient.rs patient/Observation.rs")
    flow.choose("user", f"Patient/{ADULT}")
    offered = {f["value"] for f in flow.page.post_form("decision").fields if f.get("type") == "checkbox"}
    assert {"patient/Observation.rs", LAB, VITALS} <= offered
    params = approve(flow, {"patient/Observation.rs": False, LAB: True})
    token = flow.exchange(params["code"], "pages-test")
    scopes = token["scope"].split()
    assert LAB in scopes and "patient/Observation.rs" not in scopes and VITALS not in scopes
    bundle = fhir(root, token["access_token"], f"Observation?patient={ADULT}&_count=200").json()
    entries = [e["resource"] for e in bundle.get("entry", [])]
    assert entries, bundle
    codes = [{c["code"] for cat in r.get("category", []) for c in cat.get("coding", [])} for r in entries]
    assert all("laboratory" in c for c in codes)
    vitals_id = _an_observation(root, ADULT, "vital-signs")
    refused = fhir(root, token["access_token"], f"Observation/{vitals_id}")
    assert refused.status_code == 403, refused.text
    lab_id = _an_observation(root, ADULT, "laboratory")
    assert fhir(root, token["access_token"], f"Observation/{lab_id}").status_code == 200


def _an_observation(root: str, patient: str, category: str) -> str:
    from tests.helpers import system_token

    token = system_token(root, "system/Observation.rs")
    bundle = fhir(root, token, f"Observation?patient={patient}&category={category}&_count=1").json()
    return bundle["entry"][0]["resource"]["id"]


def test_ticking_nothing_is_not_an_approval(root):
    flow = begin(root, "launch/patient patient/Patient.rs")
    flow.choose("user", f"Patient/{ADULT}")
    answer = flow.choose("decision", "approve", {"launch/patient": False, "patient/Patient.rs": False})
    assert answer.status_code == 400 and "Tick at least one" in answer.text
    assert "Location" not in answer.headers
    token = flow.exchange(approve(flow)["code"], "pages-test")  # still pending: try again
    assert token["patient"] == ADULT


def test_consent_cannot_widen_the_request(root):
    flow = begin(root, "launch/patient patient/Patient.rs")
    flow.choose("user", f"Patient/{ADULT}")
    flow.choose("decision", "approve", data_override=lambda data: data + [("scope", "patient/*.cruds"),
                                                                           ("scope", "user/*.cruds")])
    token = flow.exchange(flow.redirect_params()["code"], "pages-test")
    assert set(token["scope"].split()) == {"launch/patient", "patient/Patient.rs"}


def test_deny_sends_access_denied_with_state(root):
    flow = begin(root, "launch/patient patient/*.rs")
    flow.choose("user", f"Patient/{ADULT}")
    rid = flow.request_id
    flow.choose("decision", "deny")
    params = flow.redirect_params()
    assert params["error"] == "access_denied" and params["state"] == flow.state and "code" not in params
    assert params["iss"] == f"{root}/fhir"
    again = flow.session.get(f"{root}/auth/consent?request={rid}", timeout=30)
    assert again.status_code == 400, "a finished request cannot be reused"
    decided = [e for e in audit(root) if e["type"] == "consent"][-1]
    assert decided["decision"] == "denied" and decided["outcome"] == "failure"


# -- CSRF and request ids --------------------------------------------------------
def _at_consent(root: str) -> Flow:
    flow = begin(root, "launch/patient patient/*.rs")
    flow.choose("user", f"Patient/{ADULT}")
    assert flow.path == "/auth/consent"
    return flow


@pytest.mark.parametrize("tamper", ["missing token", "wrong token", "missing cookie", "other browser's cookie"])
def test_csrf_protection_refuses_bad_posts(root, tamper):
    flow = _at_consent(root)
    form = flow.page.post_form("decision")
    data = form.data(form.buttons("decision")[0])
    assert ("decision", "approve") in data
    session = flow.session
    if tamper == "missing token":
        data = [(k, v) for k, v in data if k != "csrf_token"]
    elif tamper == "wrong token":
        data = [(k, "x" + v if k == "csrf_token" else v) for k, v in data]
    elif tamper == "missing cookie":
        session = requests.Session()
    else:
        session = requests.Session()
        session.get(f"{root}/auth/login?request=nope", timeout=30)  # no cookie for unknown requests...
        other = begin(root, "launch/patient patient/*.rs", session=session)  # ...so get one of its own
        assert other.session.cookies.get("mockehr_browser")
    answer = session.post(form.action, data=data, allow_redirects=False, timeout=30)
    assert answer.status_code == 400, answer.text[:300]
    assert "Location" not in answer.headers and "text/html" in answer.headers["Content-Type"]
    assert "Form refused" in answer.text
    # The request is still there for the real browser, which can finish it.
    flow._follow(flow.session.get(f"{root}/auth/consent?request={flow.request_id}", allow_redirects=False,
                                  timeout=30))
    assert "code" in approve(flow)


def test_csrf_protection_on_the_login_form(root):
    flow = begin(root, "launch/patient patient/*.rs")
    form = flow.page.post_form("user")
    data = [(k, v) for k, v in form.data(form.buttons("user")[0]) if k != "csrf_token"]
    answer = flow.session.post(form.action, data=data, allow_redirects=False, timeout=30)
    assert answer.status_code == 400
    assert flow.session.get(flow.response.url, timeout=30).url.endswith(flow.request_id), "still at login"


def test_the_request_is_bound_to_the_first_browser(root):
    flow = begin(root, "launch/patient patient/*.rs")
    stranger = requests.get(flow.response.url, timeout=30)
    assert stranger.status_code == 400 and "another browser" in stranger.text


def test_unknown_request_id_is_a_400_page(root):
    for path in ("/auth/login", "/auth/pick-patient", "/auth/pick-encounter", "/auth/consent"):
        answer = requests.get(f"{root}{path}?request=no-such-request", allow_redirects=False, timeout=30)
        assert answer.status_code == 400 and "unknown or has expired" in answer.text
        assert "text/html" in answer.headers["Content-Type"]
    assert requests.get(f"{root}/auth/login", allow_redirects=False, timeout=30).status_code == 400
    posted = requests.post(f"{root}/auth/consent?request=no-such-request", data={"decision": "approve"},
                           allow_redirects=False, timeout=30)
    assert posted.status_code == 400 and "Location" not in posted.headers


def test_expired_request_is_a_400_page(server, root):
    flow = _at_consent(root)
    server.app.extensions["mockehr.auth"].state.pending[flow.request_id].expires = 0
    answer = flow.choose("decision", "approve")
    assert answer.status_code == 400 and "unknown or has expired" in answer.text
    assert flow.session.get(f"{root}/auth/consent?request={flow.request_id}", timeout=30).status_code == 400


def test_unknown_choices_are_refused(root):
    flow = begin(root, "launch/patient launch/encounter patient/*.rs")
    answer = flow.choose("user", DOCTOR, data_override=lambda d: [(k, "Practitioner/nobody" if k == "user" else v)
                                                                  for k, v in d])
    assert answer.status_code == 400 and "not a practitioner or patient" in answer.text


def test_pages_are_not_cached_nor_framed_by_other_sites(root):
    flow = begin(root, "launch/patient patient/*.rs")
    headers = flow.response.headers
    assert headers["Cache-Control"] == "no-store" and "frame-ancestors 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "SAMEORIGIN"  # the simulated EHR frame is same-origin
    cookie = next(c for c in flow.session.cookies if c.name == "mockehr_browser")
    assert cookie.path == "/auth" and cookie.has_nonstandard_attr("HttpOnly")


# -- search ------------------------------------------------------------------------
def _picker(root: str) -> Flow:
    flow = begin(root, "launch/patient patient/*.rs")
    flow.choose("user", DOCTOR)
    assert flow.path == "/auth/pick-patient"
    return flow


def _search(flow: Flow, q: str) -> list[str]:
    answer = flow.session.get(flow.response.url.split("&q=")[0], params={"q": q}, timeout=30)
    assert answer.status_code == 200
    page = Page(answer.text)
    forms = [f for f in page.forms if f.method == "post"]
    return [b["value"] for f in forms for b in f.buttons("patient")]


def test_patient_picker_search(root):
    flow = _picker(root)
    everyone = [b["value"] for b in flow.page.post_form("patient").buttons("patient")]
    assert len(everyone) >= 20
    assert _search(flow, "romero") == [CHILD]
    assert _search(flow, "ROMERO willie") == [CHILD]
    assert _search(flow, "17919231") == [ADULT], "MRN"
    assert _search(flow, "p00014") == ["p00014-teen"], "id"
    assert set(_search(flow, "pham")) == {"p00014-teen", "p00024-vietnamese"}, "accents do not matter"
    assert _search(flow, "zzzz-nobody") == []
    page = Page(flow.session.get(flow.response.url, params={"q": "romero"}, timeout=30).text)
    assert "Willie Daniel Romero" in page.text and "male" in page.text and "33757693" in page.text


def test_login_search_filters_by_name(root):
    flow = begin(root, "launch/patient patient/*.rs")
    answer = flow.session.get(flow.response.url, params={"q": "okafor"}, timeout=30)
    users = [b["value"] for f in Page(answer.text).forms for b in f.buttons("user")]
    assert users == [DOCTOR]


# -- the pure parts --------------------------------------------------------------------
def _request(scope: str, launch: Launch | None = None) -> AuthorizeRequest:
    from mockehr.auth.model import Client

    return AuthorizeRequest(Client("c", None), REDIRECT, "s", parse_scopes(scope), None, None, None, None, launch)


def test_approved_scope_text_keeps_request_order_and_never_widens():
    requested = parse_scopes("openid patient/Observation.rs patient/Patient.rs")
    assert consent.approved_scope_text(requested, ["patient/Patient.rs", "openid"]) == "openid patient/Patient.rs"
    assert consent.approved_scope_text(requested, [LAB, VITALS, "patient/Patient.rs"]) == \
        f"{LAB} {VITALS} patient/Patient.rs"
    assert consent.approved_scope_text(requested, ["patient/Observation.rs", LAB]) == "patient/Observation.rs"
    assert consent.approved_scope_text(requested, ["user/*.cruds", "patient/Condition.rs"]) == ""


def test_next_step_follows_the_contract():
    progress = consent.Progress("browser")
    req = _request("launch/patient launch/encounter patient/*.rs")
    ctx = AuthContext()
    assert consent.next_step(req, ctx, progress) == consent.LOGIN
    consent.choose_user(req, ctx, progress, DOCTOR, 1)
    assert consent.next_step(req, ctx, progress) == consent.PATIENT
    consent.choose_patient(ctx, progress, CHILD)
    assert consent.next_step(req, ctx, progress) == consent.ENCOUNTER
    consent.choose_encounter(ctx, progress, None)
    assert consent.next_step(req, ctx, progress) == consent.CONSENT
    assert [s["step"] for s in consent.progress_bar("consent", req, ctx, progress)] == \
        [s for s in consent.STEPS if s != consent.SECOND_FACTOR]  # no acr_values: no second factor

    launch = Launch("L", patient=ADULT, encounter="E", user="Practitioner/pr-brennan")
    ehr = _request("launch launch/encounter patient/*.rs", launch)
    ctx = AuthContext()
    consent.start(ehr, ctx, 5)
    assert (ctx.user, ctx.patient, ctx.encounter, ctx.launch_id, ctx.auth_time) == \
        ("Practitioner/pr-brennan", ADULT, "E", "L", 5)
    assert consent.next_step(ehr, ctx, progress) == consent.CONSENT


def test_rows_for_the_pages():
    rows = consent.encounter_rows([
        {"id": "a", "period": {"start": "2020-01-01T10:00:00-05:00"}, "class": {"code": "AMB"}, "status": "finished"},
        {"id": "b", "period": {"start": "2020-01-01T14:00:00Z"}, "type": [{"text": "Check-up"}]},
        {"id": "c"},
    ])
    assert [r["id"] for r in rows] == ["a", "b", "c"]  # 15:00Z before 14:00Z; undated last
    assert rows[0]["when"] == "2020-01-01 10:00" and rows[0]["class"] == "AMB" and rows[1]["type"] == "Check-up"
    doctor = {"id": "d", "name": [{"prefix": ["Dr."], "given": ["Ann"], "family": "Lee", "suffix": ["MD"]}]}
    role = {"practitioner": {"reference": "Practitioner/d"}, "code": [{"coding": [{"display": "Doctor"}]}]}
    assert consent.practitioner_rows([doctor], [role]) == [
        {"ref": "Practitioner/d", "id": "d", "name": "Dr. Ann Lee, MD", "role": "Doctor"}]
    assert consent.matches({"name": "Phạm Thị Ánh", "id": "x"}, "pham anh")
    assert consent.redirect_host("com.example.app:/cb") == "com.example.app:"


def test_a_skip_consent_launch_with_a_user_goes_straight_back_to_the_app(root):
    launch = requests.post(f"{root}/admin/launches", timeout=30, json={
        "patient": ADULT, "user": "Practitioner/pr-brennan", "skip_consent": True}).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    session = requests.Session()
    answer = session.get(f"{root}/auth/authorize", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": "skip-app", "redirect_uri": REDIRECT, "scope": "launch patient/*.rs",
        "aud": f"{root}/fhir", "state": "s9", "launch": launch["launch"], "code_challenge": challenge,
        "code_challenge_method": "S256"})
    pages = []
    while answer.headers["Location"].startswith(root):  # login, then consent: each skips itself
        pages.append(urlsplit(answer.headers["Location"]).path)
        answer = session.get(answer.headers["Location"], allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text[:300]
    assert pages[-1] == "/auth/consent"
    params = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert params["state"] == "s9" and "code" in params
    consent = [e for e in audit(root) if e["type"] == "consent" and e.get("client") == "skip-app"]
    assert consent[-1]["decision"].startswith("skipped") and consent[-1]["scope"] == "launch patient/*.rs"
    refused = requests.post(f"{root}/admin/launches", timeout=30, json={"patient": ADULT, "skip_consent": "yes"})
    assert refused.status_code == 400 and "skip_consent must be true or false" in refused.json()["error"]
