"""One gateway process: the HTTP API of one validator, beside it on the same machine.

Started by the validator (`stadsmunt node run`, ops/gateways.py), `[gateway] workers` of
them, each serving the same `[gateway] listen` address (SO_REUSEPORT: the kernel spreads
the connections). Each opens the validator's LMDB store read-only for every read and
reaches the validator over its local socket (gateway/link.py) for submissions, its status
and the executed blocks. Nothing a client sends here runs on the validator's event loop.

A gateway started by a validator dies with it (PR_SET_PDEATHSIG): no orphan keeps the
port after a validator is killed. Its connections are counted and timed as
gateway/connections.py says (`[gateway]` limits).
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import signal

import structlog

from gateway.app import make_app
from gateway.connections import Gate
from gateway.linked import LinkedNode
from node import genesis as genesis_file
from node.link import socket_path
from node.readstore import ReadOnlyStore
from node.store import StoreError

log = structlog.get_logger("stadsmunt.gateway")

LINK_WAIT_S = 5.0          # how long a starting gateway waits for its validator's link
PR_SET_PDEATHSIG = 1


class GatewayStartError(Exception):
    """The gateway cannot start: no store, no genesis."""


class CannotListen(Exception):
    """The gateway's address cannot be bound."""


def die_with(parent: int) -> None:
    """Be sent SIGTERM when the process `parent` ends (Linux); end now if it already
    has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        raise SystemExit(0)


def ignore_further_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Once stopping, a second SIGTERM or SIGINT (the validator's and the parent-death
    signal together) is ignored: arriving while asyncio closes its loop it would hit the
    closed wake-up pipe and print a traceback. A stop that hangs is ended by SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


async def serve(settings, worker: int, listen: tuple[str, int] | None = None,
                ready: asyncio.Event | None = None) -> None:
    """Serves until SIGINT or SIGTERM; on `listen` instead of `[gateway] listen` if given
    (a gateway of one's own beside those the validator runs)."""
    try:
        genesis = genesis_file.load(settings.genesis_file)
        store = ReadOnlyStore(settings.data_dir)
    except (genesis_file.GenesisError, StoreError) as error:
        raise GatewayStartError(str(error)) from None
    node = LinkedNode(settings, genesis, store, socket_path(settings), worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    gate = Gate(settings.gateway_limits)
    runner = gate.runner(make_app(node))
    try:
        await runner.setup()
        host, port = listen or settings.gateway_listen
        try:
            await gate.site(runner, host, port, reuse_port=True).start()
        except OSError as error:
            raise CannotListen(f"{host}:{port}: {error.strerror or error}") from None
        await node.start()
        try:        # the validator counts a gateway as started when it says hello
            await asyncio.wait_for(node.link.connected.wait(), LINK_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("validator_link_not_up_yet", path=str(socket_path(settings)))
        log.info("gateway_listening", url=f"http://{host}:{port}", worker=worker,
                 pid=os.getpid(), max_connections=gate.max_connections)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("gateway_stopping", worker=worker)
    finally:
        ignore_further_signals(loop)
        await runner.cleanup()
        await node.stop()
        store.close()
