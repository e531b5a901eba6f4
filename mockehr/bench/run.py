"""`python -m mockehr.bench`: every performance figure of issue 9 on this machine, a table and a JSON file.

Where things run: the server under test is a child process (mockehr's app and the
framework floor on one port, see mockehr.bench.target); the load comes from this
process over loopback, one keep-alive connection per concurrent worker. Every request
row is measured at concurrency 1 and 8, each right after the same measurement of the
floor (a bare Flask endpoint in the same server process, the same client, the same
concurrency), and printed with the ratio, because absolute times drift on a shared
machine and ratios much less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from mockehr.bench import inprocess
from mockehr.bench.load import BenchError, Connection, run_load
from mockehr.bench.scenarios import Context, auth_scenarios, bearer, expect, fhir_scenarios, floor_unit

CONCURRENCIES = (1, 8)
SMART_CONFIGURATION = "/fhir/.well-known/smart-configuration"


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


# -- facts about this machine ---------------------------------------------------------------------
def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "cpu": cpu, "memory_gib": memory, "system": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version(), "load_average_1min_at_start": load}


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (VmHWM: its peak so far)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def median_of(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "n": len(values)}


# -- servers --------------------------------------------------------------------------------------
class Server:
    """A child process serving mockehr + the floor; `root` is its URL, `pid` the process that serves."""

    def __init__(self, proc: subprocess.Popen, root: str, pid: int, kind: str):
        self.proc, self.root, self.pid, self.kind = proc, root, pid, kind

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_ready(root: str, proc: subprocess.Popen, path: str, deadline: float = 120.0) -> None:
    began = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise BenchError(f"the server at {root} exited with {proc.returncode} before answering")
        conn = Connection(root, timeout=30)
        try:
            if conn.get(path).status == 200:
                return
        except OSError:
            time.sleep(0.01)
        finally:
            conn.close()
        if time.perf_counter() - began > deadline:
            raise BenchError(f"the server at {root} did not answer {path} in {deadline:.0f} s")


def start_lean(dataset: Path | None = None) -> Server:
    args = [sys.executable, "-m", "mockehr.bench.target"] + (["--dataset", str(dataset)] if dataset else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=inprocess.child_env())
    line = proc.stdout.readline()
    try:
        ready = orjson.loads(line)
    except orjson.JSONDecodeError:
        proc.kill()
        raise BenchError(f"the bench target did not start: {line!r}") from None
    return Server(proc, ready["url"], ready["pid"], "lean")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gunicorn") is not None


def start_gunicorn(threads: int = 8, dataset: Path | None = None) -> Server:
    """The Procfile's setting: one worker (the store is in-process), threads."""
    port = free_port()
    env = inprocess.child_env({"MOCKEHR_AUTO_APPROVE": "true"})
    if dataset:
        env["MOCKEHR_DATASET_DIR"] = str(dataset)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", str(threads), "-b",
                             f"127.0.0.1:{port}", "--log-level", "warning", "mockehr.bench.target:gunicorn_app()"],
                            env=env, stdout=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    _wait_ready(root, proc, "/_floor/")
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    pids = children.read_text().split() if children.exists() else []
    return Server(proc, root, int(pids[0]) if pids else proc.pid, f"gunicorn -w 1 --threads {threads}")


def cold_start(starts: int) -> dict:
    """`mockehr serve --port 0` (the CLI, in a fresh interpreter) to the first 200 on smart-configuration."""
    times, rss = [], []
    for _ in range(starts):
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mockehr", "serve", "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=inprocess.child_env())
        try:
            line = proc.stdout.readline().strip()
            if not line.startswith("mockehr serving "):
                raise BenchError(f"unexpected first line from mockehr serve: {line!r}")
            root = line.split()[-1].rstrip("/")
            _wait_ready(root, proc, SMART_CONFIGURATION)
            times.append(time.perf_counter() - began)
            rss.append(rss_mib(proc.pid))
        finally:
            proc.terminate()
            proc.wait()
    return {"seconds": median_of(times), "rss_after_start_mib": round(statistics.median(rss), 1),
            "command": "python -m mockehr serve --port 0"}


# -- request rows -----------------------------------------------------------------------------------
def measure_rows(root: str, scenarios: list, n: int, concurrencies=CONCURRENCIES, warmup: int = 20) -> list[dict]:
    rows = []
    setup = Connection(root)
    try:
        for scenario in scenarios:
            progress(f"{scenario.name}")
            warm = scenario.prepare(setup, warmup)
            for item in warm:  # steady state: the first rounds build indexes and warm caches
                scenario.unit(setup, item)
            for concurrency in concurrencies:
                items = scenario.prepare(setup, n)
                # the floor right before and right after (half each): drift on a shared machine hits both
                before = run_load(root, floor_unit(scenario.shape), [None] * (n // 2), concurrency)
                run = run_load(root, scenario.unit, items, concurrency)
                after = run_load(root, floor_unit(scenario.shape), [None] * (n - n // 2), concurrency)
                floor = before.merge(after)
                rows.append({"key": scenario.key, "name": scenario.name, "concurrency": concurrency,
                             "requests_per_unit": len(scenario.shape), "fhir": scenario.fhir, **run.as_dict(),
                             "floor": floor.as_dict(), "x_floor_p50": round(run.p50 / floor.p50, 2),
                             "x_floor_per_s": round(floor.rate / run.rate, 2)})
    finally:
        setup.close()
    return rows


def request_section(title: str, server_kind: str, root: str, scenarios: list, n: int,
                    concurrencies=CONCURRENCIES) -> dict:
    return {"title": title, "server": server_kind, "rows": measure_rows(root, scenarios, n, concurrencies)}


# -- Bulk Data export -------------------------------------------------------------------------------
def measure_export(root: str, pid: int, token: str, path: str, title: str) -> dict:
    """Kick-off to manifest, then every file downloaded; the server's RSS sampled while it runs."""
    conn = Connection(root, timeout=600)
    auth = [bearer(token)]
    try:
        before = rss_mib(pid)
        began = time.perf_counter()
        kickoff = expect(conn.get(f"/fhir/{path}", [("Accept", "application/fhir+json"),
                                                     ("Prefer", "respond-async"), *auth]), 202, f"{path} kick-off")
        status_path = "/" + kickoff.headers["content-location"].split("/", 3)[3]
        peak, polls = before, 0
        while True:
            status = conn.get(status_path, [("Accept", "application/json"), *auth])
            peak = max(peak, rss_mib(pid))
            polls += 1
            if status.status != 202:
                break
            time.sleep(0.05)  # faster than its Retry-After, to sample the memory often
        exported = time.perf_counter() - began
        manifest = expect(status, 200, "export status").json()
        resources = sum(entry["count"] for entry in manifest["output"])
        began = time.perf_counter()
        size = 0
        for entry in manifest["output"]:
            size += len(expect(conn.get("/" + entry["url"].split("/", 3)[3], auth), 200, "export file").body)
            peak = max(peak, rss_mib(pid))
        downloaded = time.perf_counter() - began
    finally:
        conn.close()
    return {"title": title, "resources": resources, "files": len(manifest["output"]), "mib": round(size / 2**20, 1),
            "kickoff_to_manifest_s": round(exported, 3), "resources_per_s": round(resources / exported),
            "polls": polls, "download_s": round(downloaded, 3), "download_mib_per_s": round(size / 2**20 / downloaded),
            "rss_before_mib": before, "rss_peak_mib": peak, "vmhwm_mib": rss_mib(pid, "VmHWM")}


def large_section(n: int, patients: int = 1000) -> dict:
    out: dict = {"patients": patients}
    with tempfile.TemporaryDirectory(prefix="mockehr-bench-") as tmp:
        progress(f"mockehr seed --patients {patients}")
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mockehr", "seed", "--patients", str(patients), "--out", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=inprocess.child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise BenchError(f"mockehr seed exited with {proc.returncode}")
        out["seed_s"] = round(time.perf_counter() - began, 2)
        out["seed_peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
        out["resources"] = sum(len(f.read_bytes().splitlines()) for f in Path(tmp).glob("*.ndjson"))
        progress(f"serving {patients} patients")
        began = time.perf_counter()
        server = start_lean(Path(tmp))
        try:
            _wait_ready(server.root, server.proc, SMART_CONFIGURATION)
            out["start_s"] = round(time.perf_counter() - began, 3)
            out["rss_after_start_mib"] = rss_mib(server.pid)
            ctx = Context(server.root)
            out["requests"] = request_section(f"{patients} patients", server.kind, server.root,
                                              fhir_scenarios(ctx, with_write=False), n)
            out["rss_after_load_mib"] = rss_mib(server.pid)
            progress("Bulk Data: system-level $export")
            exports = [measure_export(server.root, server.pid, ctx.system_token, "$export", "system-level $export")]
            group = expect(Connection(server.root).get("/fhir/Group?_count=1", [bearer(ctx.system_token)]), 200,
                           "Group search").json()["entry"][0]["resource"]["id"]
            progress("Bulk Data: Group $export")
            exports.append(measure_export(server.root, server.pid, ctx.system_token, f"Group/{group}/$export",
                                          "Group $export (builds most search indexes on the way)"))
            out["exports"] = exports
            out["vmhwm_mib"] = rss_mib(server.pid, "VmHWM")
        finally:
            server.stop()
    return out


def in_process_requests(n: int) -> dict:
    """The authorization rows with the server in this process (ServerThread): a test suite's setting."""
    from mockehr.bench.target import build
    from mockehr.config import Settings
    from mockehr.server import ServerThread

    settings = Settings(port=0, auto_approve=True)
    with ServerThread(settings, app=build(settings)) as server:
        ctx = Context(server.url)
        wanted = ("token_code", "launch_round_trip", "launch_round_trip_read", "token_client_credentials")
        scenarios = [s for s in auth_scenarios(ctx) if s.key in wanted]
        return request_section("in-process (ServerThread; client and server share one interpreter)",
                               "lean, in this process", server.url, scenarios, n, (1,))


# -- the report -------------------------------------------------------------------------------------
def targets(results: dict) -> list[dict]:
    def row(section: dict | None, key: str, concurrency: int = 1) -> dict | None:
        for r in (section or {}).get("rows", []):
            if r["key"] == key and r["concurrency"] == concurrency:
                return r
        return None

    out = []

    def target(name: str, value, limit: float, unit: str, below: bool = True) -> None:
        if value is None:
            out.append({"target": name, "value": None, "limit": limit, "unit": unit, "met": None})
            return
        met = value < limit if below else value >= limit
        out.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": met})

    main = results.get("requests")
    cold = results.get("cold_start")
    target("cold start (CLI) to the first 200 on smart-configuration", cold and cold["seconds"]["median"], 0.8, "s")
    ip = results.get("in_process")
    target("in-process MockEHR().start() (first, dataset load included)",
           ip and ip["first_start_ms"]["median"], 150, "ms")
    target("reset()", ip and ip["reset_ms"]["median"], 10, "ms")
    rss = [v for v in (cold and cold["rss_after_start_mib"], results.get("rss_after_load_mib")) if v is not None]
    target("RSS, default data (after start and after the load)", max(rss) if rss else None, 100, "MiB")
    large = results.get("large")
    target("RSS, 1,000 patients (peak, exports included)", large and large.get("vmhwm_mib"), 1536, "MiB")
    token = row(main, "token_code")
    target("token endpoint (authorization_code), concurrency 1", token and token["per_s"], 350, "req/s", below=False)
    trip = row(main, "launch_round_trip")
    target("EHR launch round trip (authorize -> token) p50", trip and trip["p50_ms"], 6, "ms")
    for key, label in (("search_compartment", "compartment search"),
                       ("search_compartment_granular", "compartment search, granular scope")):
        found = row(main, key)
        target(f"{label} p50, default data", found and found["p50_ms"], 5, "ms")
        found = row(large and large.get("requests"), key)
        target(f"{label} p50, 1,000 patients", found and found["p50_ms"], 10, "ms")
    for section in (main, large and large.get("requests")):
        for r in (section or {}).get("rows", []):
            if r["fhir"]:
                target(f"{r['key']} c={r['concurrency']} ({section['title']}) at most 3x the floor (p50)",
                       r["x_floor_p50"], 3.0001, "x")
    return out


def table_lines(section: dict) -> list[str]:
    lines = [f"{section['title']} [{section['server']}]",
             f"  {'request':60} {'c':>2} {'p50 ms':>7} {'p95 ms':>7} {'per s':>7} | {'floor p50':>9} {'per s':>7}"
             f" | {'x floor p50':>11} {'x per s':>7}"]
    for r in section["rows"]:
        name = r["name"] if r["concurrency"] == CONCURRENCIES[0] or len(section["rows"]) < 2 else ""
        f = r["floor"]
        lines.append(f"  {name[:60]:60} {r['concurrency']:>2} {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {r['per_s']:7.0f}"
                     f" | {f['p50_ms']:9.2f} {f['per_s']:7.0f} | {r['x_floor_p50']:10.2f}x {r['x_floor_per_s']:6.2f}x")
    return lines


def report_lines(results: dict) -> list[str]:
    m = results["machine"]
    out = [f"mockehr bench, {m['date']}: {m['system']}, {m['cpus']} CPUs ({m['cpu'] or 'unknown CPU'}), "
           f"{m['memory_gib']} GiB, Python {m['python']}, 1-min load {m['load_average_1min_at_start']:.2f} at start",
           f"{results['options']['requests']} requests per row; floor = a bare Flask endpoint in the same server "
           "process, same client, same concurrency, measured right before each row", ""]
    cold = results.get("cold_start")
    if cold:
        s = cold["seconds"]
        out.append(f"cold start `mockehr serve` to the first 200 on smart-configuration: median {s['median']:.3f} s "
                   f"(min {s['min']:.3f}, max {s['max']:.3f}, {s['n']} starts); RSS after start "
                   f"{cold['rss_after_start_mib']:.1f} MiB")
    if "rss_after_start_mib" in results:
        out.append(f"bench server RSS: after start {results['rss_after_start_mib']:.1f} MiB, after the request rows "
                   f"{results['rss_after_load_mib']:.1f} MiB")
    for key in ("requests", "in_process_requests"):
        if key in results:
            out += ["", *table_lines(results[key])]
    if "in_process" in results:
        out += ["", "mockehr in a test process (medians, p95 in parentheses)"]
        out += ["  " + line for line in inprocess.lines(results["in_process"])]
    large = results.get("large")
    if large:
        out += ["", f"{large['patients']:,} patients: `mockehr seed` {large['seed_s']:.1f} s for {large['resources']:,} "
                f"resources (peak RSS {large['seed_peak_rss_mib']:.0f} MiB); start {large['start_s']:.2f} s, RSS after "
                f"start {large['rss_after_start_mib']:.1f} MiB, after the rows {large['rss_after_load_mib']:.1f} MiB", ""]
        out += table_lines(large["requests"])
        for e in large.get("exports", []):
            out += [f"  Bulk Data {e['title']}: {e['resources']:,} resources, {e['files']} files, {e['mib']} MiB NDJSON",
                    f"    kick-off to manifest {e['kickoff_to_manifest_s']:.2f} s ({e['resources_per_s']:,} resources/s, "
                    f"{e['polls']} polls); download {e['download_s']:.2f} s ({e['download_mib_per_s']} MiB/s)",
                    f"    server RSS {e['rss_before_mib']:.1f} MiB before, peak {e['rss_peak_mib']:.1f} MiB while "
                    f"exporting (+{e['rss_peak_mib'] - e['rss_before_mib']:.1f}), VmHWM {e['vmhwm_mib']:.1f} MiB"]
    for section in results.get("other_servers", []):
        out += ["", *table_lines(section)]
        if "rss_after_load_mib" in section:
            out.append(f"  RSS after the rows: {section['rss_after_load_mib']:.1f} MiB")
    out += ["", "targets (issue 9)"]
    for t in results["targets"]:
        verdict = "n/a (skipped)" if t["met"] is None else "met" if t["met"] else "MISSED"
        value = "-" if t["value"] is None else f"{t['value']:g} {t['unit']}"
        limit = f"{'<' if t['unit'] != 'req/s' else '>='} {t['limit']:g} {t['unit']}".replace("3.0001", "3")
        out.append(f"  {verdict:14} {t['target']}: {value} (target {limit})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mockehr.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip the 1,000-patient runs (seed, serve, export) and other servers; fewer starts")
    parser.add_argument("--skip-large", action="store_true", help="skip the 1,000-patient runs only")
    parser.add_argument("--requests", type=int, default=300, help="units per row and concurrency (default 300)")
    parser.add_argument("--starts", type=int, default=None, help="cold starts to time (default 5, --quick 3)")
    parser.add_argument("--patients", type=int, default=1000, help="size of the large dataset (default 1000)")
    parser.add_argument("--servers", default=None,
                        help="comma-separated servers to compare beyond the lean one: gunicorn "
                             "(default: gunicorn when installed, none with --quick)")
    parser.add_argument("--json", dest="json_path", type=Path, default=Path("bench-results.json"),
                        help="where to write the results (default bench-results.json)")
    parser.add_argument("--only", default=None,
                        help="comma-separated sections: cold,requests,inprocess,large,servers (default: all)")
    opts = parser.parse_args(argv)
    quick = opts.quick
    starts = opts.starts or (3 if quick else 5)
    servers = [s for s in (opts.servers.split(",") if opts.servers is not None else
                           ([] if quick or not gunicorn_available() else ["gunicorn"])) if s]
    sections = set((opts.only or "cold,requests,inprocess,large,servers").split(","))
    n = opts.requests

    results: dict = {"machine": machine(), "options": {"quick": quick, "requests": n, "starts": starts,
                                                       "servers": ["lean", *servers], "sections": sorted(sections)}}
    began = time.perf_counter()
    if "cold" in sections:
        progress(f"cold starts ({starts})")
        results["cold_start"] = cold_start(starts)
    if "requests" in sections:
        server = start_lean()
        try:
            _wait_ready(server.root, server.proc, SMART_CONFIGURATION)
            results["rss_after_start_mib"] = rss_mib(server.pid)
            ctx = Context(server.root)
            section = request_section("default dataset", "lean (mockehr.http11), separate process", server.root,
                                      auth_scenarios(ctx) + fhir_scenarios(ctx), n)
            results["requests"] = section
            results["rss_after_load_mib"] = rss_mib(server.pid)
        finally:
            server.stop()
        results["in_process_requests"] = in_process_requests(n)
    if "inprocess" in sections:
        results["in_process"] = inprocess.measure(max(n * 2 // 3, 20), first_starts=5 if quick else 7,
                                                  warm_starts=15 if quick else 30, progress=progress)
    if "large" in sections and not (quick or opts.skip_large):
        results["large"] = large_section(n, opts.patients)
    if "servers" in sections:
        others = []
        for kind in servers:
            if kind != "gunicorn":
                raise SystemExit(f"unknown server {kind!r}; known: gunicorn")
            if not gunicorn_available():
                raise SystemExit("gunicorn is not installed: pip install gunicorn")
            progress("gunicorn -w 1 --threads 8")
            server = start_gunicorn()
            try:
                ctx = Context(server.root)
                wanted = ("discovery", "token_code", "patient_read", "search_compartment", "write")
                scenarios = [s for s in auth_scenarios(ctx) + fhir_scenarios(ctx) if s.key in wanted]
                section = request_section("default dataset", server.kind + ", separate process", server.root,
                                          scenarios, n)
                section["rss_after_load_mib"] = rss_mib(server.pid)
                others.append(section)
            finally:
                server.stop()
        if others:
            results["other_servers"] = others
    results["seconds"] = round(time.perf_counter() - began, 1)
    results["targets"] = targets(results)
    for line in report_lines(results):
        print(line)
    print(f"\n(took {results['seconds']:.0f} s; results in {opts.json_path})")
    opts.json_path.parent.mkdir(parents=True, exist_ok=True)
    opts.json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
