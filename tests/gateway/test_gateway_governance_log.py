"""Governance and recoveries in the event log: /v1/events with `kind`, the live stream,
the history of every key a recovery or a proposal names, and a delayed recovery that
completes once its time has come."""
from __future__ import annotations

from gateway_kit import ONE, kinds, new_key, pass_time, policy
from test_gateway_log import read_sse


async def test_recovery_events_show_in_the_histories_of_old_new_and_canceller(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    lost, given = new_key(), new_key()
    opened = await chain.tx(chain.admin, "member.recover", {"old": alice.public,
                                                            "new": lost.public})
    effective = opened["events"][0]["effective"]
    await chain.tx(chain.steward, "recovery.cancel", {"old": alice.public})
    await chain.tx(chain.admin, "member.recover", {"old": bob.public, "new": lost.public})
    moved = await chain.govern("member.recover", {"old": bob.public, "new": given.public})
    assert kinds(moved) == ["gov.proposed", "gov.enacted", "member.recovery_cancelled",
                            "member.recovered"]
    assert moved["events"][2] == {"kind": "member.recovery_cancelled",
                                  "old": bob.public.hex(), "by": "governance"}

    async def history(key, reader=None) -> list[dict]:
        return await chain.all_pages(f"/v1/accounts/{key.public.hex()}/history",
                                     reader or key)
    assert [e["kind"] for e in await history(alice)] == [
        "member.registered", "member.recovery_opened", "member.recovery_cancelled"]
    assert [e["kind"] for e in await history(bob, chain.admin)] == [
        "member.registered", "member.recovery_opened", "gov.proposed",
        "member.recovery_cancelled", "member.recovered"]
    # the new key of both opened recoveries, never a member: its events are its own
    lost_events = await history(lost)
    assert [(e["kind"], e["old"]) for e in lost_events] == [
        ("member.recovery_opened", alice.public.hex()),
        ("member.recovery_opened", bob.public.hex())]
    assert lost_events[0]["effective"] == effective
    assert [e["kind"] for e in await history(given)] == ["gov.proposed", "member.recovered"]
    cancels = await history(chain.steward)
    assert [(e["kind"], e["by"]) for e in cancels if e["kind"].startswith("member.")] == [
        ("member.recovery_cancelled", chain.steward.public.hex())]
    events = await chain.all_pages("/v1/events", chain.admin, account=lost.public.hex(),
                                   kind="member.recovery_opened")
    assert len(events) == 2
    await chain.get("/v1/events", alice, expect=403, account=lost.public.hex())


async def test_every_governance_kind_filters_the_log(gov):
    (m0, _), (c0,), (v0,) = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    withdrawn = (await gov.propose("policy.set", policy(2), m0))["tx_id"]
    await gov.tx(m0, "gov.withdraw", {"proposal": withdrawn})
    failing = (await gov.propose("member.register", {
        "key": new_key().public, "role": "steward", "organisation": "nowhere"}, m0))["tx_id"]
    await gov.approve(failing, c0)
    law = dict(ONE, **{"constitution.set": 3, "member.merchant": 1})
    await gov.govern("constitution.set", {"thresholds": law, "recovery_delay_ms": 60_000})
    citizen = await gov.member("citizen")
    await gov.tx(gov.admin, "member.recover", {"old": citizen.public, "new": new_key().public})
    await gov.tx(v0, "recovery.cancel", {"old": citizen.public})
    seen = {}
    for kind in ("gov.proposed", "gov.approved", "gov.enacted", "gov.failed",
                 "gov.withdrawn", "constitution.set", "member.recovery_opened",
                 "member.recovery_cancelled"):
        seen[kind] = await gov.all_pages("/v1/events", gov.admin, kind=kind)
        assert seen[kind] and all(e["kind"] == kind for e in seen[kind]), kind
    assert [e["proposal"] for e in seen["gov.withdrawn"]] == [withdrawn]
    assert [(e["proposal"], e["code"], e["info"]) for e in seen["gov.failed"]] == [
        (failing, "not_found", {})]
    assert [e["approvals"] for e in seen["gov.approved"]] == [2, 2, 3]
    (law_set,) = seen["constitution.set"]
    assert law_set["thresholds"] == law and law_set["recovery_delay_ms"] == 60_000
    assert law_set["organisations"] == ["municipality", "cbs", "vng"]
    assert seen["gov.proposed"][0]["args"] == policy(2)
    assert seen["member.recovery_cancelled"][0]["by"] == v0.public.hex()
    assert (await gov.get("/v1/constitution"))["thresholds"] == law


async def test_the_stream_carries_governance_events_live(chain, node):
    citizen = await chain.member("citizen")
    start = node.store.last_position()
    stream = await chain.client.get("/v1/events/stream", headers=chain.auth(chain.admin),
                                    params={"after": str(start)})
    await chain.tx(chain.admin, "member.recover", {"old": citizen.public,
                                                   "new": new_key().public})
    await chain.govern("policy.set", policy())
    events = await read_sse(stream, node.store.last_position())
    stream.close()
    assert [e["data"]["kind"] for e in events] == [
        "member.recovery_opened", "gov.proposed", "gov.enacted", "policy.set"]
    live = await chain.client.get("/v1/events/stream", headers=chain.auth(chain.steward),
                                  params={"kind": "member.recovery_opened",
                                          "account": citizen.public.hex()})
    (opened,) = await read_sse(live, events[0]["id"])
    live.close()
    assert opened["data"]["old"] == citizen.public.hex()


async def test_a_due_recovery_completes_and_moves_the_account(gov):
    alice, shop = await gov.member("citizen"), await gov.member("merchant")
    await gov.task("due", reward=700)
    await gov.earn(alice, "due")
    new = new_key()
    opened = await gov.tx(gov.admin, "member.recover", {"old": alice.public,
                                                        "new": new.public})
    effective = opened["events"][0]["effective"]
    await pass_time(gov, effective)
    done = await gov.tx(gov.admin, "recovery.complete", {"old": alice.public})
    assert done["events"] == [{"kind": "member.recovered", "old": alice.public.hex(),
                               "new": new.public.hex(), "balance": 700}]
    old = await gov.get(f"/v1/accounts/{alice.public.hex()}", alice)
    assert (old["frozen"], old["recovery"], old["active"]) == (False, None, False)
    assert old["recovered_to"] == new.public.hex()
    moved = await gov.get(f"/v1/accounts/{new.public.hex()}", new)
    assert (moved["balance"], moved["frozen"], moved["recovery"]) == (700, False, None)
    await gov.tx(new, "coin.spend", {"to": shop.public, "amount": 100})
    await gov.tx(alice, "coin.spend", {"to": shop.public, "amount": 100}, code="revoked")
