"""The node side of the local link: the Unix socket over which a validator's gateway
processes reach it (the frames: node/linkwire.py).

The gateways run in processes of their own (gateway/serve.py), so that no HTTP work, fair
or hostile, runs on the validator's event loop. They read the ledger straight from LMDB;
through this socket they only submit envelopes, ask for the status and follow executed
blocks. The socket is `gateway.sock` in the validator's data folder, mode 0600: only the
validator's own user reaches it, and the node trusts what arrives on it to have been
opened and signature-checked by a gateway (Door.admit, `checked`) - it still reads every
frame strictly and bounded, and drops a connection at the first frame that is wrong.

A gateway that does not read its notices as fast as blocks execute is dropped when
SEND_BUFFER_BYTES wait for it: consensus never waits for a gateway. It reconnects and
re-reads what it missed from LMDB.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from pathlib import Path

import structlog

from chaincode.results import ok_count
from node import linkwire as wire
from node.linkwire import LinkError, Notice

log = structlog.get_logger("stadsmunt.node")

SOCKET_NAME = "gateway.sock"
SEND_BUFFER_BYTES = 4 * 1024 * 1024   # unread by a gateway: then it is dropped
HELLO_TIMEOUT_S = 5.0
MAX_REASON = 500
MAX_LINKS = 64                        # gateway connections at once


class LinkBusy(Exception):
    """Another live validator already serves this data folder's socket."""


def socket_path(config) -> Path:
    return Path(config.data_dir) / SOCKET_NAME


@contextlib.contextmanager
def socket_address(path: Path):
    """The address to bind or connect `path` by: the path itself, or, when it is longer
    than a Unix socket address may be (108 bytes), the same file reached through an open
    descriptor of its folder."""
    if len(os.fsencode(str(path))) < 100:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def notice_of(batch, store) -> Notice:
    """The notice of an executed batch, its results read back from the store."""
    ok = ok_count(store.results(batch.height))
    return Notice(batch.height, tuple(r.key.hex() for r in batch.requests), ok,
                  len(batch.requests) - ok)


def listen_socket(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, mode 0600. A socket file left by a validator that
    died is replaced; one that a live validator answers on is LinkBusy."""
    with socket_address(path) as address:
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise LinkBusy(f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(address)
            except OSError:
                path.unlink()               # nobody listens: left by a process that died
            else:
                raise LinkBusy(f"another validator serves {path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)               # born 0600: no moment in which others connect
        try:
            sock.bind(address)
        finally:
            os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(MAX_LINKS)
    sock.setblocking(False)
    return sock


class _Link:
    __slots__ = ("writer", "worker", "pid", "ready")

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer, self.worker, self.pid, self.ready = writer, None, None, False


class LinkServer:
    """Serves the validator's gateways; `hellos` counts the gateways that said hello, by
    worker number, for a supervisor that waits for them (ops/gateways.py)."""

    def __init__(self, validator, path: Path, send_buffer_bytes: int = SEND_BUFFER_BYTES):
        self.validator = validator
        self.path = Path(path)
        self.send_buffer_bytes = send_buffer_bytes
        self._server: asyncio.AbstractServer | None = None
        self._links: set[_Link] = set()
        self.hellos: dict[int, int] = {}        # worker -> pid of its latest hello
        self.changed = asyncio.Event()          # set at every hello
        self._halted = False

    async def start(self) -> None:
        sock = listen_socket(self.path)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        self.validator.listeners.append(self._on_batch)
        self.validator.on_failure.append(self.halt)
        log.info("gateway_socket_listening", path=str(self.path))

    def halt(self) -> None:
        """The validator failed (fail-stop): no gateway request reaches it any more. Closes
        the socket and every gateway's connection at once; `stop` still waits for them."""
        self._halted = True
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.writer.transport.abort()

    async def stop(self) -> None:
        if self.halt in self.validator.on_failure:
            self.validator.on_failure.remove(self.halt)
        if self._on_batch in self.validator.listeners:
            self.validator.listeners.remove(self._on_batch)
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def connected(self) -> list[int]:
        return sorted(link.worker for link in self._links
                      if link.ready and not link.writer.transport.is_closing())

    # ---- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        link = _Link(writer)
        if self._halted or len(self._links) >= MAX_LINKS:
            writer.transport.abort()
            return
        self._links.add(link)
        try:
            kind, request_id, body = await asyncio.wait_for(_read(reader), HELLO_TIMEOUT_S)
            if kind != "hello":
                raise LinkError(f"the first frame is {kind}, not hello")
            link.worker, link.pid = wire.read_hello(body)
            self._send(link, wire.frame("welcome", request_id,
                                        [wire.VERSION, self.validator.config.name]))
            link.ready = True
            self.hellos[link.worker] = link.pid
            self.changed.set()
            log.info("gateway_linked", worker=link.worker, pid=link.pid)
            while not writer.transport.is_closing():
                kind, request_id, body = await _read(reader)
                self._answer(link, kind, request_id, body)
        except LinkError as error:
            log.warning("bad_link_frame", worker=link.worker, reason=str(error))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass
        except Exception:
            # the validator failed while answering (fail-stop): validator_failed says why
            if not self._halted:
                # a bug of ours in serving this one gateway: its connection goes, the
                # gateway reconnects and retries. Not fatal: what a gateway sends comes
                # from HTTP clients, and a validator that any request could stop would be
                # easy to take down; a failure of consensus or the ledger met on the way
                # has already stopped the validator (consensus/driver.py)
                log.exception("link_failed", worker=link.worker)
        finally:
            self._links.discard(link)
            writer.transport.abort()
            if link.ready:
                log.info("gateway_unlinked", worker=link.worker, pid=link.pid)

    def _answer(self, link: _Link, kind: str, request_id: int, body: wire.Reader) -> None:
        validator = self.validator
        if kind == "submit":
            envelopes = wire.read_submit(body)
            answers = validator.submit(envelopes, checked=True)
            reply = [[bytes.fromhex(a.tx_id) if a.tx_id else b"", a.status,
                      a.reason[:MAX_REASON], a.retry_after_s] for a in answers]
        elif kind == "status":
            wire.read_empty(body)
            reply = validator.status()
            reply["view_changes"] = validator.view_changes
            reply["refusals"] = dict(validator.refusals)
        elif kind == "pending":
            reply = validator.unexecuted(wire.read_tx_id(body).hex())
        else:
            raise LinkError(f"a gateway does not send {kind}")
        self._send(link, wire.frame("answer", request_id, reply))

    def _send(self, link: _Link, data: bytes) -> None:
        transport = link.writer.transport
        if transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.send_buffer_bytes:
            log.warning("gateway_too_slow", worker=link.worker, pid=link.pid,
                        unread_bytes=transport.get_write_buffer_size())
            transport.abort()

    # ---- executed blocks ----------------------------------------------------------------

    def _on_batch(self, batch) -> None:
        """A listener of the validator: runs right after the block is written."""
        if not self._links:
            return
        try:
            frames = self._notices(batch)
        except Exception:       # a notice lost is better than a stalled validator
            log.exception("notice_failed", height=batch.height)
            return
        for link in list(self._links):
            if link.ready:
                for data in frames:
                    self._send(link, data)

    def _notices(self, batch) -> list[bytes]:
        results = self.validator.store.results(batch.height)
        keys = [r.key for r in batch.requests]
        frames = []
        step = wire.MAX_NOTICE_IDS
        for start in range(0, max(len(keys), 1), step):
            part = results[start:start + step]
            ok = ok_count(part)
            frames.append(wire.notice_frame(batch.height, keys[start:start + step], ok,
                                            len(part) - ok))
        return frames


async def _read(reader: asyncio.StreamReader) -> tuple[str, int, wire.Reader]:
    length = wire.frame_length(await reader.readexactly(wire.HEADER.size))
    return wire.open_frame(await reader.readexactly(length))
