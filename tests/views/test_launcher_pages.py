"""The launcher page (ROOT/) and the EHR frame (ROOT/ehr) through Flask's test client: what the
form shows for a deep link, what Launch, Create launch URL and Register client do, that bad input
is a message and never a 500, and that nothing typed into a URL comes back as markup."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import JWKRegistry, KeySet

from mockehr.app import create_app
from mockehr.config import Settings
from mockehr.views.ehr_frame import banner_facts

PATIENT = "p00003-child-asthma"
OTHER = "p00001-diabetes-htn"
APP = "http://app.test/launch"
VOID = {"input", "meta", "link", "br", "img", "hr", "source"}


class Page(HTMLParser):
    """Every element of a page with its attributes and text, enough to read a form back."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self._select: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **{k: (v if v is not None else "") for k, v in attrs}, "text": ""}
        if tag == "select":
            self._select = element.get("name")
        if tag == "option":
            element["select"] = self._select
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index]["tag"] == tag:
                del self._open[index:]
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def by_id(self, element_id: str) -> dict:
        found = [e for e in self.elements if e.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id}"
        return found[0]

    def text(self, element_id: str) -> str:
        return self.by_id(element_id)["text"]

    def value(self, name: str) -> str:
        """What the form submits for `name` (text inputs, textareas, selects, checked radios/boxes; last wins)."""
        value = None
        for e in self.elements:
            if e.get("name") != name or "disabled" in e:
                continue
            if e["tag"] == "textarea":
                value = e["text"]
            elif e["tag"] == "input" and e.get("type") in ("radio", "checkbox"):
                value = e.get("value", "on") if "checked" in e else value
            elif e["tag"] == "input":
                value = e.get("value", "")
        options = [e for e in self.elements if e["tag"] == "option" and e.get("select") == name]
        if options:
            chosen = [e for e in options if "selected" in e]
            value = (chosen[-1] if chosen else options[0]).get("value", "")
        return value

    def options(self, name: str, shown_only: bool = True) -> list[str]:
        return [e.get("value", "") for e in self.elements if e["tag"] == "option" and e.get("select") == name
                and not (shown_only and "hidden" in e)]

    def alerts(self) -> str:
        """The text of the page's alerts (the problems and errors it shows)."""
        return " | ".join(" ".join(e["text"].split()) for e in self.elements if e.get("role") == "alert")


def form_of(page: Page) -> dict:
    """The launcher form as a browser would submit it (every named field, last value of each)."""
    names = dict.fromkeys(e["name"] for e in page.elements if e.get("name") and e["tag"] in
                          ("input", "select", "textarea") and e.get("type") != "submit")
    return {name: page.value(name) for name in names if page.value(name) is not None}


@pytest.fixture(scope="module")
def app():
    return create_app(Settings())


@pytest.fixture
def client(app):
    return app.test_client()


def get_page(client, path: str, status: int = 200) -> Page:
    answer = client.get(path)
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    assert answer.mimetype == "text/html"
    return Page(answer.get_data(as_text=True))


def post(client, path: str, data: dict, status: int):
    answer = client.post(path, data=data)
    assert answer.status_code == status, answer.get_data(as_text=True)[:3000]
    return answer


def state(app):
    return app.extensions["mockehr.auth"].state


# -- the page ----------------------------------------------------------------------------------

def test_the_page_offers_every_launch_type_and_prefills_the_defaults(client):
    page = get_page(client, "/")
    assert [e["value"] for e in page.elements if e.get("name") == "launch_type"] == \
        ["ehr", "portal", "provider", "patient", "backend"]
    assert page.value("launch_type") == "ehr"
    assert page.value("patient") == OTHER  # the first patient by id
    assert page.value("practitioner") == "pr-brennan"
    assert page.value("app_url") == "http://localhost/sample-app"
    assert page.value("client_id") == "mockehr-sample-app"
    assert page.value("scope") == "launch openid fhirUser offline_access patient/*.rs"
    assert page.text("iss") == "http://localhost/fhir"
    assert page.text("discovery") == "http://localhost/fhir/.well-known/smart-configuration"
    assert page.text("deep-link") == "http://localhost/?launch_type=ehr"
    assert any(e["tag"] == "h2" and e["text"].startswith("Patients (25)") for e in page.elements)


def test_a_deep_link_prefills_every_option_and_is_shown_back_as_the_link_to_this_launch(client):
    query = {"launch_type": "portal", "patient": PATIENT, "encounter": "", "app_url": APP,
             "client_id": "handout-app", "client_type": "symmetric", "scope_preset": "minimal",
             "smart_version": "v1", "intent": "summary", "fhir_context": "Observation/o1",
             "need_patient_banner": "0", "smart_style_url": "none", "skip_login": "0",
             "sim_error": "request_invalid_token"}
    page = get_page(client, "/?" + urlencode(query))
    for name, value in query.items():
        assert page.value(name) == value, name
    assert page.value("scope") == "launch openid fhirUser patient/Patient.read"
    assert parse_qs(urlsplit(page.text("deep-link")).query) == {k: [v] for k, v in query.items() if k != "encounter"}


def test_the_encounter_picker_lists_the_chosen_patients_encounters_only(app, client):
    page = get_page(client, "/?" + urlencode({"patient": PATIENT}))
    offered = [e for e in page.options("encounter") if e]
    store = app.extensions["mockehr.store"]
    assert offered and all(store.read("Encounter", e).resource["subject"]["reference"] == f"Patient/{PATIENT}"
                           for e in offered)
    assert page.options("encounter", shown_only=False)[0] == ""


def test_simulated_errors_are_those_of_the_launch_type(client):
    backend = get_page(client, "/?launch_type=backend")
    assert "invalid_jti" in backend.options("sim_error") and "auth_invalid_scope" not in backend.options("sim_error")
    ehr = get_page(client, "/?launch_type=ehr")
    assert "auth_invalid_scope" in ehr.options("sim_error") and "invalid_jti" not in ehr.options("sim_error")


def test_bad_options_are_listed_on_the_page_with_a_200_for_a_get(client):
    page = get_page(client, "/?" + urlencode({"launch_type": "rocket", "patient": "nobody", "fhir_context": "[x"}))
    messages = page.alerts()
    assert "launch_type 'rocket' is not one of" in messages
    assert "patient 'nobody' is not in the FHIR store" in messages
    assert "fhirContext is not valid JSON" in messages


@pytest.mark.parametrize("name", ["app_url", "intent", "client_id", "fhir_context", "scope", "jwks_uri", "patient"])
def test_nothing_from_the_query_string_comes_back_as_markup(client, name):
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)></textarea>'
    answer = client.get("/?" + urlencode({name: evil, "client_type": "asymmetric"}))
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_skip_consent_is_offered_and_prefilled_from_the_deep_link(client):
    page = get_page(client, "/?skip_consent=1")
    box = [e for e in page.elements if e.get("name") == "skip_consent" and e.get("type") == "checkbox"][0]
    assert "disabled" not in box and "checked" in box


# -- Launch, EHR frame, Create launch URL ---------------------------------------------------

def test_launch_mints_an_ehr_launch_with_every_chosen_option_and_sends_the_browser_to_the_app(app, client):
    form = form_of(get_page(client, "/?" + urlencode({"patient": PATIENT, "app_url": APP})))
    encounter = get_page(client, "/?" + urlencode({"patient": PATIENT})).options("encounter")[1]
    form.update(action="launch", encounter=encounter, intent="reconcile-medications", practitioner="pr-okafor",
                fhir_context="Observation/o1", smart_style_url="http://style.test/s.json",
                sim_error="token_expired_refresh_token")
    answer = post(client, "/launcher/launch", form, 303)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == APP
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["iss"] == "http://localhost/fhir"
    launch = state(app).launch(query["launch"])
    assert (launch.patient, launch.encounter, launch.user, launch.intent, launch.fhir_context, launch.smart_style_url,
            launch.sim_error, launch.need_patient_banner) == \
        (PATIENT, encounter, "Practitioner/pr-okafor", "reconcile-medications", [{"reference": "Observation/o1"}],
         "http://style.test/s.json", "token_expired_refresh_token", True)
    events = [e for e in app.extensions["mockehr.audit"].events() if e["type"] == "launch"]
    assert events[-1]["launch"] == launch.launch_id


def test_without_skip_login_the_launch_names_no_user(app, client):
    answer = post(client, "/launcher/launch", {"action": "launch", "patient": PATIENT, "skip_login": "0"}, 303)
    launch = state(app).launch(parse_qs(urlsplit(answer.headers["Location"]).query)["launch"][0])
    assert launch.user is None and launch.patient == PATIENT


def test_create_launch_url_shows_the_minted_url_on_the_page(app, client):
    answer = post(client, "/launcher/launch", {"action": "mint", "launch_type": "portal", "patient": PATIENT}, 200)
    page = Page(answer.get_data(as_text=True))
    url = page.text("launch-url")
    launch = state(app).launch(parse_qs(urlsplit(url).query)["launch"][0])
    assert url.startswith("http://localhost/sample-app?launch=") and launch.user == f"Patient/{PATIENT}"


def test_mint_launch_refusals_are_shown_on_the_page_not_a_500(client):
    encounter_of_other = get_page(client, "/?" + urlencode({"patient": OTHER})).options("encounter")[1]
    answer = post(client, "/launcher/launch", {"action": "launch", "patient": PATIENT, "encounter": encounter_of_other},
                  400)
    messages = Page(answer.get_data(as_text=True)).alerts()
    assert f"encounter '{encounter_of_other}' is an encounter of Patient/{OTHER}" in messages


@pytest.mark.parametrize("data, message", [
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"action": "launch", "practitioner": "nobody"}, "practitioner 'nobody' is not in the FHIR store"),
    ({"action": "frame", "launch_type": "provider"}, "a provider standalone launch has no launch to create"),
    ({"action": "launch", "launch_type": "backend"}, "a backend service has no launch to create"),
])
def test_bad_launch_requests_answer_400_with_the_reason(client, data, message):
    answer = post(client, "/launcher/launch", data, 400)
    assert message in Page(answer.get_data(as_text=True)).alerts()


def test_a_standalone_launch_opens_the_app_as_it_is(client):
    answer = post(client, "/launcher/launch", {"action": "launch", "launch_type": "patient", "app_url": APP}, 303)
    assert answer.headers["Location"] == APP


def test_the_ehr_frame_shows_the_patient_banner_and_frames_the_app_like_an_ehr(app, client):
    answer = post(client, "/launcher/launch", {"action": "frame", "patient": "p00004-octogenarian", "app_url": APP},
                  303)
    frame_url = answer.headers["Location"]
    assert frame_url.startswith("http://localhost/ehr?launch=")
    page = get_page(client, frame_url)
    iframe = [e for e in page.elements if e["tag"] == "iframe"][0]
    launch_id = parse_qs(urlsplit(frame_url).query)["launch"][0]
    assert iframe["src"] == f"{APP}?launch={launch_id}&iss=http%3A%2F%2Flocalhost%2Ffhir"
    assert set(iframe["sandbox"].split()) >= {"allow-scripts", "allow-same-origin", "allow-forms", "allow-popups",
                                               "allow-modals", "allow-downloads"}
    assert "allow-top-navigation" not in iframe["sandbox"]
    assert iframe["referrerpolicy"] == "no-referrer" and "clipboard-write" in iframe["allow"]
    banner = " ".join(page.elements[[e.get("aria-label") for e in page.elements].index("Patient")]["text"].split())
    patient = app.extensions["mockehr.store"].read("Patient", "p00004-octogenarian").resource
    facts = banner_facts(patient, date.today())
    assert facts["name"] in banner and f"Age {facts['age']}" in banner and "Sex Female" in banner
    assert f"MRN {facts['mrn']}" in banner and facts["mrn"] != patient["id"]
    header = next(e["text"] for e in page.elements if e["tag"] == "header")
    assert "Signed in: Dr. Owen Brennan" in " ".join(header.split())


@pytest.mark.parametrize("query, status, message", [
    ({"launch": "no-such-launch"}, 404, "Launch 'no-such-launch' is unknown or has expired"),
    ({}, 400, "give it ?launch=LAUNCH_ID or ?launch_url=URL"),
    ({"launch_url": "javascript:alert(1)"}, 400, "must be an absolute http(s) URL"),
])
def test_the_ehr_frame_explains_what_it_cannot_open(client, query, status, message):
    answer = client.get("/ehr?" + urlencode(query))
    assert answer.status_code == status
    assert message in " ".join(Page(answer.get_data(as_text=True)).by_id("content")["text"].split())
    assert "<iframe" not in answer.get_data(as_text=True)


def test_the_ehr_frame_takes_a_launch_url_and_finds_its_launch_for_the_banner(client):
    answer = post(client, "/launcher/launch", {"action": "mint", "patient": PATIENT, "app_url": APP}, 200)
    url = Page(answer.get_data(as_text=True)).text("launch-url")
    page = get_page(client, "/ehr?" + urlencode({"launch_url": url}))
    assert [e for e in page.elements if e["tag"] == "iframe"][0]["src"] == url
    assert "Willie Daniel Romero" in page.elements[[e.get("aria-label") for e in page.elements].index("Patient")]["text"]


def test_banner_facts_use_the_mr_identifier_else_the_id_and_the_age_at_death():
    patient = {"id": "x1", "name": [{"given": ["Ada"], "family": "Lovelace"}], "gender": "female",
               "birthDate": "1815-12-10", "deceasedDateTime": "1852-11-27",
               "identifier": [{"type": {"coding": [{"code": "SS"}]}, "value": "123"}]}
    facts = banner_facts(patient, date(2026, 1, 1))
    assert (facts["name"], facts["age"], facts["sex"], facts["mrn"], facts["mrn_label"], facts["deceased"]) == \
        ("Ada Lovelace", "36", "Female", "x1", "Id", True)
    patient["identifier"].append({"type": {"coding": [{"code": "MR"}]}, "value": "MRN-9"})
    assert banner_facts(patient, date(2026, 1, 1))["mrn"] == "MRN-9"


# -- Register client -------------------------------------------------------------------------

def test_backend_registration_makes_a_key_pair_registers_the_public_half_and_shows_the_private_one(app, client):
    answer = post(client, "/launcher/register", {"launch_type": "backend", "key_alg": "RS384",
                                                 "sim_error": "invalid_jti"}, 201)
    assert answer.headers["Cache-Control"] == "no-store"
    page = Page(answer.get_data(as_text=True))
    client_id = page.text("reg-client-id")
    registered = state(app).clients.get(client_id)
    assert registered.metadata.token_endpoint_auth_method == "private_key_jwt"
    assert registered.metadata.grant_types == ("client_credentials",) and registered.metadata.scope == "system/*.rs"
    private = orjson.loads(page.text("reg-private-jwk"))
    assert private["alg"] == "RS384" and "d" in private
    # the private key shown signs what the registered public key verifies
    token = jwt.encode({"alg": "RS384", "kid": private["kid"]}, {"iss": client_id},
                       JWKRegistry.import_key(private), algorithms=["RS384"])
    public = KeySet.import_key_set(registered.metadata.jwks)
    assert jwt.decode(token, public, algorithms=["RS384"]).claims == {"iss": client_id}
    assert page.value("client_id") == client_id  # the form now carries the issued id
    # non-standard metadata: kept as an extra field today, maybe a field of its own once the auth server acts on it
    assert (getattr(registered.metadata, "sim_error", None) or registered.metadata.extra.get("sim_error")) == "invalid_jti"
    events = [e for e in app.extensions["mockehr.audit"].events() if e["type"] == "registration"]
    assert events[-1]["client"] == client_id and events[-1]["via"] == "launcher"


def test_a_symmetric_client_gets_a_secret_that_works(app, client):
    answer = post(client, "/launcher/register", {"launch_type": "provider", "client_type": "symmetric",
                                                 "redirect_uri": "http://app.test/cb"}, 201)
    page = Page(answer.get_data(as_text=True))
    registered = state(app).clients.get(page.text("reg-client-id"))
    assert registered.check_client_secret(page.text("reg-secret"))
    assert registered.metadata.redirect_uris == ("http://app.test/cb",)
    snippet = page.text("snippet-fhirclient-js")
    assert f'"clientSecret": "{page.text("reg-secret")}"' in snippet and '"iss": "http://localhost/fhir"' in snippet


def test_registration_refusals_are_shown_not_raised(client):
    private_in_jwks = '{"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "secret"}]}'
    answer = post(client, "/launcher/register", {"launch_type": "backend", "jwks": private_in_jwks}, 400)
    messages = Page(answer.get_data(as_text=True)).alerts()
    assert "The registration was refused (invalid_client_metadata)" in messages and "private key member" in messages


def test_the_launcher_is_not_behind_the_admin_guard():
    guarded = create_app(Settings(admin_token="s3cret")).test_client()
    assert guarded.post("/admin/launches", json={"patient": PATIENT}).status_code == 401
    assert guarded.get("/").status_code == 200
    assert guarded.post("/launcher/launch", data={"action": "launch", "patient": PATIENT}).status_code == 303


def test_no_launcher_page_loads_anything_from_elsewhere(client):
    text = client.get("/?launch_type=backend").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert sources and all(s.startswith(("http://localhost/", "/", "#")) for s in sources), sources
