"""Connections to a gateway's HTTP port: how many may be open, and how long each may
take to send its request.

The rules, per gateway process (the settings are in `[gateway]` of node.toml,
node/config.py GatewayLimits; docs/operators.md, "Connections to the gateway"):

- At most `max_connections_per_address` open connections from one client address and
  `max_connections` in all. A connection over either is reset as it is accepted, before
  anything is read from it.
- `max_connections = 0` derives the total from the process's soft limit of open files
  (RLIMIT_NOFILE): (limit - RESERVED_DESCRIPTORS) / 2, at least MIN_CONNECTIONS and at
  most MAX_DEFAULT_CONNECTIONS. The rest stays for the process's other files: the store,
  the link to the validator, and in process (`workers = 0`) the validator's peers.
- A new connection whose first request's headers are not complete within
  `header_timeout_s` of its accept (or `keepalive_timeout_s`, if shorter) is closed.
  After each response the next request's headers must be complete within
  `keepalive_timeout_s` (aiohttp's keep-alive timeout), or the connection is closed: an
  idle keep-alive connection and one that trickles its headers alike.
- A request body that has not arrived within `body_timeout_s` is answered 408
  `timeout` (gateway/bodies.py).
- The request line and each header are at most 8,190 bytes, at most 128 headers
  (aiohttp's limits): beyond them 400.
- Accepting is this module's own loop, not asyncio's server (which logs a traceback for
  every failed accept): out of descriptors or memory, it stops accepting for a while
  (ACCEPT_BACKOFF_S, doubling to ACCEPT_BACKOFF_MAX_S) and goes on serving the
  connections it has.
- Refused connections, header timeouts, failed accepts and malformed requests are
  logged sampled (node/ratelimit.py SampledLog): the first of each kind in an interval,
  then one summary line with the count. Never a line, nor a traceback, per connection.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import struct
from collections import Counter

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway import bodies
from node.config import GatewayLimits
from node.listener import listen
from node.ratelimit import SampledLog

log = structlog.get_logger("stadsmunt.gateway")

RESERVED_DESCRIPTORS = 256
MIN_CONNECTIONS, MAX_DEFAULT_CONNECTIONS = 16, 8192
LISTEN_BACKLOG = 511            # connections the kernel holds until the loop accepts them
ACCEPT_BATCH = 32               # accepts per wake-up, then other work runs
ACCEPT_BACKOFF_S, ACCEPT_BACKOFF_MAX_S = 0.01, 1.0
LOG_INTERVAL_S = 10.0
_RESET = struct.pack("ii", 1, 0)   # SO_LINGER on, 0 s: close() sends a reset


def default_max_connections(soft_limit: int | None = None) -> int:
    """The total when `max_connections = 0`, from the soft limit of open files."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(MIN_CONNECTIONS,
               min(MAX_DEFAULT_CONNECTIONS, (soft_limit - RESERVED_DESCRIPTORS) // 2))


class Connection(asyncio.Protocol):
    """One admitted connection: aiohttp's request handler for it, counted until it
    closes, and closed if its first request's headers are late."""

    def __init__(self, gate: Gate, address: str, handler: asyncio.Protocol):
        self.address = address
        self._gate, self._handler = gate, handler
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = True

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._deadline = asyncio.get_running_loop().call_later(
            self._gate.limits.header_timeout_s, self._headers_late)
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self):
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.request_started()
        self.release()
        self._handler.connection_lost(exc)

    def request_started(self) -> None:
        """The first request's headers are complete: no header deadline from now on
        (aiohttp's keep-alive timeout bounds the later requests')."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def release(self) -> None:
        if self._counted:
            self._counted = False
            self._gate.release(self.address)

    def _headers_late(self) -> None:
        self._deadline = None
        self._gate.timed_out(self.address)
        self._transport.close()


@web.middleware
async def _request_started(request: web.Request, handler):
    transport = request.transport
    if transport is not None:
        connection = transport.get_protocol()
        if isinstance(connection, Connection):
            connection.request_started()
    return await handler(request)


class _HttpLog(logging.Handler):
    """aiohttp's server log: a malformed request, the client's fault, is noted sampled
    (`bad_request`) without a traceback; anything else is a bug of ours and is logged
    with its traceback (`gateway_http_error`)."""

    def __init__(self, gate: Gate):
        super().__init__(logging.INFO)
        self._gate = gate

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args \
                else None
            self._gate.note("bad_request", {"reason": type(error).__name__},
                            None if remote is None else str(remote))
        elif record.levelno >= logging.WARNING:
            log.error("gateway_http_error", message=record.getMessage(),
                      exc_info=record.exc_info or False)


class Gate:
    """The limits of one listening address: its accept loop, the open connections by
    client address, and the sampled log. `runner` makes the AppRunner of an app with
    the limits, `site` the site that listens through this gate."""

    def __init__(self, limits: GatewayLimits, log_interval_s: float = LOG_INTERVAL_S):
        self.limits = limits
        self.max_connections = limits.max_connections or default_max_connections()
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()   # refused, timed out, failed accepts
        self._log_interval_s = log_interval_s
        self._log: SampledLog | None = None
        self._http_log = logging.Logger("stadsmunt.gateway.http", logging.INFO)
        self._http_log.addHandler(_HttpLog(self))
        self._socks: list[socket.socket] = []
        self._server = None
        self._backoff = ACCEPT_BACKOFF_S
        self._timers: set[asyncio.TimerHandle] = set()
        self._attaching: set[asyncio.Task] = set()
        self._closed = False

    def runner(self, app: web.Application) -> web.AppRunner:
        app[bodies.BODY_TIMEOUT_S] = self.limits.body_timeout_s
        app.middlewares.insert(0, _request_started)
        return web.AppRunner(app, access_log=None, logger=self._http_log,
                             keepalive_timeout=self.limits.keepalive_timeout_s)

    def site(self, runner: web.AppRunner, host: str, port: int,
             reuse_port: bool = False) -> Site:
        return Site(runner, host, port, self, reuse_port)

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._socks)

    def note(self, event: str, kind: dict, address: str | None = None, **details) -> None:
        if self._log is not None:
            self._log.note(asyncio.get_running_loop().time(), event, kind, address,
                           **details)

    # -- serving ----------------------------------------------------------------------

    def serve(self, socks: list[socket.socket], server) -> None:
        """Accepts on `socks` for aiohttp's `server` (the runner's) until `close`."""
        loop = asyncio.get_running_loop()
        self._socks, self._server = socks, server
        self._log = SampledLog(self._log_interval_s, loop.time())
        for listening in socks:
            listening.setblocking(False)
            loop.add_reader(listening.fileno(), self._accept_ready, listening)
        self._later(self._log_interval_s, self._tick)

    def close(self) -> None:
        """Stops accepting and closes the listening sockets (not the connections)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._attaching:
            task.cancel()
        for listening in self._socks:
            if listening.fileno() >= 0:
                loop.remove_reader(listening.fileno())
            listening.close()
        self._socks = []
        if self._log is not None:
            self._log.flush(loop.time())

    def release(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def timed_out(self, address: str) -> None:
        self.counts["header_timeout"] += 1
        self.note("connection_timed_out", {"phase": "headers"}, address,
                  after_s=self.limits.header_timeout_s)

    def _later(self, delay: float, callback, *args) -> None:
        def run() -> None:
            self._timers.discard(timer)
            callback(*args)
        timer = asyncio.get_running_loop().call_later(delay, run)
        self._timers.add(timer)

    def _tick(self) -> None:
        self._log.tick(asyncio.get_running_loop().time())
        self._later(self._log_interval_s, self._tick)

    def _accept_ready(self, listening: socket.socket) -> None:
        try:
            self._accept_some(listening)
        except Exception as error:      # a bug of ours: sampled too, with its traceback
            self.note("gateway_accept_error", {"error": type(error).__name__},
                      exc_info=error)

    def _accept_some(self, listening: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._closed:
                return
            try:
                conn, peer = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                # out of descriptors (EMFILE, ENFILE) or kernel memory: the socket stays
                # readable, so stop watching it for a while instead of spinning
                self._pause(listening, error)
                return
            self._backoff = ACCEPT_BACKOFF_S
            address = peer[0] if isinstance(peer, tuple) else str(peer)
            reason = ("per_address" if self.by_address[address]
                      >= self.limits.max_connections_per_address else
                      "total" if self.open >= self.max_connections else None)
            if reason is not None:
                self._refuse(conn, address, reason)
                continue
            self.open += 1
            self.by_address[address] += 1
            connection = Connection(self, address, self._server())
            task = asyncio.get_running_loop().create_task(self._attach(conn, connection))
            self._attaching.add(task)
            task.add_done_callback(self._attaching.discard)

    def _refuse(self, conn: socket.socket, address: str, reason: str) -> None:
        self.counts[reason] += 1
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        except OSError:
            pass
        conn.close()
        limit = (self.limits.max_connections_per_address if reason == "per_address"
                 else self.max_connections)
        self.note("connection_refused", {"reason": reason}, address, limit=limit)

    def _pause(self, listening: socket.socket, error: OSError) -> None:
        self.counts["accept_failed"] += 1
        delay = self._backoff
        self._backoff = min(2 * delay, ACCEPT_BACKOFF_MAX_S)
        self.note("accept_failed", {"reason": errno.errorcode.get(error.errno, "OSError")},
                  error=error.strerror or str(error), paused_s=delay)
        asyncio.get_running_loop().remove_reader(listening.fileno())
        self._later(delay, self._resume, listening)

    def _resume(self, listening: socket.socket) -> None:
        if not self._closed and listening.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listening.fileno(), self._accept_ready,
                                                  listening)

    async def _attach(self, conn: socket.socket, connection: Connection) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: connection, sock=conn)
        except BaseException as error:
            connection.release()
            conn.close()
            if not isinstance(error, Exception):
                raise
            self.note("accept_failed", {"reason": type(error).__name__},
                      error=str(error))


class Site(web.BaseSite):
    """aiohttp's TCPSite, with this module's accept loop (a Gate) in place of asyncio's
    server."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, gate: Gate,
                 reuse_port: bool = False):
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._host, self._port, self._gate, self._reuse_port = host, port, gate, reuse_port

    @property
    def port(self) -> int:
        socks = self._gate.sockets
        return socks[0].getsockname()[1] if socks else self._port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        socks = await listen(self._host, self._port, self._backlog, self._reuse_port)
        self._gate.serve(socks, self._runner.server)
        self._server = self._gate      # what BaseSite.stop closes
