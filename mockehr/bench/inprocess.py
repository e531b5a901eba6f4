"""mockehr inside a test process: what the Python API and the pytest fixture cost.

- the first MockEHR().start() in a fresh process, dataset load included, to the first
  200 on /fhir/metadata (imports timed apart), each in a child process of its own;
- warm starts (start + first 200) and stop, later in the same process, with and without
  the gc.freeze() that mockehr.store.dataset does after loading the dataset;
- reset() after a test's worth of state (writes, a client, tokens, a fault);
- the helpers: authorize() (authorize + PKCE + token exchange over HTTP) on an
  --auto-approve server, standalone, through the login/consent pages, backend_token(),
  issue_token().

    python -m mockehr.bench.inprocess [--rounds 200]     # these figures alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

P1 = "p00001-diabetes-htn"


def ms(seconds: float) -> float:
    return seconds * 1000


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered), 3),
            "p95": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 3), "n": len(ordered)}


def _ready(ehr) -> None:
    with urllib.request.urlopen(ehr.fhir_base + "/metadata", timeout=30) as answer:
        assert answer.status == 200


# -- child processes: one fresh interpreter per figure that needs one ------------------------
def child_first_start() -> dict:
    began = time.perf_counter()
    import mockehr.api  # noqa: F401 - the imports a test process pays once
    import mockehr.app  # noqa: F401
    imported = time.perf_counter()
    from mockehr import MockEHR

    ehr = MockEHR().start()
    _ready(ehr)
    started = time.perf_counter()
    ehr.stop()
    return {"import_ms": ms(imported - began), "first_start_ms": ms(started - imported)}


def child_warm(starts: int) -> dict:
    from mockehr import MockEHR

    MockEHR().start().stop()  # the dataset is loaded (and, unless disabled, frozen) here
    start_times, stop_times = [], []
    for _ in range(starts):
        began = time.perf_counter()
        ehr = MockEHR().start()
        _ready(ehr)
        start_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        ehr.stop()
        stop_times.append(time.perf_counter() - began)
    return {"start": [ms(t) for t in start_times], "stop": [ms(t) for t in stop_times]}


def child_env(extra: dict | None = None) -> dict:
    """The environment of a child that must import this same mockehr (a checkout or a wheel)."""
    import mockehr

    here = os.path.dirname(os.path.dirname(os.path.abspath(mockehr.__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else ""), **(extra or {})}


def run_child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-m", "mockehr.bench.inprocess", "--child", *args], capture_output=True,
                         text=True, env=child_env(env), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- in this process ----------------------------------------------------------------------------
def measure_reset(rounds: int) -> list[float]:
    from mockehr import MockEHR

    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "bench"},
                   "subject": {"reference": f"Patient/{P1}"}, "valueString": "x"}
    body = json.dumps(observation).encode()
    times = []
    with MockEHR(auto_approve=True, faults=["latency:ms=0"]) as ehr:
        for _ in range(rounds):
            token = ehr.issue_token("patient/*.cruds", patient=P1).access_token
            for _ in range(5):
                request = urllib.request.Request(ehr.fhir_base + "/Observation", data=body, method="POST", headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
                urllib.request.urlopen(request, timeout=30).close()
            ehr.register_client("secret")
            ehr.faults.add("throttle:every=100")
            began = time.perf_counter()
            ehr.reset()
            times.append(time.perf_counter() - began)
    return [ms(t) for t in times]


def timed(action, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return [ms(t) for t in times]


def measure_flows(rounds: int) -> dict:
    from mockehr import MockEHR

    figures = {}
    with MockEHR(auto_approve=True) as ehr:
        client = ehr.register_client()
        ehr.authorize(client, patient=P1)  # keys made, indexes warm
        figures["authorize() round trip, auto-approve (launch + authorize + token)"] = \
            timed(lambda: ehr.authorize(client, patient=P1), rounds)
        figures["authorize() round trip, auto-approve, standalone (user=Patient/..)"] = \
            timed(lambda: ehr.authorize(client, user=f"Patient/{P1}"), rounds)
        backend = ehr.register_client("private_key_jwt", grant_types=["client_credentials"])
        figures["backend_token() (ES384 assertion, client_credentials)"] = \
            timed(lambda: ehr.backend_token(backend), rounds)
        figures["issue_token() (direct mint)"] = timed(lambda: ehr.issue_token(patient=P1), rounds)
    with MockEHR() as paged:
        client = paged.register_client()
        paged.authorize(client)
        figures["authorize() round trip through login, picker and consent pages"] = \
            timed(lambda: paged.authorize(client), max(rounds // 4, 10))
    return figures


def measure(rounds: int = 200, first_starts: int = 7, warm_starts: int = 30, progress=lambda text: None) -> dict:
    """Every figure, as a dict (medians and p95 in ms)."""
    out: dict = {}
    progress("in-process: first MockEHR().start() in fresh processes")
    firsts = [run_child(["first-start"]) for _ in range(first_starts)]
    out["first_start_ms"] = stats([f["first_start_ms"] for f in firsts])
    out["import_ms"] = stats([f["import_ms"] for f in firsts])
    for key, env in (("warm_start", {}), ("warm_start_no_gc_freeze", {"MOCKEHR_GC_FREEZE": "0"})):
        progress(f"in-process: {key.replace('_', ' ')}")
        warm = run_child(["warm", str(warm_starts)], env)
        out[key + "_ms"] = stats(warm["start"])
        out[key.replace("start", "stop") + "_ms"] = stats(warm["stop"])
    progress("in-process: reset()")
    out["reset_ms"] = stats(measure_reset(max(rounds // 4, 20)))
    progress("in-process: the helpers")
    out["helpers_ms"] = {name: stats(times) for name, times in measure_flows(rounds).items()}
    return out


def lines(figures: dict) -> list[str]:
    """The figures in words, one per line (medians, p95 in parentheses)."""
    def f(s: dict, digits: int = 1) -> str:
        return f"{s['median']:.{digits}f} ms ({s['p95']:.{digits}f})"

    first = figures["first_start_ms"]
    out = [f"first MockEHR().start() in a fresh process, to the first 200 (dataset load included): {f(first)}, "
           f"{first['n']} processes; imports before it {figures['import_ms']['median']:.0f} ms"]
    for key, label in (("warm_start", "gc.freeze() after the dataset load (default)"),
                       ("warm_start_no_gc_freeze", "without it (MOCKEHR_GC_FREEZE=0)")):
        start, stop = figures[key + "_ms"], figures[key.replace("start", "stop") + "_ms"]
        out.append(f"warm start to the first 200, {label}: {f(start)}; stop {f(stop, 2)}; {start['n']} starts")
    out.append(f"reset() after 5 writes, a client, a token and a fault: {f(figures['reset_ms'], 2)}")
    for name, s in figures["helpers_ms"].items():
        out.append(f"{name}: {f(s, 2)}, {s['n']} rounds")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        kind = opts.child[0]
        result = child_first_start() if kind == "first-start" else child_warm(int(opts.child[1]))
        print(json.dumps(result))
        return
    print("mockehr in a test process (medians, p95 in parentheses)")
    for line in lines(measure(opts.rounds)):
        print("  " + line)


if __name__ == "__main__":
    main()
