"""Helpers of the gateway's tests: free ports, fresh keys, and `Chain`, which signs and
submits through the HTTP API, so every test exercises the same door. (A module of its
own, not conftest: another test folder's conftest would shadow it in one pytest run.)"""
from __future__ import annotations

import os
import socket
import time


from gateway.auth import make_token
from node.envelope import sign_tx
from node.keys import Keypair

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_key() -> Keypair:
    return Keypair.from_seed(os.urandom(32))


class Chain:
    """Sign, submit and read through the gateway as an app would."""

    def __init__(self, client, node, admin: Keypair):
        self.client, self.node, self.admin = client, node, admin
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
        key = new_key()
        args = {"key": key.public, "role": role, **attributes}
        if role == "citizen":
            args.setdefault("age_band", "21plus")
            args.setdefault("area", "GMS")
        if role == "merchant":
            args.setdefault("name", "De Kroon")
        await self.tx(self.admin, "member.register", args)
        return key

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


