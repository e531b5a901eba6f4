"""ROOT/sample-app: the built-in sample app's three files, served from the package.

What the app does in a browser is tested in tests/e2e/test_sample_app_browser.py;
here: the files, their content types and headers, and that they load nothing from
anywhere else and never put server data into the page as markup.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from mockehr.app import create_app
from mockehr.config import Settings
from mockehr.paths import launcher_dir

FILES = launcher_dir() / "static" / "sample-app"
# The only absolute URLs the files may contain: links to the specifications, for people to read.
DOCUMENTATION = ("https://hl7.org/fhir/smart-app-launch/", "https://openid.net/specs/")


@pytest.fixture(scope="module")
def client():
    return create_app(Settings()).test_client()


def get(client, path: str):
    """GET, read the body, close: a file response left open is a ResourceWarning (an error here)."""
    answer = client.get(path)
    answer.get_data()
    answer.close()
    return answer


class References(HTMLParser):
    """Every src and href in a page."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.found.append((tag, name, value))


def references(html: str) -> list[tuple[str, str, str]]:
    parser = References()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("path, content_type", [
    ("/sample-app", "text/html; charset=utf-8"),
    ("/sample-app/app.js", "text/javascript; charset=utf-8"),
    ("/sample-app/app.css", "text/css; charset=utf-8"),
])
def test_files_are_served_with_their_content_types(client, path, content_type):
    answer = get(client, path)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == content_type
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-cache"


def test_page_is_the_launch_url_and_loads_its_script_and_style(client):
    answer = get(client, "/sample-app?launch=abc&iss=http://localhost/fhir")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert '<script type="module" src="sample-app/app.js"></script>' in html
    assert '<link rel="stylesheet" href="sample-app/app.css">' in html
    for tag, attribute, value in references(html):
        if tag in ("script", "link"):
            resolved = urljoin("http://localhost/sample-app", value)
            assert get(client, urlsplit(resolved).path).status_code == 200, (tag, attribute, value)


def test_trailing_slash_redirects_to_the_one_launch_url_keeping_the_query(client):
    answer = get(client, "/sample-app/?launch=a%20b&iss=http://localhost/fhir")
    assert answer.status_code == 308
    assert urljoin("http://localhost/sample-app/", answer.headers["Location"]) == \
        "http://localhost/sample-app?launch=a%20b&iss=http://localhost/fhir"
    assert get(client, "/sample-app/").headers["Location"] == "../sample-app"


@pytest.mark.parametrize("path", ["/sample-app/index.html", "/sample-app/nothing.js", "/sample-app/..%2fapp.py",
                                  "/sample-app/%2e%2e/mockehr.css"])
def test_nothing_else_is_served_under_the_app(client, path):
    assert get(client, path).status_code == 404


def test_the_app_may_be_framed_by_the_ehr_frame_on_the_same_origin(client):
    headers = get(client, "/sample-app").headers
    assert "X-Frame-Options" not in headers
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["frame-ancestors"] == "'self'"
    assert csp["default-src"] == "'self'"  # scripts, styles, fonts: from this server only
    assert headers["Referrer-Policy"] == "no-referrer"  # the code arrives in the page's URL


def test_files_load_nothing_from_other_servers():
    html = (FILES / "index.html").read_text()
    for tag, attribute, value in references(html):
        if tag != "a":
            assert not urlsplit(value).scheme and not value.startswith("//"), (tag, attribute, value)
    css = (FILES / "app.css").read_text()
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    script = (FILES / "app.js").read_text()
    assert not re.search(r"^\s*import\b", script, re.M), "no imports: one self-contained file"
    assert "fetch(\"http" not in script and "fetch('http" not in script and "fetch(`http" not in script
    for name in ("index.html", "app.js", "app.css"):
        text = (FILES / name).read_text()
        for url in re.findall(r"""https?://[^\s"'`)<>]+""", text):
            assert url.startswith(DOCUMENTATION), f"{name} names {url}; only links to the specs are allowed"


def test_script_never_builds_markup_from_strings():
    script = (FILES / "app.js").read_text()
    sinks = re.findall(r"\.(?:innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML\(|document\.write|\beval\(|new Function\(",
                       script)
    assert sinks == [], "server data must go through textContent / createElement"
    assert "textContent" in script and "createElement" in script


def test_script_links_each_step_to_its_section_of_the_spec():
    script = (FILES / "app.js").read_text()
    for anchor in ("step-2-launch-ehr", "step-2-launch-standalone", "step-3-discovery", "step-4-authorization-code",
                   "step-5-access-token", "step-6-fhir-api", "step-7-refresh"):
        assert f"https://hl7.org/fhir/smart-app-launch/app-launch.html#{anchor}" in script, anchor
    assert 'code_challenge_method: "S256"' in script
    assert 'const EHR_SCOPE = "openid fhirUser launch patient/*.rs offline_access"' in script
    assert 'const STANDALONE_SCOPE = "openid fhirUser launch/patient patient/*.rs offline_access"' in script
