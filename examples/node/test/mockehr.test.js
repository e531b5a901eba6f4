// A Node test suite against mockehr (node:test): fhirclient.js completes an EHR launch for a tiny
// app server, openid-client gets a SMART Backend Services token, and the control API adds faults.
//
// It starts `mockehr serve --port 0 --json --auto-approve` itself and reads the URLs from the one
// JSON line it prints; MOCKEHR_URL=http://... uses a server that is already running instead.
// MOCKEHR_COMMAND='["python3", "-m", "mockehr"]' says how to run mockehr (default: ["mockehr"]).
//
//   npm ci && npm test

import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { once } from "node:events";
import { createInterface } from "node:readline";
import smart from "fhirclient";
import * as oidc from "openid-client";

const PATIENT = "p00001-diabetes-htn";
const USER = "Practitioner/pr-okafor";

let ehr; // {url, fhir_base, smart_configuration}
let child; // the mockehr process we started, if any

async function startMockehr() {
  if (process.env.MOCKEHR_URL) {
    const url = process.env.MOCKEHR_URL.replace(/\/$/, "");
    return { url, fhir_base: `${url}/fhir`, smart_configuration: `${url}/fhir/.well-known/smart-configuration` };
  }
  const [command, ...args] = JSON.parse(process.env.MOCKEHR_COMMAND ?? '["mockehr"]');
  child = spawn(command, [...args, "serve", "--port", "0", "--json", "--auto-approve"],
    { stdio: ["ignore", "pipe", "pipe"] });
  let errors = "";
  child.stderr.on("data", (chunk) => { errors += chunk; }); // the access log, and why it failed to start
  const lines = createInterface({ input: child.stdout });
  const [first] = await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => { throw new Error(`mockehr exited (${code}): ${errors}`); }),
  ]);
  return JSON.parse(first); // listening already: no polling needed
}

async function admin(method, path, body) {
  const answer = await fetch(ehr.url + path, {
    method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body),
  });
  return { status: answer.status, body: await answer.json().catch(() => null) };
}

before(async () => { ehr = await startMockehr(); });
after(async () => {
  if (child) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
});
beforeEach(async () => { assert.equal((await admin("POST", "/admin/reset")).status, 200); });

test("fhirclient.js: EHR launch, code exchange with PKCE, patient read", async () => {
  const session = {}; // fhirclient keeps its state in req.session (express-session in a real app)
  const app = http.createServer(async (req, res) => {
    req.session = session;
    try {
      const path = new URL(req.url, "http://app").pathname;
      if (path === "/launch") {
        await smart(req, res).authorize({
          clientId: "node-example-app", scope: "launch openid fhirUser patient/*.rs", redirectUri: "/callback",
        });
      } else if (path === "/callback") {
        const client = await smart(req, res).ready();
        const patient = await client.patient.read();
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ patient, token: client.state.tokenResponse }));
      } else {
        res.writeHead(404).end();
      }
    } catch (error) {
      res.writeHead(500).end(String(error.stack));
    }
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const appUrl = `http://127.0.0.1:${app.address().port}`;
  try {
    const launch = await admin("POST", "/admin/launches", { patient: PATIENT, user: USER, app_url: `${appUrl}/launch` });
    assert.equal(launch.status, 201);

    // What a browser does: follow the redirects from the app to mockehr and back.
    const toAuthorize = await fetch(launch.body.launch_url, { redirect: "manual" });
    assert.equal(toAuthorize.status, 302, await toAuthorize.text());
    const authorize = new URL(toAuthorize.headers.get("location"));
    assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
    assert.equal(authorize.searchParams.get("aud"), ehr.fhir_base);
    assert.equal(authorize.searchParams.get("launch"), launch.body.launch);

    const back = await fetch(authorize, { redirect: "manual" }); // --auto-approve: straight back with a code
    assert.equal(back.status, 302);
    const callback = new URL(back.headers.get("location"));
    assert.equal(callback.origin + callback.pathname, `${appUrl}/callback`);
    assert.ok(callback.searchParams.get("code"));

    const done = await fetch(callback);
    assert.equal(done.status, 200, await done.clone().text());
    const { patient, token } = await done.json();
    assert.equal(patient.resourceType, "Patient");
    assert.equal(patient.id, PATIENT);
    assert.equal(token.patient, PATIENT);
    assert.match(token.scope, /patient\/\*\.rs/);

    const audit = await admin("GET", "/admin/audit");
    const issued = audit.body.filter((e) => e.type === "token" && e.client === "node-example-app");
    assert.equal(issued.length, 1);
  } finally {
    app.close();
  }
});

test("openid-client: SMART Backend Services (client_credentials, private_key_jwt ES384)", async () => {
  const discovery = await (await fetch(ehr.smart_configuration)).json();
  const { publicKey, privateKey } = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"]);
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", publicKey);
  const kid = "node-example-key";
  const registered = await fetch(discovery.registration_endpoint, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: "node backend service", grant_types: ["client_credentials"],
      token_endpoint_auth_method: "private_key_jwt", scope: "system/*.rs",
      jwks: { keys: [{ kty, crv, x, y, kid, alg: "ES384", use: "sig" }] },
    }),
  });
  assert.equal(registered.status, 201);
  const { client_id } = await registered.json();

  const auth = oidc.PrivateKeyJwt({ key: privateKey, kid }, {
    // SMART wants the assertion's aud to be the token endpoint; openid-client sends the issuer.
    [oidc.modifyAssertion]: (header, payload) => { payload.aud = discovery.token_endpoint; },
  });
  const config = await oidc.discovery(new URL(ehr.fhir_base), client_id, undefined, auth,
    { execute: [oidc.allowInsecureRequests] }); // http on localhost
  const tokens = await oidc.clientCredentialsGrant(config, { scope: "system/Patient.rs" });
  assert.equal(tokens.token_type.toLowerCase(), "bearer");
  assert.equal(tokens.scope, "system/Patient.rs");

  const bundle = await oidc.fetchProtectedResource(config, tokens.access_token,
    new URL(`${ehr.fhir_base}/Patient?_count=2`), "GET");
  assert.equal(bundle.status, 200);
  assert.equal((await bundle.json()).resourceType, "Bundle");
  // The scope names Patient only: 403 with a Bearer challenge, which openid-client raises.
  await assert.rejects(
    oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${ehr.fhir_base}/Observation?_count=2`), "GET"),
    (error) => error.code === "OAUTH_WWW_AUTHENTICATE_CHALLENGE" && error.response.status === 403 &&
      error.cause[0].parameters.error === "insufficient_scope");
});

test("control API: a throttle fault, then clean again", async () => {
  const token = await admin("POST", "/admin/tokens", { scope: "patient/*.rs", patient: PATIENT });
  assert.equal(token.status, 200);
  const read = () => fetch(`${ehr.fhir_base}/Patient/${PATIENT}`,
    { headers: { Authorization: `Bearer ${token.body.access_token}` } });

  const fault = await admin("POST", "/admin/faults", { spec: "throttle:every=1,retry_after=2,path=/fhir/Patient*" });
  assert.equal(fault.status, 201);
  const throttled = await read();
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers.get("retry-after"), "2");

  assert.deepEqual((await admin("DELETE", "/admin/faults")).body, { cleared: 1 });
  assert.equal((await read()).status, 200);

  const bad = await admin("POST", "/admin/faults", { spec: "throtle" });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /did you mean 'throttle'/);
});
