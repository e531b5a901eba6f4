"""The refresh_token grant: rotation on every use, reuse detection that revokes the whole family,
scope narrowing, client binding, and the launch context that travels with the grant."""

from __future__ import annotations



from tests.auth.conftest import basic, introspection

SCOPE = "launch/patient launch/encounter openid fhirUser patient/*.rs offline_access"


def _flow(ehr, client, **kwargs):
    return ehr.code_flow(client["client_id"], SCOPE, nonce="n-r", id_token_expected=True, **kwargs)


def _refresh_ok(ehr, client_id: str, token: str, **extra) -> dict:
    answer = ehr.refresh(client_id, token, **extra)
    body, _, _ = ehr.check_token_response(answer, client_id, nonce="n-r" if "openid" in answer.json().get(
        "scope", "") else None)
    return body


def test_every_refresh_rotates_the_refresh_token_and_keeps_the_context(ehr):
    client = ehr.public_client()
    flow = _flow(ehr, client)
    seen = {flow.refresh_token}
    current = flow.body
    for _ in range(3):
        body = _refresh_ok(ehr, client["client_id"], current["refresh_token"])
        assert body["refresh_token"] not in seen  # new every time
        seen.add(body["refresh_token"])
        assert body["access_token"] != current["access_token"]
        assert (body["patient"], body["encounter"]) == ("pat-a", "enc-a2")
        assert body["scope"] == flow.body["scope"]
        assert ehr.fhir("GET", "Patient/pat-a", body["access_token"]).status_code == 200
        current = body
    # the earlier access tokens still work until they expire: rotation is about refresh tokens
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(ehr, introspector):
    client = ehr.public_client()
    flow = _flow(ehr, client)
    second = _refresh_ok(ehr, client["client_id"], flow.refresh_token)
    third = _refresh_ok(ehr, client["client_id"], second["refresh_token"])

    ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.refresh_token,
                     "client_id": client["client_id"]}, "invalid_grant")  # the reuse
    # now nothing of the family works: the newest refresh token, and every access token
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": third["refresh_token"],
                     "client_id": client["client_id"]}, "invalid_grant")
    for access in (flow.access_token, second["access_token"], third["access_token"]):
        assert ehr.fhir("GET", "Patient/pat-a", access).status_code == 401
        assert introspection(ehr, access, introspector) == {"active": False}
    assert introspection(ehr, third["refresh_token"], introspector) == {"active": False}
    # another grant of the same client is untouched
    other = _flow(ehr, client)
    assert ehr.fhir("GET", "Patient/pat-a", other.access_token).status_code == 200


def test_narrower_scope_is_granted_wider_is_invalid_scope(ehr):
    client = ehr.public_client()
    flow = _flow(ehr, client)
    narrow = _refresh_ok(ehr, client["client_id"], flow.refresh_token, scope="patient/Observation.rs")
    assert narrow["scope"] == "patient/Observation.rs"
    assert narrow["patient"] == "pat-a"
    assert ehr.fhir("GET", "Observation/obs-a-lab", narrow["access_token"]).status_code == 200
    assert ehr.fhir("GET", "Patient/pat-a", narrow["access_token"]).status_code == 403
    assert "refresh_token" in narrow  # the grant still holds offline_access

    for wider in ("patient/*.cruds", "user/*.rs", "patient/*.rs system/*.rs", "patient/*.rs profile"):
        body = ehr.token_error({"grant_type": "refresh_token", "refresh_token": narrow["refresh_token"],
                                "client_id": client["client_id"], "scope": wider}, "invalid_scope")
        assert body["error_description"]
    # a refused refresh did not burn the token
    back = _refresh_ok(ehr, client["client_id"], narrow["refresh_token"])
    assert back["scope"] == flow.body["scope"]  # without scope: everything the grant holds


def test_refresh_token_is_bound_to_its_client(ehr):
    owner, thief = ehr.public_client(), ehr.public_client()
    flow = _flow(ehr, owner)
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.refresh_token,
                     "client_id": thief["client_id"]}, "invalid_grant")
    secret_thief = ehr.secret_client()
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.refresh_token},
                    "invalid_grant", auth=basic(secret_thief))
    _refresh_ok(ehr, owner["client_id"], flow.refresh_token)  # the owner's still works


def test_unknown_missing_and_access_token_as_refresh_token(ehr):
    client = ehr.public_client()
    flow = _flow(ehr, client)
    cid = client["client_id"]
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": "made-up", "client_id": cid}, "invalid_grant")
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.access_token, "client_id": cid},
                    "invalid_grant")
    ehr.token_error({"grant_type": "refresh_token", "client_id": cid}, "invalid_request")


def test_no_offline_or_online_access_no_refresh_token(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs")
    assert "refresh_token" not in flow.body
    online = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs online_access")
    assert online.refresh_token
    body = _refresh_ok(ehr, client["client_id"], online.refresh_token)
    assert body["patient"] == "pat-a"


def test_refresh_of_a_confidential_client(ehr):
    client = ehr.secret_client()
    flow = _flow(ehr, client, auth=basic(client))
    body = _refresh_ok(ehr, client["client_id"], flow.refresh_token, auth=basic(client))
    assert body["patient"] == "pat-a"
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, "invalid_client",
                    status=401, auth=(client["client_id"], "wrong"))


def test_parallel_refreshes_with_one_token_are_reuse(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs offline_access")
    data = {"grant_type": "refresh_token", "refresh_token": flow.refresh_token, "client_id": client["client_id"]}
    answers = ehr.race_token_requests(data)
    won = [a for a in answers if a.status_code == 200]
    assert len(won) == 1, [a.status_code for a in answers]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    body, _, _ = ehr.check_token_response(won[0], client["client_id"])
    # the losers were reuse of a rotated token: the family is revoked, the winner's tokens included
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                     "client_id": client["client_id"]}, "invalid_grant")
    assert ehr.fhir("GET", "Patient/pat-a", body["access_token"]).status_code == 401
