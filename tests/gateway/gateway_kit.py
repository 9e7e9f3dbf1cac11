"""Helpers of the gateway's tests: free ports, fresh keys, and `Chain`, which signs and
submits through the HTTP API, so every test exercises the same door. (A module of its
own, not conftest: another test folder's conftest would shadow it in one pytest run.)"""
from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from chaincode.periods import periods
from protocol.token import make_token
from node import genesis as genesis_file
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from ops import network

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# The `gov` fixture's network: three organisations, municipality with two stewards;
# merchants' registrations and revocations governed (1), privileged roles, policies and
# recoveries by two organisations, the constitution by all three; a short recovery delay.
GOVERNED_STEWARDS = {"municipality": 2, "cbs": 1, "vng": 1}
GOVERNED_THRESHOLDS = {"policy.set": 2, "member.citizen": 0, "member.merchant": 1,
                       "member.privileged": 2, "member.recover": 2, "validators.set": 2,
                       "rules.activate": 2, "constitution.set": 3}
GOVERNED_DELAY_MS = 1_500
# The constitution's classes, each at 1 (what `network init` makes for one organisation,
# except that citizens and merchants are the admin's alone).
ONE = {"policy.set": 1, "member.citizen": 0, "member.merchant": 0, "member.privileged": 1,
       "member.recover": 1, "validators.set": 1, "rules.activate": 1, "constitution.set": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_key() -> Keypair:
    return Keypair.from_seed(os.urandom(32))


def policy(year_ahead: int = 1, monthly: int = 23_000) -> dict:
    """policy.set's args for a year to come."""
    return {"year": periods(now_ms())[0] + year_ahead, "hourly_cap_21plus": 600,
            "hourly_cap_under21": 400, "monthly_cap": monthly, "yearly_cap": 230_000}


def kinds(body: dict) -> list[str]:
    return [e["kind"] for e in body["events"]]


def failed_code(body: dict) -> str:
    """The code of the gov.failed event in a committed proposal or approval."""
    assert body["code"] == "ok", body
    (failed,) = [e for e in body["events"] if e["kind"] == "gov.failed"]
    return failed["code"]


async def pass_time(chain, ms: int) -> None:
    """Until the wall clock, and so the time of the next block, is past `ms`: asks the
    gateway while it waits (time passing, not synchronisation)."""
    while now_ms() <= ms:
        await chain.get("/v1/status")
        await asyncio.sleep(0.02)


PRIVILEGED = ("reviewer", "admin", "auditor", "steward")


class Chain:
    """Sign, submit and read through the gateway as an app would. Governance: `steward`
    (the first organisation's first steward) proposes, and the first steward of each
    other organisation in `stewards` approves until the action is enacted. (On a
    one-organisation network every threshold is 1: the proposal is enacted at once.)"""

    def __init__(self, client, node, admin: Keypair, steward: Keypair | None = None,
                 stewards: dict[str, list[Keypair]] | None = None):
        self.client, self.node, self.admin = client, node, admin
        self.stewards = stewards or {"municipality": [steward]}
        self.steward = steward or next(iter(self.stewards.values()))[0]
        self.governed_roles = set(PRIVILEGED)       # registered through governance
        self.chain = node.chain

    def envelope(self, signer: Keypair, kind: str, args: dict) -> bytes:
        return sign_tx(signer, self.chain, kind, args)

    async def send(self, envelope: bytes) -> dict:
        response = await self.client.post("/v1/tx?wait=true&timeout=20", data=envelope,
                                          headers={"Content-Type": "application/msgpack"})
        body = await response.json()
        assert response.status == 200, body
        return body

    async def tx(self, signer: Keypair, kind: str, args: dict, code: str = "ok") -> dict:
        body = await self.send(self.envelope(signer, kind, args))
        assert body["code"] == code, body
        return body

    def auth(self, keypair: Keypair, ms: int | None = None) -> dict:
        token = make_token(keypair, self.chain, now_ms() if ms is None else ms)
        return {"Authorization": f"Stadsmunt {token}"}

    async def get(self, path: str, reader: Keypair | None = None, expect: int = 200,
                  **params) -> dict:
        headers = self.auth(reader) if reader is not None else {}
        response = await self.client.get(path, headers=headers, params=params or None)
        body = await response.json(content_type=None)
        assert response.status == expect, (response.status, body)
        return body

    async def all_pages(self, path: str, reader: Keypair | None = None, **params) -> list:
        items, cursor = [], None
        for _ in range(10_000):
            extra = dict(params, cursor=cursor) if cursor is not None else params
            page = await self.get(path, reader, **extra)
            items += page["items"]
            cursor = page["next"]
            if cursor is None:
                return items
        raise AssertionError("paging never ended")

    # ---- members ----

    async def member(self, role: str, **attributes) -> Keypair:
        """A new member; a privileged role through governance (the steward's proposal)."""
        key = new_key()
        args = {"key": key.public, "role": role, **attributes}
        if role == "citizen":
            args.setdefault("age_band", "21plus")
            args.setdefault("area", "GMS")
        if role == "merchant":
            args.setdefault("name", "De Kroon")
        if role in self.governed_roles:
            await self.govern("member.register", args)
        else:
            await self.tx(self.admin, "member.register", args)
        return key

    async def propose(self, action: str, args: dict, steward: Keypair | None = None,
                      expires: int | None = None, code: str = "ok", **extra) -> dict:
        return await self.tx(steward or self.steward, "gov.propose", {
            "action": action, "args": args,
            "expires": now_ms() + DAY_MS if expires is None else expires, **extra}, code)

    async def approve(self, proposal: str, steward: Keypair, code: str = "ok") -> dict:
        return await self.tx(steward, "gov.approve", {"proposal": proposal}, code)

    async def govern(self, action: str, args: dict, steward: Keypair | None = None) -> dict:
        """Propose, and approve by the other organisations until enacted; returns the
        enacting transaction's answer (its events: gov.enacted, then the action's)."""
        body = await self.propose(action, args, steward)
        proposal = body["events"][0]["proposal"]
        others = [keys[0] for keys in self.stewards.values()
                  if (steward or self.steward) not in keys]
        while not any(e["kind"] in ("gov.enacted", "gov.failed") for e in body["events"]):
            assert others, body
            body = await self.approve(proposal, others.pop(0))
        assert "gov.enacted" in [e["kind"] for e in body["events"]], body
        return body

    async def task(self, task_id: str, reward: int = 500, minutes: int | None = None,
                   slots: int = 5, area: str = "GMS", deadline: int | None = None) -> dict:
        if minutes is None:     # enough time for the reward at 5.00 an hour
            minutes = max(1, -(-reward * 60 // 500))
        return await self.tx(self.admin, "task.post", {
            "task": task_id, "title": f"Clean up {task_id}", "area": area,
            "domain": "public-space", "reward": reward, "minutes": minutes, "slots": slots,
            "deadline": deadline if deadline is not None else now_ms() + DAY_MS})

    async def earn(self, citizen: Keypair, task_id: str, reviewer: Keypair | None = None):
        await self.tx(citizen, "task.claim", {"task": task_id})
        await self.tx(citizen, "task.submit", {"task": task_id, "proof": os.urandom(32)})
        await self.tx(reviewer or self.admin, "task.approve",
                      {"task": task_id, "citizen": citizen.public})




def governed_network(folder: Path, stewards: dict[str, int], thresholds: dict,
                     recovery_delay_ms: int, chain: str = "heerlen-test") -> dict:
    """A one-validator network (development mode) whose genesis has several
    organisations, `stewards[org]` steward keys each, and this constitution; the
    validator belongs to the first organisation. Returns {org: [steward Keypair]}."""
    network.init(folder, validators=1, chain=chain, base_port=free_port())
    name = network.validator_names(1)[0]
    validator = read_key_file(folder / name / "validator.key")
    admin = read_key_file(folder / "keys" / "admin.key")
    keys = {org: [new_key() for _ in range(count)] for org, count in stewards.items()}
    genesis = genesis_file.Genesis(
        chain=chain, city="Heerlen", coin_name="Heerlens Heitje", coin_symbol="HHT",
        validators=(genesis_file.GenesisValidator(name, validator.public, list(stewards)[0]),),
        admins=(admin.public,),
        organisations=tuple(genesis_file.Organisation(org, tuple(k.public for k in pairs))
                            for org, pairs in keys.items()),
        checkpoint_interval=16,
        constitution={"organisations": list(stewards), "thresholds": dict(thresholds),
                      "recovery_delay_ms": recovery_delay_ms})
    genesis.save(folder / "genesis.json")
    genesis.save(folder / name / "genesis.json")
    return keys
