/*
 * mockehr sample app: a SMART App Launch 2.2 client in plain JavaScript.
 *
 * No framework and no library, so that every step of the protocol is here to read, numbered
 * as in the specification (https://hl7.org/fhir/smart-app-launch/app-launch.html):
 *
 *   1. Register      nothing to do here: mockehr registers an unknown client_id on first use,
 *                    pinned to the redirect_uri it sent (a real EHR wants you to register first)
 *   2. Launch        read `launch` and `iss` (EHR launch), or pick the server yourself (standalone)
 *   3. Discovery     GET {iss}/.well-known/smart-configuration
 *   4. Authorize     send the browser to authorization_endpoint with state and PKCE; it comes back
 *                    to this page with `code` and `state` (or `error`)
 *   5. Token         POST the code and the PKCE verifier to token_endpoint
 *   6. FHIR API      call {iss}/Patient/{patient} etc. with `Authorization: Bearer <access token>`
 *   7. Refresh       POST the refresh token to token_endpoint for a new access token
 *
 * This page is both the app's launch URL and its redirect_uri. It is a public client
 * (it cannot keep a secret: anyone can read this file), so PKCE is what protects the code.
 *
 * Everything shown from server data goes through textContent (the `el` helper), never
 * innerHTML: a patient's name is data, not markup.
 */

const SPEC = "https://hl7.org/fhir/smart-app-launch/app-launch.html";
const CLIENT_ID = "mockehr-sample-app";

// This file lives at ROOT/sample-app/app.js, so URLs relative to it find the app and the server.
const APP_URL = new URL(".", import.meta.url).href.replace(/\/$/, ""); // ROOT/sample-app
const REDIRECT_URI = APP_URL; // back to this very page
const OWN_FHIR_BASE = new URL("../fhir", import.meta.url).href; // ROOT/fhir, for a standalone launch

// `launch` asks for the EHR's context; `launch/patient` asks the server to let the user pick a patient.
const EHR_SCOPE = "openid fhirUser launch patient/*.rs offline_access";
const STANDALONE_SCOPE = "openid fhirUser launch/patient patient/*.rs offline_access";

// What must survive the trip to the authorization server and back (this page is reloaded).
const SESSION_KEY = "mockehr-sample-app";

/** What the app holds after the token exchange. In memory only: a reload forgets the tokens. */
const app = { iss: null, config: null, token: null, steps: [] };

// ---------------------------------------------------------------------------------------------
// Start: decide what this page load is.
// ---------------------------------------------------------------------------------------------

async function main() {
  const params = new URLSearchParams(window.location.search);
  try {
    if (params.has("code") || params.has("error")) {
      await completeAuthorization(params);
    } else if (params.has("launch") || params.has("iss")) {
      await ehrLaunch(params);
    } else {
      showStandaloneForm();
    }
  } catch (error) {
    showError(error);
  }
}

/**
 * Every failure the app reports: where it happened, an error code and a description.
 * Codes from the server are the spec's (invalid_scope, invalid_grant, ...); the app's own
 * checks use descriptive names of their own (state_mismatch, no_pending_request, ...).
 */
class AppError extends Error {
  constructor(where, code, description, detail = "") {
    super(`${where}: ${code}: ${description}`);
    this.where = where;
    this.code = code;
    this.description = description;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------------------------------------
// Step 2: launch. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-2-launch-ehr
// ---------------------------------------------------------------------------------------------

/** EHR launch: the EHR opened us with ?launch=...&iss=... (the launch is opaque: pass it on). */
async function ehrLaunch(params) {
  const { launch, iss } = readLaunchParameters(params);
  await startAuthorization({ iss, launch, scope: EHR_SCOPE });
}

function readLaunchParameters(params) {
  const launch = params.get("launch");
  const iss = params.get("iss");
  if (!launch || !iss) {
    throw new AppError("Launch", "invalid_launch",
      "An EHR launch needs both `launch` and `iss` in the URL; open the page without either for a standalone launch.");
  }
  logStep("Launched by the EHR", "step-2-launch-ehr", [["launch", launch], ["iss", iss]]);
  return { launch, iss };
}

/**
 * Standalone launch (https://hl7.org/fhir/smart-app-launch/app-launch.html#step-2-launch-standalone):
 * nobody launched us, so we choose the FHIR server ourselves (this mockehr) and ask for
 * `launch/patient` so that the server shows its patient picker.
 */
function showStandaloneForm() {
  setStatus("Ready for a standalone launch.");
  document.getElementById("start-iss").textContent = OWN_FHIR_BASE;
  document.getElementById("start-client").textContent = CLIENT_ID;
  document.getElementById("start-redirect").textContent = REDIRECT_URI;
  const scopeInput = document.getElementById("scope");
  scopeInput.value = STANDALONE_SCOPE;
  show("start");
  document.getElementById("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    logStep("Standalone launch: the app picked the FHIR server", "step-2-launch-standalone",
      [["iss", OWN_FHIR_BASE]]);
    try {
      await startAuthorization({ iss: OWN_FHIR_BASE, launch: null, scope: scopeInput.value.trim() });
    } catch (error) {
      showError(error);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Step 3: discovery. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-3-discovery
// ---------------------------------------------------------------------------------------------

/** The server tells us its endpoints; apps never hard-code them. */
async function fetchSmartConfiguration(iss) {
  const url = `${iss.replace(/\/$/, "")}/.well-known/smart-configuration`;
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new AppError("Discovery", "network_error", `Could not fetch ${url}: ${error.message}`);
  }
  if (!response.ok) {
    throw new AppError("Discovery", `HTTP ${response.status}`, `${url} did not answer a SMART configuration.`);
  }
  const config = await response.json();
  if (!config.authorization_endpoint || !config.token_endpoint) {
    throw new AppError("Discovery", "invalid_configuration",
      "The SMART configuration has no authorization_endpoint or token_endpoint.");
  }
  logStep("Fetched the SMART configuration", "step-3-discovery", [
    ["GET", url], ["authorization_endpoint", config.authorization_endpoint],
    ["token_endpoint", config.token_endpoint], ["jwks_uri", config.jwks_uri ?? "(none)"],
  ]);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Step 4: authorize. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-4-authorization-code
// ---------------------------------------------------------------------------------------------

/** Discovery, then PKCE and state, then off to the authorization server. */
async function startAuthorization({ iss, launch, scope }) {
  setStatus("Fetching the server's SMART configuration…");
  const config = await fetchSmartConfiguration(iss);
  const state = randomString(16); // ties the answer to this request (CSRF protection)
  const { verifier, challenge } = await createPkcePair();
  const url = buildAuthorizeUrl({ config, iss, launch, scope, state, challenge });
  // The verifier stays here; only its hash (the challenge) travels in the URL.
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ state, verifier, iss, config, steps: app.steps }));
  setStatus("Redirecting to the authorization server…");
  window.location.assign(url);
}

/**
 * PKCE (RFC 7636) with S256: a random code_verifier (43-128 characters) and its
 * SHA-256, base64url-encoded, as the code_challenge. A stolen code is useless without the verifier.
 */
async function createPkcePair() {
  if (!window.crypto?.subtle) {
    throw new AppError("PKCE", "insecure_context", "WebCrypto (crypto.subtle) is only available on " +
      "secure pages (https, or localhost): open this app through localhost or https.");
  }
  const verifier = randomString(64); // 64 random bytes: 86 base64url characters
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(new Uint8Array(digest)) };
}

function buildAuthorizeUrl({ config, iss, launch, scope, state, challenge }) {
  const params = new URLSearchParams({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    aud: iss, // the FHIR server the token is for: stops a token meant for one server being used at another
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  if (launch) params.set("launch", launch); // EHR launch only: the EHR's context handle, passed back as is
  logStep("Sent the browser to the authorization endpoint", "step-4-authorization-code", [...params]);
  return `${config.authorization_endpoint}?${params}`;
}

// ---------------------------------------------------------------------------------------------
// Step 4, continued: back from the authorization server, with a code or an error.
// https://hl7.org/fhir/smart-app-launch/app-launch.html#step-4-authorization-code (Response)
// ---------------------------------------------------------------------------------------------

async function completeAuthorization(params) {
  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  sessionStorage.removeItem(SESSION_KEY); // a state is good for one answer only
  // The code must not stay in the address bar or the history (a reload would replay it).
  window.history.replaceState(null, "", REDIRECT_URI);
  if (!saved) {
    throw new AppError("Authorization response", "no_pending_request",
      "This page got an authorization response but has no request waiting for it " +
      "(opened in another tab, or reloaded). Start the launch again.");
  }
  app.steps = saved.steps;
  app.iss = saved.iss;
  app.config = saved.config;
  renderSteps();
  // state must be exactly the one we sent, or this answer is not for us (CSRF).
  if (params.get("state") !== saved.state) {
    throw new AppError("Authorization response", "state_mismatch",
      "The state in the answer is not the one this app sent; ignoring it.");
  }
  // RFC 9207: the server names itself, so a mix-up between two servers is caught.
  if (params.has("iss") && params.get("iss") !== saved.config.issuer) {
    throw new AppError("Authorization response", "iss_mismatch",
      `The answer comes from ${params.get("iss")}, not from ${saved.config.issuer}.`);
  }
  if (params.has("error")) {
    logStep("The authorization server answered with an error", "step-4-authorization-code",
      [["error", params.get("error")], ["error_description", params.get("error_description") ?? ""]]);
    throw new AppError("Authorization server (OAuth error redirect)", params.get("error"),
      params.get("error_description") || "(no error_description)");
  }
  logStep("Came back with an authorization code", "step-4-authorization-code",
    [["code", shorten(params.get("code"))], ["state", params.get("state") + " (matches)"]]);
  const token = await exchangeCode(params.get("code"), saved.verifier);
  await showLaunch(token);
}

// ---------------------------------------------------------------------------------------------
// Step 5: token. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-5-access-token
// ---------------------------------------------------------------------------------------------

/** Trade the code (and the PKCE verifier that proves we asked for it) for tokens. */
async function exchangeCode(code, verifier) {
  setStatus("Exchanging the code for tokens…");
  const form = {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID, // a public client names itself here instead of authenticating
    code_verifier: verifier,
  };
  const token = await postToTokenEndpoint(form);
  logStep("Exchanged the code for tokens", "step-5-access-token", [
    ["POST", app.config.token_endpoint], ["grant_type", form.grant_type], ["code", shorten(code)],
    ["code_verifier", shorten(verifier)], ["answer", `access_token, scope "${token.scope}"`],
  ]);
  return token;
}

/** The token endpoint takes a form and answers JSON: the tokens, or {error, error_description}. */
async function postToTokenEndpoint(form) {
  const response = await fetch(app.config.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams(form),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new AppError("Token endpoint", body.error ?? `HTTP ${response.status}`,
      body.error_description ?? "(no error_description)", `HTTP ${response.status} from ${app.config.token_endpoint}`);
  }
  return body;
}

/** After a successful token exchange: show the tokens, then read the record. */
async function showLaunch(token) {
  app.token = token;
  renderTokenResponse(token);
  renderIdToken(token.id_token);
  document.getElementById("refresh").addEventListener("click", refreshAccessToken);
  if (!token.patient) {
    setStatus("Signed in, but the token names no patient (ask for launch or launch/patient).");
    return;
  }
  setStatus("Reading the patient's record…");
  const complete = await loadPatientSummary(token.patient);
  setStatus(complete ? `Launched for patient ${token.patient}.`
    : `Launched for patient ${token.patient}, but part of the record could not be read: see the errors.`);
}

// ---------------------------------------------------------------------------------------------
// Step 6: the FHIR API. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-6-fhir-api
// ---------------------------------------------------------------------------------------------

/** GET a FHIR URL (relative to iss) with the access token; errors come back as OperationOutcomes. */
async function fhirGet(path) {
  const url = `${app.iss.replace(/\/$/, "")}/${path}`;
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${app.token.access_token}`, Accept: "application/fhir+json" },
  });
  const body = await response.json().catch(() => null);
  logStep(`GET ${path.split("?")[0]}`, "step-6-fhir-api", [["GET", url], ["answer", `HTTP ${response.status}`]]);
  if (!response.ok) {
    const issue = body?.resourceType === "OperationOutcome" ? body.issue?.[0] ?? {} : {};
    // A 401 also says why in the WWW-Authenticate header (RFC 6750): invalid_token, insufficient_scope.
    const bearer = response.headers.get("WWW-Authenticate");
    throw new AppError("FHIR API (OperationOutcome)", issue.code ?? `HTTP ${response.status}`,
      issue.diagnostics ?? issue.details?.text ?? "(no description)",
      [`HTTP ${response.status} from GET ${url}`, bearer && `WWW-Authenticate: ${bearer}`].filter(Boolean).join("\n"));
  }
  return body;
}

/** The resources of a search Bundle (leaving out the OperationOutcome entries a server may add). */
function resourcesOf(bundle, type) {
  return (bundle.entry ?? []).map((entry) => entry.resource).filter((r) => r?.resourceType === type);
}

/** Read the patient, then their vitals, medications and allergies; answers whether all of it loaded. */
async function loadPatientSummary(patientId) {
  const id = encodeURIComponent(patientId);
  const patient = await fhirGet(`Patient/${id}`);
  renderPatientBanner(patient);
  show("patient");
  // Independent searches: ask for all three at once, and show each one that works.
  const sections = [
    ["vitals", `Observation?patient=${id}&category=vital-signs&_sort=-date&_count=10`,
      (bundle) => renderVitals(resourcesOf(bundle, "Observation"))],
    ["meds", `MedicationRequest?patient=${id}`,
      (bundle) => renderMedications(resourcesOf(bundle, "MedicationRequest"), hasNextPage(bundle))],
    ["allergies", `AllergyIntolerance?patient=${id}`,
      (bundle) => renderAllergies(resourcesOf(bundle, "AllergyIntolerance"))],
  ];
  const results = await Promise.allSettled(sections.map(([, path]) => fhirGet(path)));
  let failed = false;
  results.forEach((result, i) => {
    const [box, , render] = sections[i];
    if (result.status === "fulfilled") {
      render(result.value);
    } else {
      failed = true;
      document.getElementById(box).replaceChildren(
        el("p", { className: "hint" }, `Not loaded (${result.reason.code ?? "error"}): see the error above.`));
      showError(result.reason);
    }
  });
  return !failed;
}

function hasNextPage(bundle) {
  return (bundle.link ?? []).some((link) => link.relation === "next");
}

// ---------------------------------------------------------------------------------------------
// Step 7: refresh. https://hl7.org/fhir/smart-app-launch/app-launch.html#step-7-refresh
// ---------------------------------------------------------------------------------------------

/** A new access token without bothering the user; mockehr rotates the refresh token each time. */
async function refreshAccessToken() {
  const note = document.getElementById("refresh-note");
  note.textContent = "Refreshing…";
  try {
    const token = await postToTokenEndpoint({
      grant_type: "refresh_token",
      refresh_token: app.token.refresh_token,
      client_id: CLIENT_ID,
    });
    logStep("Refreshed the access token", "step-7-refresh", [
      ["POST", app.config.token_endpoint], ["grant_type", "refresh_token"],
      ["refresh_token", shorten(app.token.refresh_token)], ["new access_token", shorten(token.access_token)],
    ]);
    // Keep what the refresh answer leaves out (the launch context is not always repeated).
    app.token = { ...app.token, ...token };
    renderTokenResponse(app.token);
    if (token.id_token) renderIdToken(token.id_token);
    note.textContent = `New access token at ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    note.textContent = "";
    showError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens on screen.
// ---------------------------------------------------------------------------------------------

const SECRET_FIELDS = new Set(["access_token", "refresh_token", "id_token"]);

function renderTokenResponse(token) {
  const list = document.getElementById("token-response");
  list.replaceChildren();
  for (const [name, value] of Object.entries(token)) {
    const text = SECRET_FIELDS.has(name) ? shorten(value) : typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(el("dt", {}, name), el("dd", { id: `token-${name}` }, el("code", {}, text)));
  }
  const refresh = document.getElementById("refresh");
  refresh.disabled = !token.refresh_token;
  if (!token.refresh_token) {
    document.getElementById("refresh-note").textContent = "No refresh token: ask for offline_access or online_access.";
  }
  show("tokens");
}

/**
 * An id_token is a JWT: base64url(header).base64url(claims).signature. Decoding is not
 * verifying: a real app checks the signature with the key from jwks_uri, then iss, aud and exp.
 * https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
 */
function renderIdToken(idToken) {
  if (!idToken) return; // no openid scope, no id_token
  const { header, claims } = decodeJwt(idToken);
  document.getElementById("jwks-uri").textContent = app.config.jwks_uri ?? "jwks_uri";
  document.getElementById("id-token-header").textContent = JSON.stringify(header, null, 2);
  document.getElementById("id-token-claims").textContent = JSON.stringify(claims, null, 2);
  const audiences = [claims.aud].flat();
  const checks = [
    [claims.iss === app.config.issuer, `iss is the server's issuer (${app.config.issuer})`],
    [audiences.includes(CLIENT_ID), `aud includes this app's client_id (${CLIENT_ID})`],
    [claims.exp * 1000 > Date.now(), "exp is in the future"],
    [Boolean(claims.fhirUser), `fhirUser names the user: ${claims.fhirUser ?? "(missing)"}`],
  ];
  document.getElementById("id-token-checks").replaceChildren(
    ...checks.map(([ok, text]) => el("li", { className: ok ? "ok" : "bad" }, `${ok ? "✓" : "✗"} ${text}`)));
  show("id-token");
}

function decodeJwt(jwt) {
  const [header, claims] = jwt.split(".").slice(0, 2).map((part) => {
    const bytes = Uint8Array.from(atob(part.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  });
  return { header, claims };
}

// ---------------------------------------------------------------------------------------------
// The patient summary. FHIR data is deeply optional: every field may be missing.
// ---------------------------------------------------------------------------------------------

function renderPatientBanner(patient) {
  const names = patient.name ?? [];
  const name = names.find((n) => n.use === "official") ?? names[0] ?? {};
  const fullName = name.text ?? [...(name.given ?? []), name.family].filter(Boolean).join(" ");
  const mrn = (patient.identifier ?? []).find((i) => i.type?.coding?.some((c) => c.code === "MR"));
  const phone = (patient.telecom ?? []).find((t) => t.system === "phone");
  const address = (patient.address ?? [])[0];
  const facts = [
    ["Sex", patient.gender ?? "unknown"],
    ["Born", patient.birthDate ? `${patient.birthDate} (${age(patient.birthDate)})` : "unknown"],
    ["MRN", mrn?.value ?? "none"],
    ["Phone", phone?.value ?? "none"],
    ["Lives in", address ? [address.city, address.state].filter(Boolean).join(", ") : "unknown"],
    ["FHIR id", `Patient/${patient.id}`],
  ];
  if (patient.deceasedDateTime || patient.deceasedBoolean) {
    facts.push(["Deceased", patient.deceasedDateTime?.slice(0, 10) ?? "yes"]);
  }
  document.getElementById("patient-banner").replaceChildren(
    el("p", { className: "patient-name", id: "patient-name" }, fullName || `Patient/${patient.id}`),
    el("dl", { className: "facts-inline" }, ...facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))));
}

function age(birthDate) {
  const born = new Date(birthDate);
  const now = new Date();
  let years = now.getFullYear() - born.getFullYear();
  if (now < new Date(now.getFullYear(), born.getMonth(), born.getDate())) years -= 1;
  return years >= 2 ? `${years} years` : `${Math.max(0, Math.round((now - born) / 2629800000))} months`;
}

function renderVitals(observations) {
  const rows = observations.map((obs) => el("tr", {},
    el("td", {}, (obs.effectiveDateTime ?? obs.effectivePeriod?.start ?? "").slice(0, 10)),
    el("td", {}, conceptText(obs.code)),
    el("td", { className: "value" }, observationValue(obs))));
  document.getElementById("vitals").replaceChildren(rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Date"), el("th", {}, "Vital sign"), el("th", {}, "Value"))),
      el("tbody", {}, ...rows))
    : el("p", { className: "hint" }, "No vital signs recorded."));
}

/** A quantity, or, for panels such as blood pressure, the components: "131/86 mmHg". */
function observationValue(obs) {
  if (obs.valueQuantity) return quantity(obs.valueQuantity);
  const parts = (obs.component ?? []).map((c) => c.valueQuantity).filter(Boolean);
  if (parts.length) {
    const units = new Set(parts.map((q) => q.unit));
    return units.size === 1 ? `${parts.map((q) => q.value).join("/")} ${parts[0].unit}` : parts.map(quantity).join(", ");
  }
  return obs.valueString ?? conceptText(obs.valueCodeableConcept) ?? "";
}

function quantity(q) {
  return `${q.value ?? "?"} ${q.unit ?? q.code ?? ""}`.trim();
}

function renderMedications(requests, more) {
  const items = requests.map((rx) => el("li", {},
    el("span", { className: "item-name" },
      conceptText(rx.medicationCodeableConcept) ?? rx.medicationReference?.display ?? "Medication"),
    el("span", { className: `tag tag-${rx.status}` }, rx.status ?? "unknown"),
    el("span", { className: "item-detail" },
      [rx.dosageInstruction?.[0]?.text, rx.authoredOn && `ordered ${rx.authoredOn.slice(0, 10)}`].filter(Boolean).join(" · "))));
  const list = items.length ? el("ul", { className: "items" }, ...items) : el("p", { className: "hint" }, "No medication requests.");
  document.getElementById("meds").replaceChildren(list,
    ...(more ? [el("p", { className: "hint" }, "More on the next page of the Bundle (not loaded).")] : []));
}

function renderAllergies(allergies) {
  const items = allergies.map((a) => {
    const reactions = (a.reaction ?? []).flatMap((r) => r.manifestation ?? []).map(conceptText).filter(Boolean);
    return el("li", {},
      el("span", { className: "item-name" }, conceptText(a.code) ?? "Allergy"),
      a.criticality ? el("span", { className: `tag tag-${a.criticality}` }, `criticality ${a.criticality}`) : "",
      el("span", { className: "item-detail" },
        [reactions.length && `reaction: ${reactions.join(", ")}`, a.clinicalStatus && conceptText(a.clinicalStatus)]
          .filter(Boolean).join(" · ")));
  });
  document.getElementById("allergies").replaceChildren(items.length
    ? el("ul", { className: "items" }, ...items)
    : el("p", { className: "hint" }, "No known allergies recorded."));
}

/** The readable text of a CodeableConcept: its text, else the first coding's display or code. */
function conceptText(concept) {
  if (!concept) return undefined;
  const coding = concept.coding?.find((c) => c.display) ?? concept.coding?.[0];
  return concept.text ?? coding?.display ?? coding?.code;
}

// ---------------------------------------------------------------------------------------------
// Small helpers: the steps log, errors, DOM building, random strings.
// ---------------------------------------------------------------------------------------------

/** Note a protocol step (with its spec section) for the "What this app did" list. */
function logStep(title, anchor, pairs = []) {
  app.steps.push({ title, anchor, pairs });
  renderSteps();
}

function renderSteps() {
  const items = app.steps.map((step) => el("li", {},
    el("span", { className: "step-title" }, step.title, " ",
      el("a", { href: `${SPEC}#${step.anchor}`, className: "spec" }, "spec")),
    step.pairs.length ? el("dl", { className: "pairs" },
      ...step.pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, el("code", {}, v))])) : ""));
  document.getElementById("step-list").replaceChildren(...items);
  show("steps");
}

function showError(error) {
  const problem = error instanceof AppError ? error
    : new AppError("This app", error.name ?? "Error", error.message ?? String(error));
  console.error(error);
  document.getElementById("error-list").append(el("div", { className: "error" },
    el("p", { className: "error-where" }, problem.where),
    el("p", {}, el("code", { className: "error-code" }, problem.code), " ",
      el("span", { className: "error-description" }, problem.description)),
    problem.detail ? el("pre", { className: "error-detail" }, problem.detail) : ""));
  show("errors");
  setStatus("Stopped: see the error below.");
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function show(id) {
  document.getElementById(id).hidden = false;
}

/** createElement + textContent: the only way this app puts server data on the page. */
function el(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((child) => child !== ""));
  return node;
}

/** Tokens are secrets: show enough to tell two apart, not enough to use. */
function shorten(value) {
  if (typeof value !== "string") return String(value);
  return value.length <= 24 ? value : `${value.slice(0, 12)}…${value.slice(-6)} (${value.length} chars)`;
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

main();
