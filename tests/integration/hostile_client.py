"""A hostile HTTP client, run as a process of its own so that building and sending its
bodies costs the test's own event loop nothing (the test times the victims' requests).

    python hostile_client.py URL SECONDS CONCURRENCY [heavy]

Posts to URL, from CONCURRENCY connections, bodies built to make a gateway's decoders
work: 8 MiB of msgpack empty arrays and of empty maps, JSON nested 5,000 deep; with
`heavy` instead 8 MiB batches of large well-formed envelopes with wrong signatures (each
a full decode and signature check: about 1 s of work a batch, however it is bounded).
After SECONDS it prints {status: count} as one JSON line.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp

MIB8 = 8 * 1024 * 1024
MSGPACK = {"Content-Type": "application/msgpack"}
JSON = {"Content-Type": "application/json"}


def array32(filler: bytes) -> bytes:
    count = (MIB8 - 5) // len(filler)
    return b"\xdd" + count.to_bytes(4, "big") + filler * count


def heavy_batch() -> bytes:
    """An 8 MiB msgpack batch of well-formed envelopes of 16 KiB (args of 16,000 small
    numbers) whose signatures do not verify: each costs a full decode and a signature
    check, about 2 ms, and the batch about 1 s of one core."""
    import msgpack
    envelopes, size = [], 0
    while size < MIB8 - 40 * 1024:
        body = msgpack.packb({"v": 1, "chain": "heerlen-dev", "kind": "member.register",
                              "signer": os.urandom(32), "nonce": len(envelopes),
                              "args": {"a": [0] * 16_000}})
        envelopes.append(msgpack.packb([body, os.urandom(64)]))
        size += len(envelopes[-1]) + 3
    return msgpack.packb(envelopes)


def bodies(heavy: bool) -> list[tuple[str, dict, bytes]]:
    found = [("/v1/txs", MSGPACK, array32(b"\x90")), ("/v1/txs", MSGPACK, array32(b"\x80")),
             ("/v1/txs", JSON, b'{"envelopes": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
             ("/v1/tx", JSON, b"[" * 5000 + b"]" * 5000)]
    return [("/v1/txs", MSGPACK, heavy_batch())] if heavy else found


async def attack(url: str, seconds: float, concurrency: int, heavy: bool) -> dict:
    counts: dict[str, int] = {}
    kinds = bodies(heavy)
    deadline = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession, turn: int) -> None:
        while time.monotonic() < deadline:
            path, headers, body = kinds[turn % len(kinds)]
            turn += 1
            try:
                async with session.post(url + path, data=body, headers=headers) as response:
                    await response.read()
                    key = str(response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                key = type(error).__name__
            counts[key] = counts.get(key, 0) + 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, i) for i in range(concurrency)))
    return counts


if __name__ == "__main__":
    url, seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    heavy = "heavy" in sys.argv[4:]
    print(json.dumps(asyncio.run(attack(url, seconds, concurrency, heavy))),
          flush=True)
