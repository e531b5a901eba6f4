"""ROOT/patients over HTTP: list, search, a record by type, a resource's JSON; everything escaped."""

from __future__ import annotations

import html
import json

import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import system_token

PATIENT = "p00001-diabetes-htn"


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0)) as running:
        yield running


def get(server, path: str, **params) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params or None, timeout=30)


def test_the_list_shows_every_patient_and_links_each_record(server):
    page = get(server, "/patients")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text.count(f'href="{server.url}/patients/p000') == 25 and "All patients" in page.text
    assert "James Thomas Mckinney" in page.text and "17919231" in page.text  # name and MRN


def test_search_by_name_birth_date_mrn_and_gender(server):
    assert get(server, "/patients", q="mckinney").text.count(f'href="{server.url}/patients/p000') == 2
    by_mrn = get(server, "/patients", q="17919231").text
    assert by_mrn.count(f'href="{server.url}/patients/p000') == 1
    assert f'href="{server.url}/patients/{PATIENT}"' in by_mrn
    assert "1 of 25 match" in get(server, "/patients", q="1970-11-14").text
    women = get(server, "/patients", gender="female").text
    assert 'value="female" selected' in women and "Carolyn Norman" in women and "James Thomas" not in women
    assert "No patient matches" in get(server, "/patients", q="zzzz-nobody").text


def test_a_record_is_grouped_by_type_with_counts_and_readable_lines(server):
    page = get(server, f"/patients/{PATIENT}").text
    token = system_token(server.url)
    everything = requests.get(f"{server.fhir_base}/Patient/{PATIENT}/$everything", params={"_count": 1000},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    observations = sum(1 for e in everything["entry"] if e["resource"]["resourceType"] == "Observation")
    assert f'<h2 id="h-Observation">Observation <span class="auth-count">{observations}</span></h2>' in page
    assert page.index('id="h-Condition"') < page.index('id="h-Observation"')
    assert "Type 2 diabetes" in page and "mmHg" in page
    assert f"Show all {observations} Observation resources" in page
    full = get(server, f"/patients/{PATIENT}", all="Observation").text
    link = f'href="{server.url}/patients/{PATIENT}/Observation/'
    assert full.count(link) == observations and page.count(link) == 50


def test_each_resource_json_is_one_click_away(server):
    page = get(server, f"/patients/{PATIENT}/Observation/{PATIENT}-obs-001")
    assert page.status_code == 200
    shown = html.unescape(page.text.split("<pre>", 1)[1].split("</pre>", 1)[0])
    resource = json.loads(shown)
    assert resource["id"] == f"{PATIENT}-obs-001" and resource["resourceType"] == "Observation"
    assert '\n  "category": [' in shown  # pretty-printed


def test_unknown_things_answer_404_pages(server):
    for path in ("/patients/nobody", f"/patients/{PATIENT}/Nonsense/x", f"/patients/{PATIENT}/Observation/nope"):
        page = get(server, path)
        assert page.status_code == 404 and "Not found" in page.text, path


def test_resource_contents_and_queries_are_escaped():
    with ServerThread(Settings(port=0)) as server:
        token = system_token(server.url, "system/*.cruds")
        evil = '<script>alert("x")</script>'
        created = requests.post(f"{server.fhir_base}/Observation", headers={"Authorization": f"Bearer {token}"},
                                json={"resourceType": "Observation", "status": "final", "code": {"text": evil},
                                      "subject": {"reference": f"Patient/{PATIENT}"}, "valueString": evil},
                                timeout=30).json()
        record = get(server, f"/patients/{PATIENT}", all="Observation").text
        resource = get(server, f"/patients/{PATIENT}/Observation/{created['id']}").text
        search = get(server, "/patients", q=evil).text
        for page in (record, resource, search):
            assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in record
        assert "&lt;script&gt;" in search
