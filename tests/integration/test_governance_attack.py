"""The attack of the governance issue, replayed against four real validators.

The issue: an attacker holding only the genesis admin key recovered a citizen's key to a
key it held and spent her coins at a merchant it had just registered; set this year's
caps to 2^53 - 1 and minted a fortune to a puppet citizen through a task it posted and
approved itself; recovered the other admin's key to itself; and `stadsmunt audit` passed
all of it.

Here every step is tried again with the admin key alone and must be refused with the
right code (or, for a citizen's recovery, only opened: delayed, the citizen frozen, and
cancelled by a steward), and the same changes must then succeed through stewards of
enough organisations. The network is the one `stadsmunt network init` makes: four
validators, one organisation per validator (municipality, cbs, brightlands, vng) with a
steward key each, and the default constitution (policy.set 3, member.privileged 3,
member.recover 2, constitution.set 4; recovery delay 72 hours).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time

from netharness import run_cli
from chaincode import constitution
from chaincode.args import MAX_AMOUNT
from chaincode.periods import periods
from chaincode.policies import DEFAULT_POLICIES
from client import Client
from node import keys
from protocol.codec import jsonable
from node.keys import Keypair

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
FORTUNE = 1_000_000_000_000          # 10,000,000,000.00 coins, in cents


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def kinds(result: dict) -> list[str]:
    return [event["kind"] for event in result["events"]]


class Ledger:
    """Sends signed transactions through the gateways and checks each decided code;
    counts what it sent, to compare with what the audit replays."""

    def __init__(self, clients: dict[str, Client]):
        self.clients = clients
        self.ok = 0
        self.rejected = 0
        self.height = 0          # the highest block a decided answer named

    async def read_account(self, reader: Client, key: bytes) -> dict:
        """An account as `reader`'s validator sees it once it has executed every block
        an answer named (an answer through another gateway can be ahead of it)."""
        deadline = time.monotonic() + 20
        while (await reader.status())["height"] < self.height:
            assert time.monotonic() < deadline, "the reader's validator did not catch up"
            await asyncio.sleep(0.05)
        return await reader.account(key)

    async def expect(self, code: str, kind: str, args: dict, signer: Keypair,
                     via: str = "municipality") -> dict:
        result = await self.clients[via].send(kind, args, signer=signer, check=False)
        assert result["status"] in ("committed", "rejected"), \
            f"{kind} not decided in time: {result}"
        # a signer that is no longer an active member may be refused at the door, before
        # ordering (no height, nothing on the chain), or in a block, when its validator
        # had not executed the change yet when the envelope came: both are correct
        ordered = result["height"] is not None
        if ordered:
            self.height = max(self.height, result["height"])
        assert result["code"] == code, \
            (f"{kind} {jsonable(args)} signed by {signer.public.hex()[:12]}: expected {code}, got "
             f"{result['code']} {result.get('info')} ({result.get('detail')}); "
             f"events {result.get('events')}")
        assert ordered or code in ("unknown_member", "revoked", "frozen"), \
            f"{kind}: decided without a height: {result}"
        if code == "ok":
            self.ok += 1
        elif ordered:
            self.rejected += 1
            assert result["events"] == [], "a rejection has no events"
        return result


async def test_the_admin_key_alone_no_longer_takes_over_and_stewards_of_enough_organisations_do(
        network):
    started = time.monotonic()
    net = await network(4)
    municipality, cbs, brightlands, vng = net.names
    assert net.names == ["municipality", "cbs", "brightlands", "vng"]
    steward = {name: keys.read_key_file(net.root / "keys" / f"steward-{name}.key")
               for name in net.names}
    admin = net.admin                              # the attacker holds this key, and only it
    year = periods(now_ms())[0]
    in_force = max((p for p in DEFAULT_POLICIES if p["year"] <= year),
                   key=lambda p: p["year"])        # the genesis policy the caps come from

    async with contextlib.AsyncExitStack() as stack:
        # each organisation's steward talks to its own validator's gateway; the admin to
        # the municipality's; every client reads with the admin's token
        clients = {name: await stack.enter_async_context(
                       Client(net.gateways[name], key=admin, chain=net.chain))
                   for name in net.names}
        ledger = Ledger(clients)
        expect = ledger.expect
        reader = clients[municipality]

        async def propose(org: str, action: str, args: dict, code: str = "ok") -> dict:
            return await expect(code, "gov.propose",
                                {"action": action, "args": args,
                                 "expires": now_ms() + DAY_MS},
                                steward[org], via=org)

        async def approve(org: str, proposal: str, signer: Keypair | None = None,
                          code: str = "ok") -> dict:
            return await expect(code, "gov.approve", {"proposal": proposal},
                                signer or steward[org], via=org)

        # ---- set-up: a citizen who earned coins, a second admin, a second cbs steward --
        citizen = Keypair.generate()
        await expect("ok", "member.register", {"key": citizen.public, "role": "citizen",
                                               "age_band": "21plus", "area": "centrum"},
                     admin)
        deadline = now_ms() + DAY_MS
        await expect("ok", "task.post", {"task": "park-cleanup", "title": "Clean the park",
                                         "area": "centrum", "domain": "nature",
                                         "reward": 500, "minutes": 60, "slots": 1,
                                         "deadline": deadline}, admin)
        await expect("ok", "task.claim", {"task": "park-cleanup"}, citizen, via=cbs)
        await expect("ok", "task.submit", {"task": "park-cleanup", "proof": b"p" * 32},
                     citizen, via=cbs)
        approved = await expect("ok", "task.approve",
                                {"task": "park-cleanup", "citizen": citizen.public}, admin)
        assert approved["events"][0]["minted"] == 500
        assert (await ledger.read_account(reader, citizen.public))["balance"] == 500

        other_admin = Keypair.generate()
        proposed = await propose(municipality, "member.register",
                                 {"key": other_admin.public, "role": "admin"})
        assert kinds(proposed) == ["gov.proposed"]
        assert proposed["events"][0]["threshold"] == 3
        register_admin = proposed["tx_id"]
        assert kinds(await approve(cbs, register_admin)) == ["gov.approved"]
        enacted = await approve(brightlands, register_admin)
        assert kinds(enacted) == ["gov.approved", "gov.enacted", "member.registered"]
        assert enacted["events"][2]["key"] == other_admin.public.hex()
        assert enacted["events"][2]["role"] == "admin"
        assert (await ledger.read_account(reader, other_admin.public))["role"] == "admin"

        # a second steward of cbs (a steward change needs cbs among the approvers)
        second_cbs = Keypair.generate()
        proposed = await propose(cbs, "member.register",
                                 {"key": second_cbs.public, "role": "steward",
                                  "organisation": cbs})
        await approve(municipality, proposed["tx_id"])
        enacted = await approve(vng, proposed["tx_id"])
        assert kinds(enacted) == ["gov.approved", "gov.enacted", "member.registered"]
        assert enacted["events"][2]["organisation"] == cbs

        # ---- the attack, with the admin key alone ----------------------------------
        stolen = Keypair.generate()                 # a key the attacker holds
        shop = Keypair.generate()                   # and its merchant: the admin alone
        # may still register merchants (class member.merchant is 0)
        await expect("ok", "member.register",
                     {"key": shop.public, "role": "merchant", "name": "Front shop"}, admin)

        # 1. recovering the citizen to the attacker's key only opens a delayed recovery
        opened = await expect("ok", "member.recover",
                              {"old": citizen.public, "new": stolen.public}, admin)
        assert kinds(opened) == ["member.recovery_opened"]
        event = opened["events"][0]
        assert (event["old"], event["new"]) == (citizen.public.hex(), stolen.public.hex())
        block = await reader.get(f"/v1/blocks/{opened['height']}")
        assert event["effective"] == block["time"] + 72 * HOUR_MS
        # the attacker's key is not a member yet; the citizen's key is frozen
        await expect("unknown_member", "coin.spend", {"to": shop.public, "amount": 500},
                     stolen)
        await expect("frozen", "coin.spend", {"to": shop.public, "amount": 500}, citizen,
                     via=cbs)
        await expect("invalid_state", "recovery.complete", {"old": citizen.public}, admin)
        assert (await ledger.read_account(reader, citizen.public))["balance"] == 500
        # a steward sees it and cancels it
        cancelled = await expect("ok", "recovery.cancel", {"old": citizen.public},
                                 steward[vng], via=vng)
        assert cancelled["events"] == [{"kind": "member.recovery_cancelled",
                                        "old": citizen.public.hex(),
                                        "by": steward[vng].public.hex()}]
        # after a steward's cancel only governance may recover that key
        await expect("invalid_state", "member.recover",
                     {"old": citizen.public, "new": stolen.public}, admin)
        await expect("not_found", "recovery.complete", {"old": citizen.public}, admin)
        await expect("unknown_member", "coin.spend", {"to": shop.public, "amount": 500},
                     stolen)

        # 2. the caps cannot be raised by the admin
        unbounded = {"year": year, "hourly_cap_21plus": MAX_AMOUNT,
                     "hourly_cap_under21": MAX_AMOUNT, "monthly_cap": MAX_AMOUNT,
                     "yearly_cap": MAX_AMOUNT}
        await expect("unauthorized", "policy.set", unbounded, admin)

        # 3. the other admin's key cannot be recovered, revoked or outnumbered
        await expect("unauthorized", "member.recover",
                     {"old": other_admin.public, "new": stolen.public}, admin)
        await expect("unauthorized", "member.recover",
                     {"old": other_admin.public, "new": Keypair.generate().public}, admin)
        await expect("unauthorized", "member.revoke", {"key": other_admin.public}, admin)
        await expect("unauthorized", "member.register",
                     {"key": stolen.public, "role": "admin"}, admin)
        await expect("unauthorized", "member.register",
                     {"key": stolen.public, "role": "steward",
                      "organisation": municipality}, admin)

        # 4. nor the constitution that says so
        loosest = {name: constitution.LEAST[name] for name in constitution.CLASSES}
        await expect("unauthorized", "constitution.set",
                     {"thresholds": loosest, "recovery_delay_ms": 0}, admin)

        # 5. the caps in force hold: no fortune through a task for a puppet citizen
        puppet = Keypair.generate()
        await expect("ok", "member.register", {"key": puppet.public, "role": "citizen",
                                               "age_band": "21plus", "area": "centrum"},
                     admin)
        fortune = {"task": "fortune", "title": "Count the clouds", "area": "centrum",
                   "domain": "nature", "reward": FORTUNE, "minutes": 60, "slots": 1,
                   "deadline": now_ms() + DAY_MS}
        refused = await expect("hourly_rate_exceeded", "task.post", fortune, admin)
        assert refused["info"] == {"band": "21plus",
                                   "max_reward": in_force["hourly_cap_21plus"]}
        # the most the hourly cap allows (a week's work) posts, but no citizen may claim
        # beyond the monthly cap
        week = 7 * 24 * 60
        most = in_force["hourly_cap_21plus"] * week // 60
        assert most > in_force["monthly_cap"]
        await expect("ok", "task.post", {"task": "week", "title": "A week of work",
                                         "area": "centrum", "domain": "nature",
                                         "reward": most, "minutes": week, "slots": 1,
                                         "deadline": now_ms() + DAY_MS}, admin)
        capped = await expect("cap_exceeded", "task.claim", {"task": "week"}, puppet)
        assert capped["info"]["cap"] == "monthly"
        assert (await ledger.read_account(reader, puppet.public))["balance"] == 0

        # ---- the same changes through stewards ---------------------------------------
        # policy.set: proposed by one organisation, enacted at the third
        proposed = await propose(municipality, "policy.set", unbounded)
        assert kinds(proposed) == ["gov.proposed"]
        assert proposed["events"][0]["threshold"] == 3
        policy_proposal = proposed["tx_id"]
        second = await approve(cbs, policy_proposal)
        assert kinds(second) == ["gov.approved"], "two organisations are not enough"
        assert second["events"][0]["approvals"] == 2
        # a second steward of the same organisation does not count
        await approve(cbs, policy_proposal, signer=second_cbs, code="exists")
        # nor does the admin, which is no steward
        await expect("unauthorized", "gov.approve", {"proposal": policy_proposal}, admin)
        # not in force yet: the caps still hold
        await expect("hourly_rate_exceeded", "task.post", fortune, admin)
        third = await approve(brightlands, policy_proposal)
        assert kinds(third) == ["gov.approved", "gov.enacted", "policy.set"]
        assert third["events"][0]["approvals"] == 3
        assert third["events"][1] == {"kind": "gov.enacted", "proposal": policy_proposal,
                                      "action": "policy.set"}
        assert {k: third["events"][2][k] for k in unbounded} == unbounded
        # now in force: the same task posts
        await expect("ok", "task.post", fortune, admin)
        # enacted is closed: a late approval is refused
        await approve(vng, policy_proposal, code="invalid_state")

        # the citizen's lost key, recovered at once by two organisations
        new_phone = Keypair.generate()
        proposed = await propose(vng, "member.recover",
                                 {"old": citizen.public, "new": new_phone.public})
        assert kinds(proposed) == ["gov.proposed"]
        assert proposed["events"][0]["threshold"] == 2
        recovered = await approve(brightlands, proposed["tx_id"])
        assert kinds(recovered) == ["gov.approved", "gov.enacted", "member.recovered"]
        assert recovered["events"][2] == {"kind": "member.recovered",
                                          "old": citizen.public.hex(),
                                          "new": new_phone.public.hex(), "balance": 500}
        moved = await ledger.read_account(reader, new_phone.public)
        assert (moved["role"], moved["active"], moved["balance"]) == ("citizen", True, 500)
        old = await ledger.read_account(reader, citizen.public)
        assert (old["active"], old["balance"]) == (False, 0)
        assert old["recovered_to"] == new_phone.public.hex()
        await expect("revoked", "coin.spend", {"to": shop.public, "amount": 100}, citizen)
        await expect("ok", "coin.spend", {"to": shop.public, "amount": 100}, new_phone)

        # ---- every validator holds the same chain, and the audit passes -----------------
        top = await net.wait_caught_up(timeout_s=20)
        blocks = await net.assert_same_blocks(net.names, top)
        statuses = await net.statuses(net.names)
        assert {s["height"] for s in statuses.values()} == {top}
        assert {s["head"] for s in statuses.values()} == {blocks[-1]["hash"]}
        sent = ledger.ok + ledger.rejected
        assert sum(len(b["txs"]) for b in blocks) == sent

        urls = [net.gateways[name] for name in net.names]
        audit = await asyncio.to_thread(
            run_cli, "audit", *urls, "--genesis-hash", net.genesis_hash,
            "--key", str(net.root / "keys" / "admin.key"), "--json", "--jobs", "2")
        assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
        report = json.loads(audit.stdout)
        assert report["ok"] and not report["warnings"], report
        summary = report["summary"]
        assert (summary["transactions"], summary["ok"], summary["rejected"]) == \
            (sent, ledger.ok, ledger.rejected)
        assert summary["head"] == blocks[-1]["hash"]
        assert summary["minted"] == 500

    assert time.monotonic() - started < 90, "the replay should take well under a minute"
