"""The pytest plugin (entry point pytest11), tested with pytester: the fixtures, the marker, the
failure report, and pytest-xdist workers each getting their own server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

# Written into each pytester project: a helper its tests use to talk to the mock.
HELPERS = '''
import json, os, pathlib, urllib.request, urllib.error

def status(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code

def record(name, **facts):
    out = pathlib.Path(os.environ["FACTS_DIR"]) / f"{name}.json"
    out.write_text(json.dumps(facts))
'''


@pytest.fixture(scope="module")
def preloaded():
    """Everything the inner runs import, imported here first: pytester's inline runs drop the modules
    a run imported, and cryptography's bindings do not survive being imported twice."""
    from mockehr import MockEHR

    ehr = MockEHR()
    ehr.issue_token()  # signs: the app, authlib, joserfc and cryptography's RSA/EC code are loaded
    ehr.register_client("private_key_jwt")


@pytest.fixture
def project(pytester, monkeypatch, tmp_path, preloaded):
    facts = tmp_path / "facts"
    facts.mkdir()
    monkeypatch.setenv("FACTS_DIR", str(facts))
    pytester.makepyfile(helpers=HELPERS)
    pytester.facts = lambda: {p.stem: json.loads(p.read_text()) for p in facts.glob("*.json")}
    return pytester


def test_the_plugin_is_registered_by_its_entry_point():
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="pytest11") if e.name == "mockehr"]
    assert [e.value for e in found] == ["mockehr.pytest_plugin"]


def test_importing_the_plugin_or_the_package_stays_light():
    code = ("import sys, mockehr, mockehr.pytest_plugin; "
            "heavy = [m for m in ('flask', 'werkzeug', 'authlib', 'mockehr.app') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mock_ehr_is_one_server_reset_before_each_test(project):
    project.makepyfile(test_reset='''
        from helpers import record, status

        def test_first(mock_ehr):
            assert mock_ehr.settings.auto_approve is True
            client = mock_ehr.register_client()
            token = mock_ehr.authorize(client, patient="p00001-diabetes-htn")
            mock_ehr.faults.add("throttle:every=1")
            mock_ehr.clock.advance(600)
            assert status(mock_ehr.fhir_base + "/Patient/p00001-diabetes-htn", token.access_token) == 429
            record("first", url=mock_ehr.url, token=token.access_token)

        def test_second(mock_ehr):
            from helpers import record
            assert mock_ehr.faults.list() == [] and mock_ehr.audit() == [] and len(mock_ehr.requests) == 0
            assert mock_ehr.clock.offset == 0
            record("second", url=mock_ehr.url)
    ''')
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    facts = project.facts()
    assert facts["first"]["url"] == facts["second"]["url"]  # one server for the session


def test_the_marker_starts_a_test_with_faults_or_its_own_server(project):
    project.makepyfile(test_marker='''
        import pytest
        from helpers import record, status

        P = "/Patient/p00001-diabetes-htn"

        @pytest.mark.mock_ehr(faults=["throttle:every=2"])
        def test_faulted(mock_ehr):
            token = mock_ehr.issue_token(patient="p00001-diabetes-htn").access_token
            assert [status(mock_ehr.fhir_base + P, token) for _ in range(4)] == [200, 429, 200, 429]
            mock_ehr.reset()  # the marker's faults are the test's start: reset puts them back
            token = mock_ehr.issue_token(patient="p00001-diabetes-htn").access_token
            assert [status(mock_ehr.fhir_base + P, token) for _ in range(2)] == [200, 429]
            record("faulted", url=mock_ehr.url)

        def test_clean_again(mock_ehr):
            assert mock_ehr.faults.list() == []
            record("clean", url=mock_ehr.url)

        @pytest.mark.mock_ehr(strict=True, faults="latency:ms=1")
        def test_own_server(mock_ehr):
            assert mock_ehr.settings.strict and mock_ehr.settings.auto_approve
            assert [f["spec"] for f in mock_ehr.faults.list()] == ["latency:ms=1"]
            record("own", url=mock_ehr.url)

        @pytest.mark.mock_ehr(faults=["throtle"])
        def test_bad_spec(mock_ehr):
            pass
    ''')
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*FaultSpecError: unknown kind 'throtle' (did you mean 'throttle'?)*"])
    facts = project.facts()
    assert facts["faulted"]["url"] == facts["clean"]["url"] != facts["own"]["url"]


def test_the_factory_starts_servers_with_options_and_stops_them(project):
    project.makepyfile(test_factory='''
        from helpers import record, status

        def test_two(mock_ehr_factory):
            strict = mock_ehr_factory(strict=True)
            manual = mock_ehr_factory(auto_approve=False, access_token_lifetime=5)
            assert strict.settings.auto_approve and strict.settings.strict
            assert not manual.settings.auto_approve and strict.url != manual.url
            token = manual.authorize(manual.register_client(), patient="p00003-child-asthma")  # via the pages
            assert token["expires_in"] == 5
            record("two", urls=[strict.url, manual.url])

        def test_they_are_gone():
            import json, os, pathlib
            urls = json.loads((pathlib.Path(os.environ["FACTS_DIR"]) / "two.json").read_text())["urls"]
            for url in urls:
                try:
                    status(url + "/fhir/metadata")
                except OSError:
                    continue
                raise AssertionError(f"{url} still answers")
    ''')
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_failing_test_reports_the_mocks_recent_audit_and_requests(project):
    project.makepyfile(test_fails='''
        from helpers import status

        def test_fails(mock_ehr):
            token = mock_ehr.issue_token(patient="p00001-diabetes-htn").access_token
            assert status(mock_ehr.fhir_base + "/Observation?patient=p00001-diabetes-htn", token) == 200
            assert status(mock_ehr.fhir_base + "/Patient/p00003-child-asthma", token) == 200

        def test_passes(mock_ehr):
            mock_ehr.issue_token()
    ''')
    result = project.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*- mock_ehr http://127.0.0.1:*: last * audit events -*",
        "*Z token        success  grant_type=direct (control API) client=mockehr-python*patient=p00001-diabetes-htn*",
        "*Z fhir         failure  *Patient/p00003-child-asthma*",
        "*- mock_ehr http://127.0.0.1:*: last 2 requests -*",
        "GET /fhir/Observation?patient=p00001-diabetes-htn -> 200",
        "GET /fhir/Patient/p00003-child-asthma -> 403",
    ])
    assert out.count("audit events -") == 1  # the passing test has no section


def test_the_report_can_be_turned_off(project):
    project.makeini("[pytest]\nmock_ehr_report_lines = 0\n")
    project.makepyfile(test_quiet='''
        def test_fails(mock_ehr):
            mock_ehr.issue_token()
            assert False
    ''')
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "audit events" not in result.stdout.str()


def test_xdist_workers_each_get_their_own_server(project):
    pytest.importorskip("xdist")
    project.makepyfile(test_parallel='''
        import os, time
        import pytest
        from helpers import record, status

        @pytest.mark.parametrize("n", [1, 2])
        def test_worker(mock_ehr, n):
            client = mock_ehr.register_client()
            token = mock_ehr.authorize(client, patient="p00001-diabetes-htn")
            assert status(mock_ehr.fhir_base + "/Patient/p00001-diabetes-htn", token.access_token) == 200
            time.sleep(0.5)  # both workers hold their server at the same time
            assert [r.path for r in mock_ehr.requests if r.path == "/auth/register"] == ["/auth/register"]
            record(f"worker{n}", url=mock_ehr.url, pid=os.getpid(), worker=os.environ["PYTEST_XDIST_WORKER"])
    ''')
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    one, two = project.facts()["worker1"], project.facts()["worker2"]
    assert one["worker"] != two["worker"] and one["pid"] != two["pid"]
    assert one["url"] != two["url"]
