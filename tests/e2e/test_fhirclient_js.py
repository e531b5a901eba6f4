"""fhirclient.js (the SMART JavaScript client) completes an EHR launch in headless Chromium.

The app (tests/e2e/smart_app) is served from a second origin on 127.0.0.1, so the
browser applies CORS for real: discovery, the token request and the FHIR calls
(with an Authorization header, hence preflights) all go cross-origin to mockehr.
Nothing leaves the machine: fhir-client.js comes from the app's node_modules.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import authorized_session

APP_DIR = Path(__file__).resolve().parent / "smart_app"
BUNDLE = APP_DIR / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CLIENT_ID = "mockehr-e2e-fhirclient-js"  # the clientId in smart_app/launch.html
PATIENT = "p00001-diabetes-htn"
USER = "Practitioner/pr-okafor"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)"),
    pytest.mark.skipif(not BUNDLE.exists(), reason=f"no {BUNDLE.relative_to(APP_DIR.parent.parent.parent)}: run "
                       "`npm ci --prefix tests/e2e/smart_app` (.ci/run does)"),
]


class _StaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


class StaticServer:
    """The SMART app and its node_modules on http://127.0.0.1:PORT, a different origin from mockehr."""

    def __init__(self, directory: Path):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StaticHandler, directory=directory))
        self._thread = threading.Thread(target=self._server.serve_forever, name="smart-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "StaticServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class RequestLog:
    """WSGI middleware on mockehr: what the browser actually sent (preflights are invisible to Playwright)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.seen: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.seen.append({"method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", ""),
                              "query": environ.get("QUERY_STRING", ""),
                              "origin": environ.get("HTTP_ORIGIN"),
                              "preflight_headers": environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")})
        return self.wsgi_app(environ, start_response)


def _official_name(patient: dict) -> str:
    """What index.html shows: the official name (else the first), given names then family."""
    names = patient.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    return " ".join([*name.get("given", []), name.get("family", "")]).strip()


def _search_all(session: requests.Session, url: str) -> list[dict]:
    found = []
    while url:
        bundle = session.get(url, timeout=30)
        assert bundle.status_code == 200, bundle.text
        bundle = bundle.json()
        found += [e["resource"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    return found


def test_fhirclient_js_completes_an_ehr_launch_in_chromium():
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    with ServerThread(Settings(port=0, auto_approve=True)) as ehr, StaticServer(APP_DIR) as static:
        log = RequestLog(ehr.app.wsgi_app)
        ehr.app.wsgi_app = log
        assert urlsplit(ehr.url).netloc != urlsplit(static.url).netloc  # two origins: CORS applies

        launch = requests.post(f"{ehr.url}/admin/launches", timeout=30, json={
            "patient": PATIENT, "user": USER, "app_url": f"{static.url}/launch.html"})
        assert launch.status_code == 201, launch.text
        launch = launch.json()
        assert launch["iss"] == ehr.fhir_base

        problems: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text} ({m.location})")
                        if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"request failed: {r.method} {r.url}: "
                                                                   f"{r.failure}"))
                page.goto(launch["launch_url"])
                try:
                    page.wait_for_selector("body[data-ready]", state="attached", timeout=30_000)
                except PlaywrightTimeout:
                    pytest.fail(f"the app never finished: at {page.url}\n{page.inner_text('body')[:2000]}\n"
                                + "\n".join(problems))
                shown = {key: page.text_content(f"#{key}") for key in
                         ("status", "patient-id", "patient-name", "vitals-count", "user")}
                final_url = page.url
            finally:
                browser.close()

        assert not problems, "the browser reported errors:\n" + "\n".join(problems)
        assert shown["status"] == "ready", shown
        assert final_url.startswith(f"{static.url}/index.html?"), final_url

        # What the app shows is what the API holds.
        api = authorized_session(ehr.url)
        patient = api.get(f"{ehr.fhir_base}/Patient/{PATIENT}", timeout=30)
        assert patient.status_code == 200, patient.text
        assert shown["patient-id"] == PATIENT
        assert shown["patient-name"] == _official_name(patient.json()) != ""
        vitals = _search_all(api, f"{ehr.fhir_base}/Observation?patient={PATIENT}&category=vital-signs")
        assert int(shown["vitals-count"]) == len(vitals) > 0
        assert shown["user"] == USER  # fhirclient.js shortens the id_token's absolute fhirUser to Type/id

        # The audit trail: this client was authorized for the launch's patient and user,
        # got a token, and made the FHIR calls.
        events = requests.get(f"{ehr.url}/admin/audit", timeout=30).json()
        mine = [e for e in events if e.get("client") == CLIENT_ID]
        authorized = [e for e in mine if e["type"] == "authorize"]
        assert [e["outcome"] for e in authorized] == ["success"], authorized
        assert authorized[0]["launch"] == "ehr"
        assert authorized[0]["patient"] == PATIENT and authorized[0]["user"] == USER
        assert set(authorized[0]["scope"].split()) >= {"launch", "openid", "fhirUser"}
        tokens = [e for e in mine if e["type"] == "token"]
        assert [(e["outcome"], e["grant_type"]) for e in tokens] == [("success", "authorization_code")], tokens
        fhir = [e for e in mine if e["type"] == "fhir"]
        assert fhir and all(e["outcome"] == "success" and e["patient"] == PATIENT for e in fhir), fhir
        assert any(e["path"].startswith(f"/fhir/Patient/{PATIENT}") for e in fhir), fhir
        assert any(e["path"].startswith("/fhir/Observation?") for e in fhir), fhir
        failures = [e for e in events if e["outcome"] == "failure"]
        assert not failures, failures

        # fhirclient.js saw S256 in discovery and used PKCE.
        authorize = [parse_qs(r["query"]) for r in log.seen if r["path"] == "/auth/authorize"]
        assert len(authorize) == 1 and authorize[0]["code_challenge_method"] == ["S256"], authorize
        assert authorize[0]["launch"] == [launch["launch"]] and authorize[0]["aud"] == [ehr.fhir_base], authorize

        # CORS was exercised for real: cross-origin calls, and preflights for the Authorization header.
        app_origin = static.url
        assert any(r["method"] == "POST" and r["path"] == "/auth/token" and r["origin"] == app_origin
                   for r in log.seen), log.seen
        preflights = [r for r in log.seen if r["method"] == "OPTIONS" and r["origin"] == app_origin]
        assert any(r["path"].startswith("/fhir/Patient/") and "authorization" in r["preflight_headers"].lower()
                   for r in preflights), log.seen
