"""Accounts, tasks, merchants, payouts, transactions, status and stats through HTTP."""
from __future__ import annotations

import base64
import hashlib
import os

from gateway_kit import new_key, now_ms
from chaincode import DEFAULT_POLICIES
from gateway.stats import Aggregates
from chaincode.periods import periods
from protocol import codec
from node.genesis import GENESIS_TAG


def policy_now() -> dict:
    """The genesis's cap policy in force this year (its latest at or before it)."""
    year = periods(now_ms())[0]
    return max((p for p in DEFAULT_POLICIES if p["year"] <= year), key=lambda p: p["year"])


async def test_account_shows_balance_and_what_is_left_of_each_cap(chain):
    alice = await chain.member("citizen", area="BU09170000")
    await chain.task("t1", reward=500)
    await chain.task("t2", reward=300)
    await chain.earn(alice, "t1")
    await chain.tx(alice, "task.claim", {"task": "t2"})
    body = await chain.get(f"/v1/accounts/{alice.public.hex()}", alice)
    _, month, year = periods(now_ms())
    monthly, yearly = policy_now()["monthly_cap"], policy_now()["yearly_cap"]
    assert body["balance"] == 500 and body["area"] == "BU09170000"
    assert body["age_band"] == "21plus" and body["active"] is True
    assert body["frozen"] is False and body["recovery"] is None
    assert body["earnings"]["month"] == {"period": month, "earned": 500, "reserved": 300,
                                         "cap": monthly, "remaining": monthly - 800}
    assert body["earnings"]["year"]["period"] == year
    assert body["earnings"]["year"]["remaining"] == yearly - 800


async def test_history_pages_through_the_accounts_events_in_order(chain):
    alice = await chain.member("citizen")
    for i in range(3):
        await chain.task(f"h{i}")
        await chain.earn(alice, f"h{i}")
    events = await chain.all_pages(f"/v1/accounts/{alice.public.hex()}/history", alice,
                                   limit=2)
    kinds = [e["kind"] for e in events]
    assert kinds == ["member.registered"] + ["task.claimed", "task.submitted",
                                             "task.approved"] * 3
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))


async def test_statement_lists_twelve_months_and_the_total(chain):
    alice = await chain.member("citizen")
    await chain.task("s1", reward=700)
    await chain.earn(alice, "s1")
    year, month, _ = periods(now_ms())
    body = await chain.get(f"/v1/accounts/{alice.public.hex()}/statement", alice, year=year)
    assert [m["period"] for m in body["months"]] == [f"{year}-{m:02d}" for m in range(1, 13)]
    assert {m["period"]: m["earned"] for m in body["months"]}[month] == 700
    assert body["total"] == 700
    await chain.get(f"/v1/accounts/{alice.public.hex()}/statement", alice, expect=400)


async def test_tasks_filter_by_area_and_status_and_page(chain):
    for i in range(5):
        await chain.task(f"a{i}", area="GMS" if i % 2 else "ZON")
    await chain.tx(chain.admin, "task.cancel", {"task": "a0"})
    everything = await chain.all_pages("/v1/tasks", limit=2)
    assert sorted(t["task"] for t in everything) == [f"a{i}" for i in range(5)]
    gms = await chain.all_pages("/v1/tasks", area="GMS", limit=1)
    assert sorted(t["task"] for t in gms) == ["a1", "a3"]
    cancelled = await chain.all_pages("/v1/tasks", status="cancelled")
    assert [t["task"] for t in cancelled] == ["a0"]
    open_zon = await chain.all_pages("/v1/tasks", status="open", area="ZON", limit=1)
    assert sorted(t["task"] for t in open_zon) == ["a2", "a4"]
    assert all("claims" not in t for t in everything)


async def test_a_task_past_its_deadline_is_closed_by_the_head_blocks_time(chain):
    # far enough ahead that posting commits before it even on a loaded machine
    await chain.task("soon", deadline=now_ms() + 3_000)
    while now_ms() < (await chain.get("/v1/tasks/soon"))["deadline"] + 10:
        await chain.client.get("/v1/status")      # time passing, not synchronisation
    await chain.member("citizen")                 # a block whose time is past it
    assert (await chain.get("/v1/tasks/soon"))["status"] == "closed"
    closed = await chain.all_pages("/v1/tasks", status="closed")
    assert [t["task"] for t in closed] == ["soon"]


async def test_claims_show_only_with_a_token_and_a_citizen_sees_only_its_own(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    await chain.task("c1")
    await chain.tx(alice, "task.claim", {"task": "c1"})
    await chain.tx(bob, "task.claim", {"task": "c1"})
    assert "claims" not in await chain.get("/v1/tasks/c1")
    mine = (await chain.get("/v1/tasks/c1", alice))["claims"]
    assert mine == [{"citizen": alice.public.hex(), "state": "open"}]
    every = (await chain.get("/v1/tasks/c1", chain.admin))["claims"]
    assert sorted(c["citizen"] for c in every) == sorted([alice.public.hex(),
                                                          bob.public.hex()])
    listed = await chain.get("/v1/tasks", chain.admin)
    assert len(listed["items"][0]["claims"]) == 2
    await chain.get("/v1/tasks/nothing-here", expect=404)


async def test_merchants_lists_active_merchants_only_in_pages(chain):
    shops = [await chain.member("merchant", name=f"Shop {i}") for i in range(3)]
    await chain.member("citizen")
    await chain.tx(chain.admin, "member.revoke", {"key": shops[0].public})
    listed = await chain.all_pages("/v1/merchants", limit=1)
    assert sorted(m["key"] for m in listed) == sorted(s.public.hex() for s in shops[1:])
    assert {m["name"] for m in listed} == {"Shop 1", "Shop 2"}


async def test_payouts_by_status_after_redemption_and_confirmation(chain):
    alice, shop = await chain.member("citizen"), await chain.member("merchant")
    await chain.task("p1", reward=900)
    await chain.earn(alice, "p1")
    await chain.tx(alice, "coin.spend", {"to": shop.public, "amount": 900})
    first = await chain.tx(shop, "coin.redeem", {"amount": 400})
    second = await chain.tx(shop, "coin.redeem", {"amount": 500})
    await chain.tx(chain.admin, "payout.confirm", {"payout": first["tx_id"],
                                                   "reference": "NL-BANK-1"})
    pending = await chain.all_pages("/v1/payouts", chain.admin, status="pending")
    paid = await chain.all_pages("/v1/payouts", chain.admin, status="paid")
    every = await chain.all_pages("/v1/payouts", chain.admin, limit=1)
    assert [p["payout"] for p in pending] == [second["tx_id"]]
    assert paid == [{"payout": first["tx_id"], "merchant": shop.public.hex(),
                     "amount": 400, "status": "paid", "reference": "NL-BANK-1"}]
    assert len(every) == 2
    await chain.get("/v1/payouts", shop, expect=403)


async def test_a_transaction_shows_its_events_only_to_who_may_read_them(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    await chain.task("e1")
    claim = await chain.tx(alice, "task.claim", {"task": "e1"})
    path = f"/v1/tx/{claim['tx_id']}"
    assert (await chain.get(path))["events"] is None
    assert (await chain.get(path, bob))["events"] is None
    assert (await chain.get(path, alice))["events"][0]["kind"] == "task.claimed"
    body = await chain.get(path, chain.admin)
    assert body["status"] == "committed" and body["height"] >= 1
    await chain.get(f"/v1/tx/{'0' * 64}", expect=404)


async def test_a_capped_claim_is_rejected_with_a_plain_sentence(chain):
    alice = await chain.member("citizen")
    # the month's cap less 10.00, then 20.00 more: 10.00 is what is left
    await chain.task("big", reward=policy_now()["monthly_cap"] - 1_000, minutes=10_000)
    await chain.task("more", reward=2_000, minutes=1_000)
    await chain.tx(alice, "task.claim", {"task": "big"})
    refused = await chain.tx(alice, "task.claim", {"task": "more"}, code="cap_exceeded")
    assert refused["status"] == "rejected" and refused["info"]["cap"] == "monthly"
    assert "monthly limit" in refused["detail"] and "10.00" in refused["detail"]
    again = await chain.get(f"/v1/tx/{refused['tx_id']}")
    assert again["code"] == "cap_exceeded" and again["detail"] == refused["detail"]


async def test_resubmitting_a_known_transaction_executes_nothing(chain):
    alice = await chain.member("citizen")
    await chain.task("r1")
    envelope = chain.envelope(alice, "task.claim", {"task": "r1"})
    first = await chain.send(envelope)
    height = (await chain.get("/v1/status"))["height"]
    again = await chain.send(envelope)
    # the same answer; its events only for a token that may see them (anyone can post a
    # copy of an envelope)
    assert again == dict(first, events=None)
    signed = await chain.client.post("/v1/tx?wait=true", data=envelope, headers=dict(
        chain.auth(alice), **{"Content-Type": "application/msgpack"}))
    assert await signed.json() == first
    assert (await chain.get("/v1/status"))["height"] == height
    batch = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(envelope).decode()]})
    assert (await batch.json())["items"][0]["status"] == "committed"


def _registrations(chain, keys) -> list[bytes]:
    """Registrations of `keys` with a malformed envelope second."""
    envelopes = [chain.envelope(chain.admin, "member.register", {
        "key": k.public, "role": "citizen", "age_band": "21plus", "area": "GMS"})
        for k in keys]
    envelopes.insert(1, b"\x92\xc4\x00\xc4\x00")
    return envelopes


async def test_a_batch_answers_one_item_per_envelope_in_order(chain, node):
    keys = [new_key() for _ in range(3)]
    envelopes = _registrations(chain, keys)
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in envelopes]})
    items = (await response.json())["items"]
    assert [i["status"] for i in items] == ["pending", "refused", "pending", "pending"]
    assert items[1]["code"] == "malformed"
    assert await node.wait(items[3]["tx_id"], 20) is not None
    for key in keys:
        await chain.get(f"/v1/accounts/{key.public.hex()}", key)


async def test_a_msgpack_batch_answers_like_the_json_one(chain, node):
    envelopes = _registrations(chain, [new_key() for _ in range(2)])
    response = await chain.client.post("/v1/txs", data=codec.pack(envelopes),
                                       headers={"Content-Type": "application/msgpack"})
    items = (await response.json())["items"]
    assert [i["status"] for i in items] == ["pending", "refused", "pending"]
    assert items[1]["code"] == "malformed"
    assert await node.wait(items[2]["tx_id"], 20) is not None
    again = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in envelopes]})
    assert [i["status"] for i in (await again.json())["items"]] == \
        ["committed", "refused", "committed"]


async def test_the_genesis_served_is_the_one_whose_hash_the_status_names(chain, node):
    served = await chain.get("/v1/genesis")
    status = await chain.get("/v1/status")
    canonical = base64.b64decode(served["canonical"])
    assert canonical == node.genesis.canonical()
    assert served["hash"] == status["genesis"] == \
        hashlib.sha256(GENESIS_TAG + canonical).hexdigest()
    assert served["chain"] == "heerlen-test" and served["validators"] == [
        {"name": "municipality", "key": node.keypair.public.hex(),
         "organisation": "municipality"}]
    assert served["organisations"] == [{"id": "municipality",
                                        "stewards": [node.steward.public.hex()]}]


async def test_status_names_the_chain_the_node_and_its_validators(chain, node):
    await chain.member("citizen")
    body = await chain.get("/v1/status")
    assert body["chain"] == "heerlen-test" and body["node"] == "municipality"
    assert body["primary"] == "municipality" and body["genesis"] == node.genesis_hash.hex()
    assert body["validators"] == [{"name": "municipality", "key": node.keypair.public.hex(),
                                   "connected": True}]
    assert body["time"] <= now_ms() and body["height"] == 1
    year, policy = periods(now_ms())[0], policy_now()
    carried = f"the {policy['year']} policy applies"
    assert any(carried in w for w in body["warnings"]) == (policy["year"] != year)


async def test_stats_show_totals_and_no_cell_of_the_open_month(chain, node):
    shop = await chain.member("merchant")
    big = await register_many(chain, node, 10)
    small = await register_many(chain, node, 3)
    await chain.task("big-area", reward=100, slots=10, area="BIG")
    await chain.task("small-area", reward=100, slots=10, area="SMALL")
    await earn_many(chain, node, big, "big-area")
    await earn_many(chain, node, small, "small-area")
    await chain.tx(big[0], "coin.spend", {"to": shop.public, "amount": 100})
    await chain.tx(shop, "coin.redeem", {"amount": 60})
    stats = await chain.get("/v1/stats")
    assert (stats["minted"], stats["redeemed"], stats["circulating"]) == (1300, 60, 1240)
    assert stats["members"]["citizen"] == 13 and stats["members"]["merchant"] == 1
    assert stats["members"]["admin"] == 1 and stats["members"]["steward"] == 1
    assert stats["tasks"] == {"open": 2, "closed": 0, "cancelled": 0}
    # this month is open: its cells come once it has closed (the rules' own tests are
    # tests/research/test_disclosure.py)
    _, month, _ = periods(now_ms())
    assert stats["open_month"] == month and stats["cells"] == []
    assert stats["min_cell"] == 10
    # once the month has closed: SMALL (3 citizens) is withheld, and BIG with it, or
    # the minted total less BIG's 1000 would give SMALL's 300 away
    later = Aggregates(node.store)
    await later.catch_up()
    closed = later.json(now_ms() + 32 * 86_400_000)
    assert closed["open_month"] > month
    assert {c["area"]: c for c in closed["cells"]} == {
        area: {"area": area, "month": month, "suppressed": True, "citizens": None,
               "minted": None} for area in ("BIG", "SMALL")}
    await chain.tx(chain.admin, "member.revoke", {"key": small[0].public})
    assert (await chain.get("/v1/stats"))["members"]["citizen"] == 12


async def register_many(chain, node, count: int) -> list:
    keys = [new_key() for _ in range(count)]
    await batch(chain, node, [chain.envelope(chain.admin, "member.register", {
        "key": k.public, "role": "citizen", "age_band": "21plus", "area": "GMS"})
        for k in keys])
    return keys


async def earn_many(chain, node, citizens: list, task: str) -> None:
    await batch(chain, node, [chain.envelope(c, "task.claim", {"task": task})
                              for c in citizens])
    await batch(chain, node, [chain.envelope(c, "task.submit",
                                             {"task": task, "proof": os.urandom(32)})
                              for c in citizens])
    await batch(chain, node, [chain.envelope(chain.admin, "task.approve",
                                             {"task": task, "citizen": c.public})
                              for c in citizens])


async def batch(chain, node, envelopes: list[bytes]) -> None:
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(e).decode() for e in envelopes]})
    items = (await response.json())["items"]
    for item in items:
        result = await node.wait(item["tx_id"], 20)
        assert result is not None and result["code"] == "ok", result
