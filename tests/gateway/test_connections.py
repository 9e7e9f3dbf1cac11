"""The gateway's connection limits (gateway/connections.py) on an ephemeral port: header,
body and keep-alive timeouts, the caps per address and in all, out-of-descriptor
accepts, and logs that stay sampled. Timeouts are short (half a second where a request
must come through meanwhile: a loaded machine can stall a test's process that long);
every wait polls for the effect (a connection closed, a count reached) until a
deadline."""
from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

import gateway.connections
import node.ratelimit
from gateway import bodies
from gateway.connections import Gate, default_max_connections
from gateway.problems import problems
from node.config import GatewayLimits
from tests.node.test_transport_limits import FailingListener   # the peer port's, reused

WAIT_S = 5.0          # a deadline for what should happen in well under a second
PING = b"GET /ping HTTP/1.1\r\nHost: gateway\r\n\r\n"


class Logs:
    """Stands in for the structlog loggers: records (event, fields)."""

    def __init__(self):
        self.lines: list[tuple[str, dict]] = []

    def __getattr__(self, level: str):
        return lambda event, **fields: self.lines.append((event, fields))

    def of(self, event: str) -> list[dict]:
        return [fields for name, fields in self.lines if name == event]


@pytest.fixture
def logs(monkeypatch) -> Logs:
    recorded = Logs()
    for module in (gateway.connections, node.ratelimit):
        monkeypatch.setattr(module, "log", recorded)
    return recorded


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["s"]))    # a handler that takes its time
    return web.Response(text="ok")


async def body(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await bodies.read(request, 1 << 20))))


def app() -> web.Application:
    made = web.Application(middlewares=[problems])
    made.router.add_get("/ping", ping)
    made.router.add_get("/slow", slow)
    made.router.add_post("/body", body)
    return made


@asynccontextmanager
async def served(limits: GatewayLimits, sock: socket.socket | None = None):
    """A Gate serving app() on 127.0.0.1 (or on `sock`); yields it and its port."""
    gate = Gate(limits)
    runner = gate.runner(app())
    await runner.setup()
    try:
        if sock is None:
            site = gate.site(runner, "127.0.0.1", 0)
            await site.start()
            port = site.port
        else:
            gate.serve([sock], runner.server)
            port = sock.getsockname()[1]
        yield gate, port
    finally:
        if sock is not None:
            gate.close()
        await runner.cleanup()


async def until(condition, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.01)


async def connect(port: int, source: str = "127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent until it closed the connection (within WAIT_S)."""
    received = b""
    async with asyncio.timeout(WAIT_S):
        try:
            while chunk := await reader.read(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return received


async def refused(port: int, source: str = "127.0.0.1") -> bool:
    """True when a new connection is closed by the server without a word, even to a
    complete request."""
    try:
        reader, writer = await connect(port, source)
        writer.write(PING)
        received = await closed_by_server(reader)
    except ConnectionResetError:
        return True
    writer.close()
    return received == b""


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP response: its status and body (with Content-Length)."""
    async with asyncio.timeout(WAIT_S):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return int(head.split()[1]), await reader.readexactly(length)


async def get_ping(port: int, source: str = "127.0.0.1") -> int:
    reader, writer = await connect(port, source)
    writer.write(PING)
    status, _ = await answer(reader)
    writer.close()
    return status


# ---- timeouts ------------------------------------------------------------------------

async def test_a_connection_without_complete_headers_in_time_is_closed(logs):
    async with served(GatewayLimits(header_timeout_s=0.5)) as (gate, port):
        started = time.monotonic()
        silent = await connect(port)
        partial = await connect(port)
        partial[1].write(b"GET /ping HTTP/1.1\r\nHost: gateway\r\n")   # never ends
        assert await closed_by_server(silent[0]) == b""
        assert await closed_by_server(partial[0]) == b""
        assert time.monotonic() - started >= 0.5
        await until(lambda: gate.open == 0)
        assert gate.counts["header_timeout"] == 2
        assert await get_ping(port) == 200            # the port still serves
    assert logs.of("connection_timed_out")[0]["phase"] == "headers"


async def test_a_request_whose_headers_came_in_time_may_take_longer():
    async with served(GatewayLimits(header_timeout_s=0.5)) as (gate, port):
        reader, writer = await connect(port)
        writer.write(b"GET /slow?s=1.0 HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert await answer(reader) == (200, b"ok")
        writer.write(PING)                             # and the connection is kept
        assert await answer(reader) == (200, b"ok")
        writer.close()
        assert gate.counts["header_timeout"] == 0


async def test_an_idle_keep_alive_connection_is_closed_after_its_timeout():
    async with served(GatewayLimits(keepalive_timeout_s=0.5)) as (gate, port):
        reader, writer = await connect(port)
        writer.write(PING)
        assert await answer(reader) == (200, b"ok")
        answered = time.monotonic()
        assert await closed_by_server(reader) == b""
        assert time.monotonic() - answered >= 0.5
        await until(lambda: gate.open == 0)


async def test_a_keep_alive_connection_that_trickles_its_next_headers_is_closed():
    async with served(GatewayLimits(keepalive_timeout_s=0.5)) as (gate, port):
        reader, writer = await connect(port)
        writer.write(PING)
        assert await answer(reader) == (200, b"ok")
        writer.write(b"GET /ping HTTP/1.1\r\n")
        assert await closed_by_server(reader) == b""


async def test_a_late_body_is_answered_408_timeout():
    async with served(GatewayLimits(body_timeout_s=0.2)) as (gate, port):
        reader, writer = await connect(port)
        started = time.monotonic()
        writer.write(b"POST /body HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100\r\n"
                     b"\r\n" + b"x" * 10)
        status, text = await answer(reader)
        assert time.monotonic() - started >= 0.2
        assert status == 408 and b'"code": "timeout"' in text, text
        # the rest, late, ends aiohttp's lingering (in which it reads what follows the
        # answer, up to 10 s, so that closing does not reset the answer away)
        writer.write(b"x" * 90 + PING)
        assert await answer(reader) == (200, b"ok")
        writer.close()
        await until(lambda: gate.open == 0)


async def test_a_body_in_time_is_read_whole():
    async with served(GatewayLimits(body_timeout_s=2.0)) as (gate, port):
        reader, writer = await connect(port)
        writer.write(b"POST /body HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100\r\n"
                     b"\r\n" + b"x" * 100)
        assert await answer(reader) == (200, b"100")
        writer.close()


# ---- counting ------------------------------------------------------------------------

async def test_one_address_holds_at_most_its_share_and_a_freed_slot_is_used_again(logs):
    limits = GatewayLimits(max_connections_per_address=3, max_connections=100)
    async with served(limits) as (gate, port):
        held = [await connect(port) for _ in range(3)]
        await until(lambda: gate.open == 3)
        assert await refused(port)
        assert await refused(port)
        assert await get_ping(port, "127.0.0.2") == 200    # another address is not held
        held[0][1].close()
        await until(lambda: gate.by_address["127.0.0.1"] == 2)
        assert await get_ping(port) == 200
        assert gate.counts["per_address"] == 2
        for _, writer in held[1:]:
            writer.close()
    (first, summary) = logs.of("connection_refused")
    assert first["reason"] == "per_address" and first["address"] == "127.0.0.1"
    assert summary["summary"] and summary["count"] == 2


async def test_the_connections_of_all_addresses_together_are_capped():
    limits = GatewayLimits(max_connections_per_address=3, max_connections=4)
    async with served(limits) as (gate, port):
        held = [await connect(port) for _ in range(3)]
        held.append(await connect(port, "127.0.0.2"))
        await until(lambda: gate.open == 4)
        assert await refused(port, "127.0.0.3")
        assert gate.counts["total"] == 1
        held[0][1].close()
        await until(lambda: gate.open == 3)
        assert await get_ping(port, "127.0.0.3") == 200
        for _, writer in held[1:]:
            writer.close()


async def test_refusals_are_logged_sampled_never_a_line_each(logs):
    limits = GatewayLimits(max_connections_per_address=1)
    async with served(limits) as (gate, port):
        held = await connect(port)
        await until(lambda: gate.open == 1)
        for _ in range(40):
            assert await refused(port)
        held[1].close()
    assert [line.get("count") for line in logs.of("connection_refused")] == [None, 40]
    assert len(logs.lines) == 2


async def test_out_of_descriptors_pauses_accepting_without_a_line_per_attempt(logs):
    sock = FailingListener(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.failures = 6
    loop = asyncio.get_running_loop()
    handled = []
    loop.set_exception_handler(lambda _loop, context: handled.append(context))
    try:
        async with served(GatewayLimits(), sock) as (gate, port):
            # accepting pauses 10, 20, 40, 80, 160, 320 ms, then serves them all
            assert await asyncio.gather(*(get_ping(port) for _ in range(3))) == [200] * 3
            assert gate.counts["accept_failed"] == 6 and sock.calls < 30
    finally:
        loop.set_exception_handler(None)
    assert not handled, "asyncio's handler should hear nothing (it prints tracebacks)"
    failed = logs.of("accept_failed")
    assert len(failed) == 2 and failed[0]["reason"] == "EMFILE"
    assert failed[1]["summary"] and failed[1]["count"] == 6


async def test_a_malformed_request_is_a_400_and_a_sampled_line_without_traceback(logs):
    async with served(GatewayLimits()) as (gate, port):
        for _ in range(3):
            reader, writer = await connect(port)
            writer.write(b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert (await closed_by_server(reader)).startswith(b"HTTP/1.0 400")
    assert [line.get("count") for line in logs.of("bad_request")] == [None, 3]
    assert [event for event, _ in logs.lines] == ["bad_request"] * 2


# ---- the total's default -------------------------------------------------------------

def test_the_default_total_leaves_descriptors_for_the_rest_of_the_process():
    assert default_max_connections(1024) == 384
    assert default_max_connections(4096) == 1920
    assert default_max_connections(65_536) == 8192       # a bound on memory too
    assert default_max_connections(256) == 16
    assert Gate(GatewayLimits()).max_connections == default_max_connections()
    assert Gate(GatewayLimits(max_connections=10)).max_connections == 10
