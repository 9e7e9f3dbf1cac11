"""The load generator of `stadsmunt bench`, in a process of its own so that building and
posting requests does not take turns with a validator's event loop.

`python -m bench.load SPEC` reads a JSON spec, prepares its envelopes before it
prints `ready`, waits for `go` on stdin (the bench reads the validators' CPU clocks in
between), runs one phase and prints one JSON line with what it saw:

- `burst`: every envelope, in POST /v1/txs bodies of up to 1,000, to every gateway in
  turn, a few requests in flight per gateway; items answered `overloaded` are sent again
  after a pause, and the next body is sized to what the node took. Commits are counted by the bench from /metrics, not here.
- `rate`: a fixed offered rate, small batches to the gateways in turn every few
  milliseconds; items answered `overloaded` are sent again, their latency counted from
  the first attempt; commit times come from the event stream of the first gateway, so
  the latency is submit -> commit seen by an app.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque

import aiohttp
import msgpack

from client import Client, ClientError
from node.keys import Keypair
from protocol import codec
from protocol.envelope import tx_id_of_envelope
from protocol.limits import MAX_BATCH

IN_FLIGHT = 2               # requests in flight per gateway in a burst
MIN_BODY = 100             # envelopes in a body after the node took few
RETRY_PAUSE_S = 0.25        # after an `overloaded` answer (the gateway asks for 1 s;
                            # a bench wants to find the limit, so it comes back sooner,
                            # but not so soon that re-posting refused bodies takes the
                            # validators' CPU: at 50 ms it took about a core)
RATE_STEP_S = 0.01          # the rate phase sends what is due every 10 ms
SETTLE_S = 10.0             # how long the rate phase waits for the last commits


def _body(envelopes: list[bytes]) -> bytes:
    """A POST /v1/txs body in its msgpack form (docs/api.md): an array of envelopes."""
    return codec.pack(envelopes)


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> list[dict]:
    async with session.post(url, data=body,
                            headers={"Content-Type": "application/msgpack"}) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status} {await response.text()}")
        return (await response.json())["items"]


async def burst(gateways: list[str], envelopes: list[bytes]) -> dict:
    # each gateway gets its own share
    queues = [deque(envelopes[i::len(gateways)]) for i in range(len(gateways))]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.monotonic()
    counts = {"posts": 0, "overloaded": 0, "refused": 0}

    async def worker(session, url: str, queue: deque) -> None:
        # a body about twice what the node took last time: a node that refuses most of
        # a body still parses all of it, so sending far more than it takes wastes its CPU
        size = MAX_BATCH
        while queue:
            sent = [queue.popleft() for _ in range(min(size, len(queue)))]
            items = await _post(session, url, _body(sent))
            counts["posts"] += 1
            counts["refused"] += sum(item["status"] == "refused" for item in items)
            busy = [e for e, item in zip(sent, items) if item["status"] == "overloaded"]
            size = min(MAX_BATCH, max(MIN_BODY, 2 * (len(sent) - len(busy))))
            if busy:
                counts["overloaded"] += len(busy)
                queue.extend(busy)
                await asyncio.sleep(RETRY_PAUSE_S)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(worker(session, f"{url}/v1/txs", queue)
                               for url, queue in zip(gateways, queues)
                               for _ in range(IN_FLIGHT)))
    return {"submitted": len(envelopes), "submit_s": time.monotonic() - started, **counts}


async def rate(gateways: list[str], envelopes: list[bytes], offered: float, after: int,
               admin_seed: str) -> dict:
    ids = [tx_id_of_envelope(e) for e in envelopes]
    submitted: dict[str, float] = {}
    seen: dict[str, float] = {}
    watcher = Client(gateways[0], Keypair.from_seed(bytes.fromhex(admin_seed)))
    first_seen = asyncio.Event()

    async def watch() -> None:
        async for event in watcher.stream(after=after, kind="coin.spent", max_reconnects=3):
            now = time.monotonic()
            first_seen.set()
            tx_id = event["tx_id"]
            if tx_id in submitted and tx_id not in seen:
                seen[tx_id] = now
                if len(seen) == len(ids):
                    return

    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    watching = asyncio.create_task(watch())
    failures = {"overloaded": 0, "refused": 0}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        posts: set[asyncio.Task] = set()

        async def send(url: str, start: int, end: int, at: float) -> None:
            for tx_id in ids[start:end]:
                submitted[tx_id] = at
            batch = list(range(start, end))
            while batch:    # an app sends refused items again; their latency counts from
                body = _body([envelopes[i] for i in batch])
                items = await _post(session, url, body)       # the first attempt
                failures["refused"] += sum(item["status"] == "refused" for item in items)
                batch = [i for i, item in zip(batch, items) if item["status"] == "overloaded"]
                failures["overloaded"] += len(batch)
                if batch:
                    await asyncio.sleep(RETRY_PAUSE_S)

        started = time.monotonic()
        sent, turn = 0, 0
        while sent < len(envelopes):
            await asyncio.sleep(RATE_STEP_S)
            now = time.monotonic()
            due = min(len(envelopes), int((now - started) * offered))
            if due > sent:
                url = f"{gateways[turn % len(gateways)]}/v1/txs"
                turn += 1
                task = asyncio.create_task(send(url, sent, due, now))
                posts.add(task)
                task.add_done_callback(posts.discard)
                sent = due
        offered_s = time.monotonic() - started
        await asyncio.gather(*posts)
    try:
        await asyncio.wait_for(watching, SETTLE_S)
    except asyncio.TimeoutError:
        pass
    await watcher.close()
    latencies = sorted(seen[t] - submitted[t] for t in seen)
    return {"submitted": len(envelopes), "offered_s": offered_s, "seen": len(seen),
            "latencies": latencies, **failures}


async def main(spec: dict) -> dict:
    with open(spec["envelopes"], "rb") as f:
        envelopes = msgpack.unpackb(f.read())
    if spec["mode"] == "burst":
        return await burst(spec["gateways"], envelopes)
    return await rate(spec["gateways"], envelopes, spec["rate"], spec["after"],
                      spec["admin_seed"])


if __name__ == "__main__":
    try:
        result = asyncio.run(main(json.loads(open(sys.argv[1]).read())))
    except (ClientError, RuntimeError, aiohttp.ClientError, OSError) as error:
        result = {"error": str(error)}
    print(json.dumps(result), flush=True)
