"""GET /v1/constitution, /v1/proposals and /v1/proposals/{id}, the account's `frozen` and
`recovery`, and what a steward's read token may read (docs/api.md, "Read tokens"), on the
`gov` network of conftest.py: municipality (two stewards), cbs and vng."""
from __future__ import annotations

import base64

from chaincode.periods import periods
from gateway_kit import (DAY_MS, GOVERNED_DELAY_MS, GOVERNED_THRESHOLDS, failed_code, new_key,
                         now_ms, policy)

async def test_the_constitution_lists_organisations_stewards_validators_thresholds(gov):
    (m0, m1), (c0,), (v0,) = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    body = await gov.get("/v1/constitution")
    assert body == {
        "organisations": [
            {"id": "municipality", "stewards": sorted([m0.public.hex(), m1.public.hex()]),
             "validators": ["municipality"]},
            {"id": "cbs", "stewards": [c0.public.hex()], "validators": []},
            {"id": "vng", "stewards": [v0.public.hex()], "validators": []}],
        "thresholds": GOVERNED_THRESHOLDS, "recovery_delay_ms": GOVERNED_DELAY_MS}
    assert (await gov.get("/v1/stats"))["members"]["steward"] == 4
    # a second steward of cbs: two organisations, cbs among them
    c1 = await gov.member("steward", organisation="cbs")
    cbs = (await gov.get("/v1/constitution"))["organisations"][1]
    assert cbs["stewards"] == sorted([c0.public.hex(), c1.public.hex()])
    assert (await gov.get("/v1/stats"))["members"]["steward"] == 5
    account = await gov.get(f"/v1/accounts/{c1.public.hex()}", gov.admin)
    assert account["role"] == "steward" and account["organisation"] == "cbs"


async def test_proposals_page_by_height_then_id_and_filter_by_status(gov):
    (m0, m1), (c0,), _ = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    opened = (await gov.propose("policy.set", policy(1), m0, reason="caps"))["tx_id"]
    withdrawn = (await gov.propose("policy.set", policy(2), m1))["tx_id"]
    await gov.tx(m0, "gov.withdraw", {"proposal": withdrawn})
    enacted = (await gov.propose("policy.set", policy(3), m0))["tx_id"]
    await gov.approve(enacted, c0)
    failing = (await gov.propose("member.register", {
        "key": new_key().public, "role": "steward", "organisation": "nowhere"}, m0))["tx_id"]
    assert failed_code(await gov.approve(failing, c0)) == "not_found"
    # two in one batch: mostly one block, where the id decides
    batch = [gov.envelope(s, "gov.propose", {"action": "policy.set", "args": policy(4),
                                             "expires": now_ms() + DAY_MS}) for s in (m0, c0)]
    answer = await gov.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in batch]})
    both = [item["tx_id"] for item in (await answer.json())["items"]]
    for tx_id in both:
        assert (await gov.node.wait(tx_id, 20))["code"] == "ok"
    every = await gov.all_pages("/v1/proposals", limit=2)
    assert [(p["height"], p["id"]) for p in every] == sorted((p["height"], p["id"])
                                                             for p in every)
    assert {p["id"] for p in every} == {opened, withdrawn, enacted, failing, *both}
    assert await gov.all_pages("/v1/proposals", limit=1) == every
    for status, ids in (("open", {opened, *both}), ("withdrawn", {withdrawn}),
                        ("enacted", {enacted}), ("failed", {failing}), ("expired", set())):
        found = await gov.all_pages("/v1/proposals", status=status, limit=1)
        assert {p["id"] for p in found} == ids and {p["status"] for p in found} <= {status}
    first = next(p for p in every if p["id"] == opened)
    assert first == {"id": opened, "status": "open", "action": "policy.set",
                     "args": policy(1), "organisation": "municipality",
                     "proposer": m0.public.hex(), "expires": first["expires"],
                     "threshold": 2, "approvals": 1, "height": first["height"],
                     "reason": "caps"}
    for bad in ({"status": "lapsed"}, {"cursor": "12"}, {"cursor": "1." + "A" * 64},
                {"limit": "0"}, {"limit": "1001"}, {"sort": "id"}):
        assert (await gov.get("/v1/proposals", expect=400, **bad))["code"] == \
            "invalid_parameter"


async def test_a_proposal_shows_its_approvals_and_whether_they_count_now(gov):
    (m0, m1), (c0,), (v0,) = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    proposal = (await gov.propose("constitution.set", {"thresholds": GOVERNED_THRESHOLDS},
                                  m1))["tx_id"]
    approved = await gov.approve(proposal, c0)
    assert approved["events"] == [{"kind": "gov.approved", "proposal": proposal,
                                   "organisation": "cbs", "approvals": 2}]
    body = await gov.get(f"/v1/proposals/{proposal}")
    assert (body["status"], body["approvals"], body["threshold"]) == ("open", 2, 3)
    assert body["closed_height"] is None and "code" not in body
    assert [(a["organisation"], a["key"], a["counts"]) for a in body["approved_by"]] == [
        ("municipality", m1.public.hex(), True), ("cbs", c0.public.hex(), True)]
    assert body["approved_by"][1]["height"] == approved["height"]
    # m1 revoked (two organisations, municipality among them): its approval stops counting
    await gov.govern("member.revoke", {"key": m1.public}, m0)
    body = await gov.get(f"/v1/proposals/{proposal}")
    assert body["approvals"] == 1 and body["approved_by"][0]["counts"] is False
    listed = await gov.all_pages("/v1/proposals", status="open")
    assert [p["approvals"] for p in listed if p["id"] == proposal] == [1]
    # a failed one keeps its code and info and when it closed
    failing = (await gov.propose("member.register", {
        "key": new_key().public, "role": "steward", "organisation": "nowhere"}, m0))["tx_id"]
    closing = await gov.approve(failing, v0)
    body = await gov.get(f"/v1/proposals/{failing}")
    assert (body["status"], body["code"], body["info"]) == ("failed", "not_found", {})
    assert body["closed_height"] == closing["height"]
    assert (await gov.get(f"/v1/proposals/{'0' * 64}", expect=404))["code"] == "not_found"
    for bad in ("abc", "A" * 64, "0" * 63, "0" * 65, "g" * 64):
        assert (await gov.get(f"/v1/proposals/{bad}", expect=400))["code"] == \
            "invalid_parameter"


async def test_a_recoverys_keys_show_only_to_stewards_and_readers_of_everything(gov):
    m0, (v0,) = gov.steward, gov.stewards["vng"]
    alice, bob = await gov.member("citizen"), await gov.member("citizen")
    reviewer = await gov.member("reviewer")
    new = new_key()
    proposed = await gov.propose("member.recover", {"old": alice.public, "new": new.public})
    path = f"/v1/proposals/{proposed['tx_id']}"
    shown = {"old": alice.public.hex(), "new": new.public.hex()}
    for reader in (None, alice, bob, new):
        assert (await gov.get(path, reader))["args"] == {"old": None, "new": None}
        page = await gov.all_pages("/v1/proposals", reader, status="open")
        assert [p["args"] for p in page] == [{"old": None, "new": None}]
    for reader in (m0, v0, gov.admin, reviewer, gov.node.keypair):
        assert (await gov.get(path, reader))["args"] == shown
        assert [p["args"] for p in await gov.all_pages("/v1/proposals", reader)][-1] == shown
    # the proposal's transaction: its events to stewards, not to a citizen
    tx_path = f"/v1/tx/{proposed['tx_id']}"
    assert (await gov.get(tx_path, v0))["events"][0]["kind"] == "gov.proposed"
    assert (await gov.get(tx_path, bob))["events"] is None
    await gov.get(path, expect=401, auth="x")


async def test_a_steward_reads_the_accounts_governance_names_while_it_does(gov):
    (v0,) = gov.stewards["vng"]
    alice, bob, carol = [await gov.member("citizen") for _ in range(3)]
    new = new_key()
    await gov.get(f"/v1/accounts/{alice.public.hex()}", v0, expect=403)
    proposal = (await gov.propose("member.recover", {"old": alice.public,
                                                     "new": new.public}))["tx_id"]
    assert (await gov.get(f"/v1/accounts/{alice.public.hex()}", v0))["frozen"] is False
    await gov.get(f"/v1/accounts/{new.public.hex()}", v0, expect=404)   # not yet a member
    history = await gov.all_pages(f"/v1/accounts/{alice.public.hex()}/history", v0)
    assert [e["kind"] for e in history] == ["member.registered", "gov.proposed"]
    await gov.get(f"/v1/accounts/{bob.public.hex()}", v0, expect=403)
    await gov.get(f"/v1/accounts/{alice.public.hex()}/statement", v0, expect=403,
                  year=periods(now_ms())[0])
    await gov.get(f"/v1/accounts/{alice.public.hex()}", bob, expect=403)
    await gov.tx(gov.steward, "gov.withdraw", {"proposal": proposal})
    await gov.get(f"/v1/accounts/{alice.public.hex()}", v0, expect=403)
    # an admin's delayed recovery: frozen, and the new key and when it may complete
    opened = await gov.tx(gov.admin, "member.recover", {"old": carol.public,
                                                        "new": new.public})
    effective = opened["events"][0]["effective"]
    body = await gov.get(f"/v1/accounts/{carol.public.hex()}", v0)
    assert body["frozen"] is True
    assert body["recovery"] == {"new": new.public.hex(), "effective": effective}
    assert (await gov.get(f"/v1/accounts/{carol.public.hex()}", carol))["frozen"] is True
    await gov.get("/v1/events", v0, account=carol.public.hex())
    await gov.get("/v1/events", v0, expect=403)
    await gov.get(f"/v1/accounts/{carol.public.hex()}", bob, expect=403)
    await gov.tx(v0, "recovery.cancel", {"old": carol.public})
    body = await gov.get(f"/v1/accounts/{carol.public.hex()}", carol)
    assert (body["frozen"], body["recovery"]) == (False, None)
    await gov.get(f"/v1/accounts/{carol.public.hex()}", v0, expect=403)
    await gov.get("/v1/events", v0, expect=403, account=carol.public.hex())
