// A real client against mockehr: openid-client 6 (on oauth4webapi) runs a SMART standalone launch
// with PAR (RFC 9126) and DPoP (RFC 9449), as an app would, and prints one JSON line of findings
// for tests/auth/test_flow_real_client.py to check. Every protocol check is openid-client's own
// (discovery, iss in the redirect, state, PKCE, id_token signature and claims, DPoP nonces).
//
//   MOCKEHR_FHIR_BASE=http://127.0.0.1:PORT/fhir OPENID_CLIENT=/path/to/openid-client/build/index.js \
//     node par_dpop_client.mjs
// The server runs with --auto-approve --require-par --dpop-nonce.

import { pathToFileURL } from "node:url";

const oidc = await import(pathToFileURL(process.env.OPENID_CLIENT).href);
const fhirBase = process.env.MOCKEHR_FHIR_BASE;
const redirectUri = "http://app.example/callback";
const findings = {};

const smart = await (await fetch(`${fhirBase}/.well-known/smart-configuration`)).json();
const registered = await (await fetch(smart.registration_endpoint, {
  method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify({
    client_name: "openid-client PAR + DPoP", redirect_uris: [redirectUri], token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"], dpop_bound_access_tokens: true,
  }),
})).json();
const config = await oidc.discovery(new URL(fhirBase), registered.client_id, undefined, oidc.None(),
  { execute: [oidc.allowInsecureRequests] }); // http on localhost
const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));

// PAR: openid-client pushes the request (with a DPoP proof, retrying once for the server's nonce)
const codeVerifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const authorizationUrl = await oidc.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirectUri, scope: "launch/patient openid fhirUser patient/*.rs offline_access",
  code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: "S256",
  state, nonce, aud: fhirBase,
}, { DPoP });
findings.authorize_params = [...authorizationUrl.searchParams.keys()].sort();

// the browser's part: auto-approve answers with the redirect at once
const redirect = await fetch(authorizationUrl, { redirect: "manual" });
findings.authorize_status = redirect.status;
const callback = new URL(redirect.headers.get("location"));

// the code exchange, DPoP-bound; openid-client checks iss, state, PKCE and the id_token
const tokens = await oidc.authorizationCodeGrant(config, callback,
  { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
  undefined, { DPoP });
findings.token_type = tokens.token_type;
findings.patient = tokens.patient;
findings.access_token = tokens.access_token;
const claims = tokens.claims();

// the FHIR API with the DPoP scheme and a proof per request (nonce retry included)
const read = await oidc.fetchProtectedResource(config, tokens.access_token,
  new URL(`${fhirBase}/Patient/${tokens.patient}`), "GET", undefined, undefined, { DPoP });
findings.read_status = read.status;
findings.read_id = (await read.json()).id;
const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
findings.userinfo_fhirUser = userinfo.fhirUser;

// the refresh token of this public client is bound to the key ...
const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
findings.refreshed_token_type = refreshed.token_type;
// ... so another key cannot use it
const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
try {
  await oidc.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: thief });
  findings.thief = "accepted";
} catch (error) {
  findings.thief = error.error ?? error.code ?? String(error);
}
// a plain Bearer use of the DPoP-bound token is refused
const bearer = await fetch(`${fhirBase}/Patient/${tokens.patient}`,
  { headers: { Authorization: `Bearer ${refreshed.access_token}` } });
findings.bearer_status = bearer.status;
findings.bearer_challenge = bearer.headers.get("www-authenticate");

console.log(JSON.stringify(findings));
