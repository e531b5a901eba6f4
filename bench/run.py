"""Benchmark: cold start, memory and request latencies of `mockehr serve`.

    python bench/run.py [--requests 300] [--skip-large]

Prints, for the default dataset: the cold start of `mockehr serve` to the
first 200 on /fhir/metadata, RSS after start, and p50/p95 of typical reads,
searches and a write; then the same searches against 1,000 generated
patients, and a Bulk Data export of all of them (time, files, peak RSS).
Everything runs on 127.0.0.1 with one keep-alive client. Then bench/api_bench.py:
mockehr inside a test process (MockEHR start, reset, the authorize() helper).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the in-process figures import this checkout, installed or not


def start(args: list[str]) -> tuple[subprocess.Popen, str, float]:
    """Start `mockehr serve --port 0 ...`; answer (process, root url, seconds to the first 200)."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mockehr", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = proc.stdout.readline().strip()
    if not line.startswith("mockehr serving "):
        proc.kill()
        raise SystemExit(f"unexpected first line from mockehr serve: {line!r}")
    root = line.split()[-1].rstrip("/")
    while True:
        try:
            if requests.get(root + "/fhir/metadata", timeout=5).status_code == 200:
                return proc, root, time.perf_counter() - began
        except requests.ConnectionError:
            time.sleep(0.005)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (VmHWM: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(session: requests.Session, method: str, url: str, n: int, **kw) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        response = session.request(method, url, **kw)
        times.append((time.perf_counter() - t) * 1000)
        if response.status_code >= 300:
            raise SystemExit(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
    return percentiles(times)


def pick_targets(session: requests.Session, fhir: str) -> dict:
    """A patient with vital signs and labs, and one of its lab codes."""
    bundle = session.get(f"{fhir}/Observation", params={"category": "laboratory", "_count": 1}).json()
    lab = bundle["entry"][0]["resource"]
    patient = lab["subject"]["reference"].split("/")[-1]
    coding = lab["code"]["coding"][0]
    return {"patient": patient, "code": f"{coding['system']}|{coding['code']}"}


def measure_requests(root: str, n: int, with_write: bool) -> list[tuple[str, float, float]]:
    fhir = root + "/fhir"
    session = session_with_token(root)
    t = pick_targets(session, fhir)
    pid, code = t["patient"], t["code"]
    # Warm the lazily built indexes so we measure steady state.
    session.get(f"{fhir}/Observation", params={"patient": pid})
    rows = [
        (f"Patient/{pid}", *timed(session, "GET", f"{fhir}/Patient/{pid}", n)),
        ("Observation?patient&category=vital-signs",
         *timed(session, "GET", f"{fhir}/Observation", n, params={"patient": pid, "category": "vital-signs"})),
        ("Observation?patient&code&date=ge",
         *timed(session, "GET", f"{fhir}/Observation", n, params={"patient": pid, "code": code, "date": "ge2020-01-01"})),
    ]
    if with_write:
        body = {"resourceType": "Observation", "status": "final", "code": {"text": "bench"},
                "subject": {"reference": f"Patient/{pid}"}, "valueQuantity": {"value": 1, "unit": "1"}}
        rows.append(("POST Observation", *timed(session, "POST", f"{fhir}/Observation", n, json=body,
                                                headers={"Content-Type": "application/fhir+json"})))
    return rows


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def measure_auth(root: str, n: int) -> list[tuple[str, float, float]]:
    """Token endpoint, full EHR launch round trip and client_credentials, against --auto-approve."""
    session = requests.Session()
    fhir = root + "/fhir"
    redirect_uri = "http://localhost:9/callback"
    patient = pick_targets(session_with_token(root), fhir)["patient"]
    launch = session.post(root + "/admin/launches", json={"patient": patient}).json()["launch"]
    scope = "openid fhirUser offline_access launch patient/*.rs"
    token_times, trip_times = [], []
    warmup = min(30, n)  # steady state: the first rounds build indexes and warm caches
    for round_no in range(warmup + n):
        if round_no == warmup:
            token_times.clear()
            trip_times.clear()
        verifier, challenge = pkce()
        began = time.perf_counter()
        answer = session.get(root + "/auth/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": "bench-app", "redirect_uri": redirect_uri, "scope": scope,
            "state": "s", "aud": fhir, "launch": launch, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        t = time.perf_counter()
        token = session.post(root + "/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                         "redirect_uri": redirect_uri, "client_id": "bench-app",
                                                         "code_verifier": verifier}).json()
        token_times.append((time.perf_counter() - t) * 1000)
        read = session.get(f"{fhir}/Patient/{token['patient']}",
                           headers={"Authorization": f"Bearer {token['access_token']}"})
        trip_times.append((time.perf_counter() - began) * 1000)
        if read.status_code != 200:
            raise SystemExit(f"Patient read after launch answered {read.status_code}: {read.text[:300]}")
    client = session.post(root + "/auth/register", json={"grant_types": ["client_credentials"],
                                                         "token_endpoint_auth_method": "client_secret_basic"}).json()
    cc_times = []
    for _ in range(n):
        t = time.perf_counter()
        answer = session.post(root + "/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                              auth=(client["client_id"], client["client_secret"]))
        cc_times.append((time.perf_counter() - t) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"client_credentials answered {answer.status_code}: {answer.text[:300]}")
    print(f"  token endpoint (code exchange, id_token + refresh): {1000 * n / sum(token_times):.0f} requests/s "
          "sequential, one client")
    return [("POST /auth/token (authorization_code)", *percentiles(token_times)),
            ("EHR launch: authorize -> token -> Patient read", *percentiles(trip_times)),
            ("POST /auth/token (client_credentials, secret)", *percentiles(cc_times))]


def session_with_token(root: str) -> requests.Session:
    session = requests.Session()
    client = session.post(root + "/auth/register", json={"grant_types": ["client_credentials"],
                                                         "token_endpoint_auth_method": "client_secret_basic"}).json()
    token = session.post(root + "/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                         auth=(client["client_id"], client["client_secret"])).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def measure_export(root: str, pid: int, path: str, title: str) -> None:
    """A Bulk Data $export: kick-off to manifest, then every file downloaded; the server's RSS
    sampled while it runs (the files stream to disk, not into memory)."""
    session = session_with_token(root)
    fhir = root + "/fhir"
    before = rss_mib(pid)
    began = time.perf_counter()
    kickoff = session.get(f"{fhir}/{path}", headers={"Accept": "application/fhir+json", "Prefer": "respond-async"})
    if kickoff.status_code != 202:
        raise SystemExit(f"$export answered {kickoff.status_code}: {kickoff.text[:300]}")
    peak, polls = before, 0
    while True:
        status = session.get(kickoff.headers["Content-Location"], headers={"Accept": "application/json"})
        peak = max(peak, rss_mib(pid))
        polls += 1
        if status.status_code != 202:
            break
        time.sleep(0.05)  # faster than its Retry-After, to sample the memory often
    exported = time.perf_counter() - began
    if status.status_code != 200:
        raise SystemExit(f"export status answered {status.status_code}: {status.text[:300]}")
    manifest = status.json()
    resources = sum(entry["count"] for entry in manifest["output"])
    t = time.perf_counter()
    size = 0
    for entry in manifest["output"]:
        with session.get(entry["url"], stream=True) as answer:
            for block in answer.iter_content(1 << 16):
                size += len(block)
    downloaded = time.perf_counter() - t
    print(f"\n1,000 patients: Bulk Data {title} ({resources} resources, {len(manifest['output'])} "
          f"files, {size / 2**20:.1f} MiB NDJSON)")
    print(f"  kick-off to manifest: {exported:.2f} s ({resources / exported:,.0f} resources/s, {polls} polls)")
    print(f"  download of every file: {downloaded:.2f} s ({size / 2**20 / downloaded:.0f} MiB/s)")
    print(f"  server RSS: {before:.1f} MiB before, peak {peak:.1f} MiB while exporting "
          f"(+{peak - before:.1f} MiB), VmHWM {rss_mib(pid, 'VmHWM'):.1f} MiB")


def report(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'request':44} {'p50 ms':>8} {'p95 ms':>8}")
    for name, p50, p95 in rows:
        print(f"  {name:44} {p50:8.2f} {p95:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5, help="cold starts to time (median reported)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 1,000-patient run")
    opts = parser.parse_args()

    starts, rss = [], []
    for _ in range(opts.starts):
        proc, root, seconds = start([])
        starts.append(seconds)
        rss.append(rss_mib(proc.pid))
        proc.terminate()
        proc.wait()
    print(f"default dataset: cold start to first 200 on /fhir/metadata: median {statistics.median(starts):.3f} s "
          f"(min {min(starts):.3f}, max {max(starts):.3f}, {opts.starts} starts)")
    print(f"default dataset: RSS after start: {statistics.median(rss):.1f} MiB")

    proc, root, _ = start(["--auto-approve"])
    try:
        report("default dataset", measure_requests(root, opts.requests, with_write=True))
        report("authorization (default dataset, --auto-approve)", measure_auth(root, opts.requests))
        print(f"  RSS after the run: {rss_mib(proc.pid):.1f} MiB")
    finally:
        proc.terminate()
        proc.wait()

    from mockehr.config import Settings
    from mockehr.server import ServerThread

    with ServerThread(Settings(port=0, auto_approve=True)) as server:  # client and server share one process
        report("authorization in-process (ServerThread, --auto-approve)", measure_auth(server.url, opts.requests))

    import api_bench  # bench/api_bench.py: MockEHR start, reset and the authorize() helper

    api_bench.report(opts.requests)

    if opts.skip_large:
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mockehr", "seed", "--patients", "1000", "--out", tmp],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seeded = time.perf_counter() - t
        resources = sum(len(f.read_bytes().splitlines()) for f in Path(tmp).glob("*.ndjson"))
        print(f"\n1,000 patients: `mockehr seed` took {seeded:.1f} s for {resources} resources")
        proc, root, seconds = start(["--dataset", tmp])
        try:
            print(f"1,000 patients: cold start {seconds:.3f} s, RSS after start {rss_mib(proc.pid):.1f} MiB")
            report("1,000 patients", measure_requests(root, opts.requests, with_write=False))
            print(f"  RSS after the run: {rss_mib(proc.pid):.1f} MiB")
            measure_export(root, proc.pid, "$export", "system-level $export")
            group = session_with_token(root).get(root + "/fhir/Group", params={"_count": 1}).json()["entry"][0]
            measure_export(root, proc.pid, f"Group/{group['resource']['id']}/$export",
                           "Group $export, building most search indexes on the way")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
