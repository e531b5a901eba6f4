"""Concurrent writes and searches, and a seeded garbage loop that must never produce a 500."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import requests

from mockehr.fhir.searchparams import params_for
from tests.fhir.conftest import ids

THREADS = 8
PER_THREAD = 25


def test_concurrent_creates_and_searches(api):
    def work(worker: int) -> list[int]:
        statuses = []
        with api.new_session() as session:
            for i in range(PER_THREAD):
                if i % 2 == 0:
                    response = session.post(f"{api.base}/Observation", timeout=30, json={
                        "resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "urn:test", "code": f"worker-{worker}"}]},
                        "subject": {"reference": "Patient/pat-3"}})
                    statuses.append(response.status_code)
                else:
                    response = session.get(f"{api.base}/Observation", timeout=30,
                                           params={"patient": "pat-3", "_count": "5", "_sort": "-_lastUpdated"})
                    statuses.append(response.status_code)
                    assert response.json()["resourceType"] == "Bundle"
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    creates_per_thread = (PER_THREAD + 1) // 2
    for statuses in results:
        assert statuses[0::2] == [201] * creates_per_thread
        assert statuses[1::2] == [200] * (PER_THREAD // 2)
    total = api.search("Observation", {"patient": "pat-3", "_summary": "count"})["total"]
    assert total == 1 + THREADS * creates_per_thread
    for worker in range(THREADS):
        found = api.search("Observation", {"code": f"urn:test|worker-{worker}", "_summary": "count"})
        assert found["total"] == creates_per_thread
    history = api.get("Observation/_history", params={"_count": "1"}).json()
    assert history["total"] == 6 + THREADS * creates_per_thread


def test_concurrent_updates_of_one_resource_get_distinct_versions(api):
    resource = api.get("Patient/pat-3").json()

    def work(worker: int) -> list[str]:
        etags = []
        with api.new_session() as session:
            for i in range(5):
                body = dict(resource, birthDate=f"20{worker:02d}-01-{i + 1:02d}")
                response = session.put(f"{api.base}/Patient/pat-3", json=body, timeout=30)
                assert response.status_code == 200
                etags.append(response.headers["ETag"])
        return etags

    with ThreadPoolExecutor(THREADS) as pool:
        etags = sum(pool.map(work, range(THREADS)), [])
    assert sorted(etags) == sorted(f'W/"{n}"' for n in range(2, 2 + THREADS * 5))
    assert api.get("Patient/pat-3").headers["ETag"] == f'W/"{1 + THREADS * 5}"'


def test_concurrent_conditional_creates_make_exactly_one(api):
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": "only-one"}]}

    def work(_):
        response = requests.post(f"{api.base}/Patient", json=body, timeout=30,
                                 headers={"If-None-Exist": "identifier=urn:race|only-one",
                                          "Authorization": api.session.headers["Authorization"]})
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS * 2)))
    assert sorted(status for status, _ in results) == [200] * (THREADS * 2 - 1) + [201]
    assert len({rid for _, rid in results}) == 1
    assert len(ids(api.search("Patient", {"identifier": "urn:race|only-one"}))) == 1


# -- garbage in, never a 500 ---------------------------------------------------------

_PIECES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "-", "|", "||", ",", "\\", "\\,",
           "2023", "2023-01", "2023-02-30", "2023-01-15T10:30", "T", ":", "Z", "+02:00", "1e400", "1e", "NaN",
           "inf", "-0", "5.", ".5", "pat-1", "Patient/", "Patient/pat-1", "http://x/fhir/Patient/1", "%",
           "é", "Zoë", "\u0000", "\ud7ff", "true", "false", "*", "..", "/", "?", "&", "=", "#", "'", '"',
           "9" * 40, "a" * 300, "²", "١", "1_0", "1e999", "0e9999"]
_MODIFIERS = ["", ":missing", ":not", ":text", ":exact", ":contains", ":below", ":Patient", ":Foo", ":",
              ":iterate", "::", ":identifier"]
_RESULT = ["_count", "_offset", "_sort", "_include", "_revinclude", "_include:iterate", "_summary",
           "_elements", "_total", "_format", "_pretty", "_since", "_type", "_id", "_lastUpdated"]


def _garbage(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 4)))


def _query(rng: random.Random, rtype: str) -> list[tuple[str, str]]:
    names = list(params_for(rtype)) + _RESULT + ["shoe-size", "subject.name", "", "_has:Observation:patient:code"]
    return [(rng.choice(names) + rng.choice(_MODIFIERS), _garbage(rng)) for _ in range(rng.randint(1, 4))]


def _json_garbage(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 1.5, 10 ** 30])
    if kind in (2, 3, 4):
        return _garbage(rng)
    if kind == 5:
        return [_json_garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["resourceType", "id", "meta", "name", "subject", "code", "valueQuantity", "status", "text",
            "identifier", "extension", "contained", "_birthDate", "birthDate", "reference", _garbage(rng)]
    return {rng.choice(keys): _json_garbage(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _latin1(text: str) -> str:
    """Header values travel as bytes: send the UTF-8 bytes of `text` as they are."""
    return text.encode("utf-8").decode("latin-1")


def _check(response: requests.Response, what) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    if response.content:
        body = response.json()
        assert body["resourceType"] in ("Bundle", "OperationOutcome", "Patient", "Observation"), what


def test_random_queries_never_500(api):
    rng = random.Random(20240101)
    with api.new_session() as session:
        for _ in range(250):
            rtype = rng.choice(["Patient", "Observation", "Encounter", "Provenance"])
            query = _query(rng, rtype)
            path = rng.choice([rtype, f"{rtype}/_history", "Patient/pat-1/$everything", "_history",
                               f"{rtype}/pat-1/_history"])
            response = session.get(f"{api.base}/{path}", params=query, timeout=30)
            _check(response, (path, query))
            if rng.random() < 0.2:
                response = session.post(f"{api.base}/{rtype}/_search", data=query, timeout=30)
                _check(response, ("POST _search", rtype, query))


def test_raw_query_strings_never_500(api):
    rng = random.Random(7)
    raw = ["%FF%FE", "name=%C3%28", "name=%", "%%%", "&&&", "===", "name", "_count=%00", "date=ge%2B2023",
           "_sort=-", "_sort=,", "_include=:", "_include=Observation::", "_revinclude=Provenance:target:",
           "value-quantity=1e999", "value-quantity=-1e-999", "date=0000", "date=9999-12-31T23:59:59.9999999Z",
           "birthdate=1980-02-29", "_elements=,,,", "_summary=", "_total=", "_count=99999999999999999999"]
    with api.new_session() as session:
        for query in raw + ["&".join(rng.sample(raw, 3)) for _ in range(20)]:
            for rtype in ("Patient", "Observation"):
                response = session.get(f"{api.base}/{rtype}?{query}", timeout=30)
                _check(response, query)


def test_random_bodies_never_500(api):
    rng = random.Random(4242)
    with api.new_session() as session:
        for i in range(200):
            body = _json_garbage(rng)
            if isinstance(body, dict) and rng.random() < 0.6:
                body["resourceType"] = rng.choice(["Patient", "Observation"])
            data = json.dumps(body).encode() if rng.random() < 0.9 else bytes(rng.randrange(256) for _ in range(30))
            headers = {"Content-Type": rng.choice(["application/fhir+json", "application/json", "text/plain", ""])}
            if rng.random() < 0.2:
                headers[rng.choice(["If-None-Exist", "If-Match", "Prefer"])] = _latin1(_garbage(rng))
            if i % 2:
                response = session.post(f"{api.base}/Patient", data=data, headers=headers, timeout=30)
            else:
                response = session.put(f"{api.base}/Observation/obs-{i}", data=data, headers=headers, timeout=30)
            _check(response, (body, headers))
            assert response.status_code in (200, 201, 400, 404, 412, 415, 422), (body, response.text[:300])


def test_random_paths_and_headers_never_500(api):
    rng = random.Random(99)
    segments = ["Patient", "pat-1", "_history", "1", "$everything", "_search", "metadata", "..", "%2F", "Foo",
                "x" * 70, "", "Observation", "obs-1", "$validate", "%00", "é"]
    with api.new_session() as session:
        for _ in range(150):
            path = "/".join(rng.choice(segments) for _ in range(rng.randint(1, 4)))
            method = rng.choice(["GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
            headers = {}
            for name in rng.sample(["If-None-Match", "If-Modified-Since", "Accept", "Prefer", "If-Match"], 2):
                headers[name] = _latin1(_garbage(rng))
            response = session.request(method, f"{api.base}/{path}", headers=headers, timeout=30,
                                       data=b"{}" if method in ("POST", "PUT") else None)
            assert response.status_code < 500, (method, path, headers, response.status_code, response.text[:300])
