"""The gateway side of the local link to its validator (the frames: node/linkwire.py;
the node side: node/link.py).

One connection per gateway process: requests (submit, status, pending) carry a number
that their answer repeats, and between answers the node pushes a notice per executed
block. When the connection drops (the validator restarts, or dropped this gateway for
reading its notices too slowly) every request in flight fails with LinkDown, and the
client connects again, with a backoff from RETRY_S to RETRY_MAX_S; `on_up` then tells the
gateway to re-read from LMDB what it may have missed.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import structlog

from node import linkwire as wire
from node.link import socket_address
from node.linkwire import LinkError

log = structlog.get_logger("stadsmunt.gateway")

RETRY_S, RETRY_MAX_S = 0.05, 1.0
WELCOME_TIMEOUT_S = 5.0
SUBMIT_TIMEOUT_S = 10.0     # a validator that takes longer is answered as down (503)
SMALL_TIMEOUT_S = 5.0
MAX_UNSENT_BYTES = 32 * 1024 * 1024     # requests the validator has not read yet
SUBMIT_CHUNK_BYTES = wire.MAX_FRAME_BYTES - 64 * 1024


class LinkDown(Exception):
    """The validator is not reachable over the link just now."""


class LinkClient:
    def __init__(self, path: Path, worker: int, on_notice, on_up=lambda: None):
        self.path, self.worker = Path(path), worker
        self.on_notice, self.on_up = on_notice, on_up
        self.up = False
        self.node_name: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, tuple[str, int, asyncio.Future]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # ---- requests -----------------------------------------------------------------------

    async def submit(self, envelopes: list[bytes]) -> list[tuple[str | None, str, str, int]]:
        """The node's (tx id, status, reason, retry-after seconds) per envelope, in
        order."""
        answers, chunk, size = [], [], 0
        for envelope in envelopes:
            if chunk and (len(chunk) == wire.MAX_SUBMIT
                          or size + len(envelope) > SUBMIT_CHUNK_BYTES):
                answers += await self._request("submit", chunk, len(chunk), SUBMIT_TIMEOUT_S)
                chunk, size = [], 0
            chunk.append(envelope)
            size += len(envelope) + 8
        if chunk:
            answers += await self._request("submit", chunk, len(chunk), SUBMIT_TIMEOUT_S)
        return answers

    async def status(self) -> dict:
        return await self._request("status", [], 0, SMALL_TIMEOUT_S)

    async def pending(self, raw_tx_id: bytes) -> str:
        """`pending`, the code the node refused it with before ordering, or empty."""
        return await self._request("pending", raw_tx_id, 0, SMALL_TIMEOUT_S)

    async def _request(self, kind: str, body, count: int, timeout_s: float):
        writer = self._writer
        if not self.up or writer is None or writer.transport.is_closing() or \
                writer.transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            raise LinkDown()        # a stuck validator must not fill this process's memory
        request_id = next(self._ids) % (1 << 32)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (kind, count, future)
        try:
            writer.write(wire.frame(kind, request_id, body))
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            raise LinkDown() from None
        finally:
            self._waiting.pop(request_id, None)

    # ---- the connection -----------------------------------------------------------------

    async def _run(self) -> None:
        delay = RETRY_S
        while True:
            try:
                with socket_address(self.path) as address:
                    reader, writer = await asyncio.open_unix_connection(address)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            try:
                await self._hello(reader, writer)
                delay = RETRY_S
                self.on_up()
                await self._follow(reader)
            except LinkError as error:
                log.warning("bad_link_frame", reason=str(error))
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
                pass
            except Exception:       # a bug of ours: connect again rather than stay down
                log.exception("link_failed")
            finally:
                self._down(writer)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    async def _hello(self, reader, writer) -> None:
        writer.write(wire.frame("hello", 0, [wire.VERSION, self.worker, os.getpid()]))
        kind, _, body = await asyncio.wait_for(_read(reader), WELCOME_TIMEOUT_S)
        if kind != "welcome":
            raise LinkError(f"the node answered hello with {kind}")
        self.node_name = wire.read_welcome(body)
        self._writer, self.up = writer, True
        self.connected.set()
        log.info("validator_link_up", node=self.node_name)

    async def _follow(self, reader) -> None:
        while True:
            kind, request_id, body = await _read(reader)
            if kind == "notice":
                self.on_notice(wire.read_notice(body))
            elif kind != "answer":
                raise LinkError(f"the node does not send {kind} now")
            elif request_id in self._waiting:
                what, count, future = self._waiting[request_id]
                answer = _answer(what, count, body)
                if not future.done():
                    future.set_result(answer)
            # an answer to a request that gave up waiting is dropped unread

    def _down(self, writer) -> None:
        was_up = self.up
        self.up, self._writer = False, None
        self.connected.clear()
        writer.transport.abort()
        for _, _, future in self._waiting.values():
            if not future.done():
                future.set_exception(LinkDown())
        if was_up and not self._stopping:
            log.warning("validator_link_down", node=self.node_name)


def _answer(kind: str, count: int, body: wire.Reader):
    if kind == "submit":
        return wire.read_submitted(body, count)
    if kind == "status":
        return wire.read_status(body)
    return wire.read_pending(body)


async def _read(reader: asyncio.StreamReader) -> tuple[str, int, wire.Reader]:
    length = wire.frame_length(await reader.readexactly(wire.HEADER.size))
    return wire.open_frame(await reader.readexactly(length))

