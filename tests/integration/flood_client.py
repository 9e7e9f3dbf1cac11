"""A flooding client, run as a process of its own (its signing costs the test's event
loop nothing):

    python flood_client.py URL SECONDS CHAIN strangers
    python flood_client.py URL SECONDS CHAIN spender SEEDHEX MERCHANTHEX

`strangers`: batches of 1,000 well-signed transactions, each from a fresh key that is not
a member. `spender`: one citizen's one-cent spends to one merchant, 1,000 a batch. Posts
to URL's /v1/txs from two connections until SECONDS have passed, then prints one JSON
line: {"sent": n, "items": {"status/code": count}, "http": {status: count}}.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import codec  # noqa: E402
from node.envelope import sign_tx  # noqa: E402
from node.keys import Keypair  # noqa: E402

BATCH = 1000
CONNECTIONS = 2


def batches(chain: str, mode: str, args: list[str]):
    """Endless msgpack bodies of BATCH envelopes."""
    nonce = int.from_bytes(os.urandom(4), "big") << 24
    if mode == "spender":
        payer, merchant = Keypair.from_seed(bytes.fromhex(args[0])), bytes.fromhex(args[1])
    while True:
        envelopes = []
        for _ in range(BATCH):
            nonce += 1
            if mode == "strangers":
                envelopes.append(sign_tx(Keypair.generate(), chain, "task.claim",
                                         {"task": "flood"}, nonce=nonce))
            else:
                envelopes.append(sign_tx(payer, chain, "coin.spend",
                                         {"to": merchant, "amount": 1}, nonce=nonce))
        yield codec.pack(envelopes)


async def flood(url: str, seconds: float, chain: str, mode: str, args: list[str]) -> dict:
    made = batches(chain, mode, args)
    ready = [next(made) for _ in range(4)]      # a head start, then one made per post
    counts = {"sent": 0, "items": {}, "http": {}}
    deadline = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            body = ready.pop() if ready else next(made)
            try:
                async with session.post(url + "/v1/txs", data=body, headers={
                        "Content-Type": "application/msgpack"}) as response:
                    status = str(response.status)
                    items = (await response.json())["items"] if status == "200" else []
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                status, items = type(error).__name__, []
            counts["http"][status] = counts["http"].get(status, 0) + 1
            counts["sent"] += BATCH
            for item in items:
                key = f"{item['status']}/{item['code']}"
                counts["items"][key] = counts["items"].get(key, 0) + 1
            await asyncio.sleep(0)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(one(session) for _ in range(CONNECTIONS)))
    return counts


if __name__ == "__main__":
    url, seconds, chain, mode, *rest = sys.argv[1:]
    print(json.dumps(asyncio.run(flood(url, float(seconds), chain, mode, rest))), flush=True)
