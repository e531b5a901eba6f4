"""What the benchmark measures: one Scenario per row, each with its floor's shape.

A scenario's unit is what one row times: usually one request, for the launch round
trip several. `prepare(n)` makes the n items the units consume (PKCE pairs, codes)
before the clock starts; `shape` is the unit's requests as methods, which the floor
repeats (GET or POST /_floor/) so the ratio compares like with like.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import orjson

from mockehr.bench.load import Answer, BenchError, Connection

REDIRECT_URI = "http://localhost:9/callback"
CLIENT_ID = "bench-app"
LAUNCH_SCOPE = "openid fhirUser offline_access launch patient/*.rs"
FLOOR_FORM = urlencode({"grant_type": "authorization_code", "code": "x" * 43, "redirect_uri": REDIRECT_URI,
                        "client_id": CLIENT_ID, "code_verifier": "v" * 43}).encode()


def expect(answer: Answer, status: int, what: str) -> Answer:
    if answer.status != status:
        raise BenchError(f"{what} answered {answer.status}, expected {status}: {answer.body[:300]!r}")
    return answer


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> tuple[str, str]:
    return "Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def bearer(token: str) -> tuple[str, str]:
    return "Authorization", f"Bearer {token}"


@dataclass
class Scenario:
    name: str
    unit: Callable[[Connection, object], None]
    shape: tuple[str, ...]  # the unit's requests, as methods: the floor repeats them
    prepare: Callable[[Connection, int], list] = lambda conn, n: [None] * n
    fhir: bool = False  # a FHIR read or search (the "at most 3x the floor" target)
    key: str = ""  # short name in the JSON file
    tags: tuple[str, ...] = field(default_factory=tuple)


def floor_unit(shape: tuple[str, ...]) -> Callable[[Connection, object], None]:
    def unit(conn: Connection, _item) -> None:
        for method in shape:
            if method == "GET":
                expect(conn.get("/_floor/"), 200, "floor GET")
            else:
                expect(conn.post_json("/_floor/", FLOOR_FORM, content_type="application/x-www-form-urlencoded"),
                       200, "floor POST")
    return unit


class Context:
    """What the scenarios share: the server, a patient, a launch, clients and tokens (made untimed)."""

    def __init__(self, root: str):
        self.root = root
        self.fhir = root + "/fhir"
        self.fhir_path = "/fhir"
        conn = Connection(root)
        try:
            self.client = expect(conn.post_json("/auth/register", orjson.dumps({
                "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic",
                "client_name": "bench backend"})), 201, "registration").json()
            self.system_token = self.mint(conn, "system/*.rs")
            self.patient, self.code = self.pick_targets(conn)
            self.launch = expect(conn.post_json("/admin/launches", orjson.dumps({"patient": self.patient})),
                                 201, "POST /admin/launches").json()["launch"]
            self.patient_token = self.mint(conn, "patient/*.rs", self.patient)
            self.granular_token = self.mint(conn, "patient/Observation.rs?category=vital-signs", self.patient)
            self.write_token = self.mint(conn, "patient/*.cruds", self.patient)
        finally:
            conn.close()

    def mint(self, conn: Connection, scope: str, patient: str | None = None) -> str:
        if patient is None:
            answer = conn.post_form("/auth/token", {"grant_type": "client_credentials", "scope": scope},
                                    [basic(self.client["client_id"], self.client["client_secret"])])
        else:
            answer = conn.post_json("/admin/tokens", orjson.dumps({"scope": scope, "patient": patient}))
        return expect(answer, 200, f"a token for {scope}").json()["access_token"]

    def pick_targets(self, conn: Connection) -> tuple[str, str]:
        """A patient with vital signs and labs, and one of its lab codes."""
        bundle = expect(conn.get(f"{self.fhir_path}/Observation?category=laboratory&_count=1",
                                 [bearer(self.system_token)]), 200, "Observation?category=laboratory").json()
        lab = bundle["entry"][0]["resource"]
        coding = lab["code"]["coding"][0]
        return lab["subject"]["reference"].split("/")[-1], f"{coding['system']}|{coding['code']}"

    # -- the authorization steps ---------------------------------------------------------------
    def authorize_path(self, challenge: str) -> str:
        return "/auth/authorize?" + urlencode({
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": LAUNCH_SCOPE,
            "state": "bench", "aud": self.fhir, "launch": self.launch, "code_challenge": challenge,
            "code_challenge_method": "S256"})

    def authorize(self, conn: Connection, challenge: str) -> str:
        answer = expect(conn.get(self.authorize_path(challenge)), 302, "GET /auth/authorize (auto-approve)")
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        if "code" not in query:
            raise BenchError(f"authorize redirected without a code: {answer.headers['location'][:300]}")
        return query["code"][0]

    def exchange(self, conn: Connection, code: str, verifier: str) -> dict:
        answer = conn.post_form("/auth/token", {"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID,
                                                "code_verifier": verifier})
        token = expect(answer, 200, "POST /auth/token (authorization_code)").json()
        if "id_token" not in token or "refresh_token" not in token:
            raise BenchError("the code exchange gave no id_token or refresh_token")
        return token


def pkce_items(_conn: Connection, n: int) -> list:
    return [pkce() for _ in range(n)]


def auth_scenarios(ctx: Context) -> list[Scenario]:
    def discovery(conn: Connection, _item) -> None:
        expect(conn.get("/fhir/.well-known/smart-configuration"), 200, "smart-configuration")

    def authorize(conn: Connection, item) -> None:
        ctx.authorize(conn, item[1])

    def codes(conn: Connection, n: int) -> list:
        out = []
        for verifier, challenge in pkce_items(conn, n):
            out.append((ctx.authorize(conn, challenge), verifier))
        return out

    def token(conn: Connection, item) -> None:
        ctx.exchange(conn, *item)

    cc_auth = [basic(ctx.client["client_id"], ctx.client["client_secret"])]

    def client_credentials(conn: Connection, _item) -> None:
        expect(conn.post_form("/auth/token", {"grant_type": "client_credentials", "scope": "system/*.rs"}, cc_auth),
               200, "POST /auth/token (client_credentials)")

    def introspect(conn: Connection, _item) -> None:
        answer = expect(conn.post_form("/auth/introspect", {"token": ctx.patient_token}, cc_auth), 200,
                        "POST /auth/introspect")
        if b'"active":true' not in answer.body.replace(b" ", b""):
            raise BenchError(f"introspection says the token is not active: {answer.body[:200]!r}")

    def round_trip(conn: Connection, item) -> None:
        verifier, challenge = item
        ctx.exchange(conn, ctx.authorize(conn, challenge), verifier)

    def round_trip_read(conn: Connection, item) -> None:
        verifier, challenge = item
        token = ctx.exchange(conn, ctx.authorize(conn, challenge), verifier)
        expect(conn.get(f"/fhir/Patient/{token['patient']}", [bearer(token["access_token"])]), 200,
               "Patient read after the launch")

    return [
        Scenario("discovery: GET .well-known/smart-configuration", discovery, ("GET",), key="discovery"),
        Scenario("authorize (auto-approve, EHR launch, PKCE) -> 302", authorize, ("GET",), pkce_items,
                 key="authorize"),
        Scenario("token: authorization_code (openid fhirUser offline_access launch patient/*.rs)", token,
                 ("POST",), codes, key="token_code"),
        Scenario("token: client_credentials (client_secret_basic, system/*.rs)", client_credentials, ("POST",),
                 key="token_client_credentials"),
        Scenario("introspection (client_secret_basic)", introspect, ("POST",), key="introspect"),
        Scenario("EHR launch round trip: authorize -> token", round_trip, ("GET", "POST"), pkce_items,
                 key="launch_round_trip"),
        Scenario("EHR launch round trip: authorize -> token -> Patient read", round_trip_read,
                 ("GET", "POST", "GET"), pkce_items, key="launch_round_trip_read"),
    ]


def fhir_scenarios(ctx: Context, with_write: bool = True) -> list[Scenario]:
    p, code = ctx.patient, quote(ctx.code, safe="")
    patient_auth, granular_auth = [bearer(ctx.patient_token)], [bearer(ctx.granular_token)]

    def get(path: str, auth: list, what: str):
        def unit(conn: Connection, _item) -> None:
            expect(conn.get(path, auth), 200, what)
        return unit

    vitals = f"/fhir/Observation?patient={p}&category=vital-signs"
    rows = [
        Scenario("Patient/ID read (patient/*.rs)", get(f"/fhir/Patient/{p}", patient_auth, "Patient read"),
                 ("GET",), fhir=True, key="patient_read"),
        Scenario("compartment search Observation?patient&category=vital-signs (patient/*.rs)",
                 get(vitals, patient_auth, "compartment search"), ("GET",), fhir=True, key="search_compartment"),
        Scenario("compartment search, granular scope (patient/Observation.rs?category=vital-signs)",
                 get(vitals, granular_auth, "granular compartment search"), ("GET",), fhir=True,
                 key="search_compartment_granular"),
        Scenario("search Observation?patient&code&date=ge (patient/*.rs)",
                 get(f"/fhir/Observation?patient={p}&code={code}&date=ge2020-01-01", patient_auth, "code search"),
                 ("GET",), fhir=True, key="search_code_date"),
        Scenario("Patient/ID/$everything (first page of 50)",
                 get(f"/fhir/Patient/{p}/$everything", patient_auth, "$everything"), ("GET",), fhir=True,
                 key="everything"),
    ]
    if with_write:
        body = orjson.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "bench"},
                             "subject": {"reference": f"Patient/{p}"}, "valueQuantity": {"value": 1, "unit": "1"}})
        write_auth = [bearer(ctx.write_token)]

        def write(conn: Connection, _item) -> None:
            expect(conn.post_json("/fhir/Observation", body, write_auth, "application/fhir+json"), 201,
                   "POST Observation")

        rows.append(Scenario("write: POST Observation (patient/*.cruds)", write, ("POST",), key="write"))
    return rows
