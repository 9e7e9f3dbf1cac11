"""Admission at the gateway's door (node/admission.py, wired in node/runtime.py): a key
that is not an active member is refused before ordering with the chaincode's code and
no height, never stored in a block; a citizen over its share is answered 429 with
Retry-After; staff are not limited; a key just registered gets in at once."""
from __future__ import annotations

import base64

from gateway_kit import new_key
from node.admission import AdmissionLimits


async def post(chain, envelope: bytes, wait: bool = True):
    query = "?wait=true&timeout=20" if wait else ""
    response = await chain.client.post(f"/v1/tx{query}", data=envelope,
                                       headers={"Content-Type": "application/msgpack"})
    return response, await response.json()


async def test_a_stranger_is_rejected_before_ordering_and_nothing_is_stored(chain, node):
    stranger = new_key()
    envelope = chain.envelope(stranger, "task.claim", {"task": "bench"})
    height = node.store.head()[0]
    for wait in (True, False):
        response, body = await post(chain, envelope, wait)
        assert response.status == 200
        assert (body["status"], body["code"], body["height"], body["events"]) == \
            ("rejected", "unknown_member", None, [])
        assert body["detail"] and body["info"] == {}
    found = await chain.get(f"/v1/tx/{body['tx_id']}")
    assert (found["status"], found["code"], found["height"]) == \
        ("rejected", "unknown_member", None)
    await chain.member("citizen")                       # a block goes by
    assert node.store.head()[0] == height + 1
    assert node.store.executed([bytes.fromhex(body["tx_id"])]) == [False]
    assert node.admission.lookups >= 2
    metrics = await (await chain.client.get("/metrics")).text()
    assert 'stadsmunt_admission_refusals{code="unknown_member"} 2.0' in metrics
    status = await chain.get("/v1/status")
    assert "refusals" not in status


async def test_revoked_and_frozen_signers_get_their_codes(chain):
    revoked = await chain.member("citizen")
    await chain.tx(chain.admin, "member.revoke", {"key": revoked.public})
    merchant = await chain.member("merchant")
    await chain.tx(chain.admin, "member.recover", {"old": merchant.public,
                                                   "new": new_key().public})
    for signer, code in ((revoked, "revoked"), (merchant, "frozen")):
        response, body = await post(chain, chain.envelope(signer, "coin.redeem",
                                                          {"amount": 1}))
        assert (response.status, body["status"], body["code"]) == (200, "rejected", code)


async def test_a_batch_answers_each_refusal_in_its_place(chain):
    citizen = await chain.member("citizen")
    envelopes = [chain.envelope(citizen, "task.claim", {"task": "a"}),
                 chain.envelope(new_key(), "task.claim", {"task": "a"}),
                 chain.envelope(citizen, "task.claim", {"task": "b"})]
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in envelopes]})
    items = (await response.json())["items"]
    assert response.status == 200
    assert [(i["status"], i["code"]) for i in items] == [
        ("pending", None), ("rejected", "unknown_member"), ("pending", None)]


async def test_a_citizen_over_its_share_gets_429_with_retry_after(chain, node):
    node.admission.limits = AdmissionLimits(rate_per_s=1, burst=2)
    citizen = await chain.member("citizen")
    claims = [chain.envelope(citizen, "task.claim", {"task": f"t{i}"}) for i in range(4)]
    for envelope in claims[:2]:
        response, body = await post(chain, envelope, wait=False)
        assert response.status in (200, 202), body
    response, body = await post(chain, claims[2], wait=False)
    assert response.status == 429 and body["code"] == "over_share"
    assert int(response.headers["Retry-After"]) >= 1 and body["tx_id"]
    # in a batch: sent again like an overloaded item, after the batch's Retry-After
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(claims[3]).decode()]})
    (item,) = (await response.json())["items"]
    assert (item["status"], item["code"]) == ("overloaded", "over_share")
    assert int(response.headers["Retry-After"]) >= 1
    # the admin is staff: never limited, whatever it sends
    for i in range(10):
        response, _ = await post(chain, chain.envelope(chain.admin, "member.register", {
            "key": new_key().public, "role": "citizen", "age_band": "21plus",
            "area": "GMS"}), wait=False)
        assert response.status in (200, 202)


async def test_a_new_members_first_transaction_may_follow_its_registration_at_once(chain):
    fresh = new_key()
    registration = chain.envelope(chain.admin, "member.register", {
        "key": fresh.public, "role": "citizen", "age_band": "21plus", "area": "GMS"})
    claim = chain.envelope(fresh, "task.claim", {"task": "none"})
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in (registration, claim)]})
    items = (await response.json())["items"]
    assert [i["status"] for i in items] == ["pending", "pending"]
    found = await chain.send(claim)                  # decided in its block, after the other
    assert found["code"] == "not_found" and found["height"] is not None
