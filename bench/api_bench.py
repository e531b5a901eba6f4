"""Benchmark: mockehr inside a test process (the Python API and the pytest fixture's costs).

    python bench/api_bench.py [--rounds 200]

Prints medians (and p95) of:
- the first MockEHR().start() in a fresh process, dataset load included, to the first 200 on
  /fhir/metadata (imports timed apart); in separate child processes, one start each;
- warm starts (start + first 200) and stop, later in the same process, with and without the
  gc.freeze() that mockehr.store.dataset does after loading the dataset;
- reset() after a test's worth of state (writes, a client, tokens);
- the authorize() helper round trip (authorize + PKCE + token exchange over HTTP) on an
  --auto-approve server, the same through the login/consent pages, and backend_token().
bench/run.py runs this too. Targets (issue 6): start < 150 ms, reset < 10 ms.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, installed or not

P1 = "p00001-diabetes-htn"


def ms(seconds: float) -> float:
    return seconds * 1000


def stats(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def ready(ehr) -> None:
    with urllib.request.urlopen(ehr.fhir_base + "/metadata", timeout=30) as answer:
        assert answer.status == 200


# -- child processes: one fresh interpreter per figure that needs one -----------------------
def child_first_start() -> dict:
    began = time.perf_counter()
    import mockehr.api  # noqa: F401 - the imports a test process pays once
    import mockehr.app  # noqa: F401
    imported = time.perf_counter()
    from mockehr import MockEHR

    ehr = MockEHR().start()
    ready(ehr)
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
        ready(ehr)
        start_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        ehr.stop()
        stop_times.append(time.perf_counter() - began)
    return {"start": [ms(t) for t in start_times], "stop": [ms(t) for t in stop_times]}


def run_child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})}, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- in this process ------------------------------------------------------------------------------
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


def timed(action, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return [ms(t) for t in times]


def report(rounds: int = 200, first_starts: int = 7, warm_starts: int = 30) -> None:
    print("\nmockehr in a test process (bench/api_bench.py; medians, p95 in parentheses)")
    firsts = [run_child(["first-start"]) for _ in range(first_starts)]
    first, first95 = stats([f["first_start_ms"] for f in firsts])
    print(f"  first MockEHR().start() in a fresh process, to the first 200 (dataset load included): "
          f"{first:.1f} ms ({first95:.1f}), {first_starts} processes; imports before it "
          f"{statistics.median(f['import_ms'] for f in firsts):.0f} ms")
    for label, env in (("gc.freeze() after the dataset load (default)", {}),
                       ("without it (MOCKEHR_GC_FREEZE=0)", {"MOCKEHR_GC_FREEZE": "0"})):
        warm = run_child(["warm", str(warm_starts)], env)
        (start, start95), (stop, stop95) = stats(warm["start"]), stats(warm["stop"])
        print(f"  warm start to the first 200, {label}: {start:.1f} ms ({start95:.1f}); stop {stop:.2f} ms "
              f"({stop95:.2f}); {warm_starts} starts")
    reset, reset95 = stats(measure_reset(max(rounds // 4, 20)))
    print(f"  reset() after 5 writes, a client, a token and a fault: {reset:.2f} ms ({reset95:.2f})")
    for name, times in measure_flows(rounds).items():
        median, p95 = stats(times)
        print(f"  {name}: {median:.2f} ms ({p95:.2f}), {len(times)} rounds")


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
    report(opts.rounds)


if __name__ == "__main__":
    main()
