"""mockehr's pytest plugin (entry point pytest11): fixtures, a marker, and failure reports.

- `mock_ehr`: a MockEHR (auto-approve on) shared by the session (one per xdist worker), its state
  reset before each test, so each test starts from the seed data with no clients, tokens or faults.
- `@pytest.mark.mock_ehr(faults=[...], **options)`: faults in force from the test's start (put back
  by ehr.reset(), like `serve --fault`); any other `serve` option gives the test its own server.
- `mock_ehr_factory`: `mock_ehr_factory(**options)` starts more servers (auto-approve on unless
  you say otherwise), stopped at the test's end.
- When a test that used them fails, the report gets a section with each server's recent audit
  events and requests.

pytest loads this module in every session where mockehr is installed, so it imports nothing
heavy: Flask and the app load when a test first asks for a fixture.
"""

from __future__ import annotations

import pytest

_SERVERS = pytest.StashKey[list]()
DEFAULT_REPORT_LINES = 25


def pytest_addoption(parser) -> None:
    parser.addini("mock_ehr_report_lines", "how many recent audit events and requests a failed test's report "
                  f"shows per mock_ehr server (default {DEFAULT_REPORT_LINES}; 0: none)",
                  default=str(DEFAULT_REPORT_LINES))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "mock_ehr(faults=[...], **options): start the mock_ehr fixture with these "
                            "faults (fault specs) in force; other mockehr serve options give the test its own server")


def _remember(node, ehr) -> None:
    node.stash.setdefault(_SERVERS, []).append(ehr)


@pytest.fixture(scope="session")
def _mock_ehr_server():
    from mockehr.api import MockEHR

    ehr = MockEHR(auto_approve=True).start()
    yield ehr
    ehr.stop()


def _marker_options(node) -> dict:
    options: dict = {}
    for marker in reversed(list(node.iter_markers("mock_ehr"))):  # the closest marker wins
        if marker.args:
            raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.mock_ehr takes keywords only, e.g. "
                                    "mock_ehr(faults=['throttle:every=2'], strict=True)")
        options.update(marker.kwargs)
    return options


@pytest.fixture
def mock_ehr(request):
    """A running MockEHR, auto-approve on, state reset (see the module docstring)."""
    options = {"auto_approve": True, **_marker_options(request.node)}
    faults = options.pop("faults", ())
    faults = (faults,) if isinstance(faults, str) else tuple(faults)
    shared = request.getfixturevalue("_mock_ehr_server") if _fits_shared(options) else None
    if shared is None:
        from mockehr.api import MockEHR

        ehr = MockEHR(faults=faults, **options).start()
        _remember(request.node, ehr)
        yield ehr
        ehr.stop()
        return
    shared.reset(faults=faults)  # these faults are the test's start: ehr.reset() puts them back
    _remember(request.node, shared)
    try:
        yield shared
    finally:
        shared.settings.faults = ()  # the next test's reset() takes them away


def _fits_shared(options: dict) -> bool:
    from mockehr.api import settings_for

    wanted, shared = settings_for(options), settings_for({"auto_approve": True})
    return all(getattr(wanted, name) == getattr(shared, name) for name in vars(shared) if name != "faults")


@pytest.fixture
def mock_ehr_factory(request):
    """`mock_ehr_factory(**options)` -> a started MockEHR of its own (auto_approve=True unless given)."""
    from mockehr.api import MockEHR

    made = []

    def make(**options):
        ehr = MockEHR(**{"auto_approve": True, **options}).start()
        made.append(ehr)
        _remember(request.node, ehr)
        return ehr

    yield make
    for ehr in made:
        ehr.stop()


@pytest.hookimpl(hookwrapper=True)  # the old-style wrapper: works with every pytest still around
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        lines = int(item.config.getini("mock_ehr_report_lines") or 0)
        for ehr in item.stash.get(_SERVERS, []) if lines > 0 else []:
            try:
                report.sections.extend(report_sections(ehr, lines))
            except Exception as exc:  # a report must never hide the test's own failure
                report.sections.append(("mock_ehr", f"(could not read the mock's state: {exc!r})"))


def report_sections(ehr, lines: int = DEFAULT_REPORT_LINES) -> list[tuple[str, str]]:
    """(title, text) sections: the last `lines` audit events and requests of one server."""
    where = ehr.url if ehr.running else "stopped"
    events = ehr.audit()[-lines:]
    requests = list(ehr.requests)[-lines:]
    return [(f"mock_ehr {where}: last {len(events)} audit events", "\n".join(map(format_event, events)) or "(none)"),
            (f"mock_ehr {where}: last {len(requests)} requests", "\n".join(map(str, requests)) or "(none)")]


def format_event(event: dict) -> str:
    """One line: time, type, outcome, then the other fields as key=value."""
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("id", "time", "type", "outcome"))
    return f"{event['time']} {event['type']:<12} {event['outcome']:<8} {rest}".rstrip()
