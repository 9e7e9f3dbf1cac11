"""The fault proxy on its own (fast), and every scenario of a hostile network on real
validator processes (slow: run with --slow). docs/faults.md describes the scenarios and
the checks; `python -m tests.faultnet` prints them as a table."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.faultnet.proxy import ProxyProcess
from tests.faultnet.scenarios import SCENARIOS, run_scenario

ONE_WAY_MS = 40


async def _echo_server():
    async def echo(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _round_trip(reader, writer, payload: bytes) -> float:
    started = time.monotonic()
    writer.write(payload)
    await writer.drain()
    assert await reader.readexactly(len(payload)) == payload
    return time.monotonic() - started


async def test_the_proxy_delays_in_order_blocks_a_partition_and_heals_it():
    server = await _echo_server()
    echo_port = server.sockets[0].getsockname()[1]
    # "b" is the echo server; "a" dials it through link a->b
    proxy = ProxyProcess({"a": ("127.0.0.1", 1), "b": ("127.0.0.1", echo_port)}, seed=7)
    try:
        ports = await proxy.start()
        assert set(ports) == {("a", "b"), ("b", "a")}
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[("a", "b")])
        loopback = await _round_trip(reader, writer, b"ping")

        # latency each way, with jitter, and the stream stays in order
        await proxy.set([("a", "b"), ("b", "a")], latency_ms=ONE_WAY_MS, jitter_ms=30)
        slow = await _round_trip(reader, writer, b"ping")
        assert 2 * ONE_WAY_MS / 1000 <= slow < 2 * ONE_WAY_MS / 1000 + 1.0, (loopback, slow)
        chunks = [f"{i:05d}".encode() for i in range(300)]
        for chunk in chunks:
            writer.write(chunk)         # sent at once: the proxy reads them apart or
            await writer.drain()        # together, and delays each read on its own
        assert await reader.readexactly(5 * len(chunks)) == b"".join(chunks)

        # one direction blocked: nothing comes back through it
        await proxy.set([("a", "b"), ("b", "a")], latency_ms=0, jitter_ms=0)
        await proxy.set([("b", "a")], blocked=True)
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await reader.readexactly(4)
        # a new connection over the blocked pair waits, as a dropped SYN does
        late_reader, late_writer = await asyncio.open_connection(
            "127.0.0.1", ports[("a", "b")])
        late_writer.write(b"second")
        await late_writer.drain()

        # the heal: what was held arrives on the same connection, and the waiting
        # connection goes through, each at TCP's next retransmission
        await proxy.heal()
        async with asyncio.timeout(5):
            assert await reader.readexactly(4) == b"held"
            assert await late_reader.readexactly(6) == b"second"
        assert await _round_trip(reader, writer, b"again") < 1.0

        # a reset reaches the client as an RST
        assert await proxy.reset([("a", "b")]) == 2
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(10)
        stats = (await proxy.stats())["stats"]
        assert stats["connections"] == 2 and stats["resets"] == 2
        writer.close()
        late_writer.close()
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario(name):
    outcome = await run_scenario(SCENARIOS[name], seconds=15.0)
    print(f"\n{name}: {outcome.tx_per_s:.0f} tx/s during the fault, p99 "
          f"{outcome.p99_ms} ms, view changes {outcome.view_changes}, heal to commit "
          f"{outcome.heal_to_commit_s} s, seed {outcome.notes.get('seed')}")
    assert outcome.ok, "\n".join(
        [f"folder {outcome.folder}, seed {outcome.notes.get('seed')}"]
        + [f"{c.name}: {c.detail}" for c in outcome.failed])
