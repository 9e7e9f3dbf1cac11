"""The node as a gateway process sees it: the ledger read from LMDB, everything else over
the local link (gateway/link.py).

The gateway does the door's work itself: it opens and signature-checks every envelope
before it hands the good ones to the validator, which then checks all but the signature
(Door.admit, `checked`). So the Ed25519 checks of what apps submit run here, off the
validator's consensus loop. A re-sent envelope (after `overloaded`) costs one hash: the
digests of good envelopes are remembered, up to CHECKED_CACHE.

Waiting for a decision, the live event stream and the metrics follow the node's notices;
after the link was down, what executed meanwhile is read from LMDB.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

import structlog

from gateway.link import LinkClient, LinkDown
from gateway.nodeapi import NodeApi, NodeUnavailable
from node import sets
from node.envelope import MALFORMED, Refused, open_envelope
from node.link import ok_count
from node.linkwire import Notice
from node.readstore import decided
from node.waiters import wait_woken
from node.runtime import Submitted
from protocol.limits import MAX_ENVELOPE_BYTES

log = structlog.get_logger("stadsmunt.gateway")

CHECKED_CACHE = 20_000       # digests of envelopes this gateway found good
OWN_PENDING = 100_000        # ids this gateway submitted that are not executed yet
CATCH_UP_BLOCKS = 1_000      # blocks re-read from LMDB after the link was down, at most
CHECK_SLICE = 100            # envelopes checked between two turns of the event loop
# What HTTP readers may make the validator do, bounded whatever they send: its status is
# asked once per STATUS_FRESH_S and per block (every /v1/status and /metrics in between
# is answered from that), and whether an id not submitted here is pending at most
# PENDING_ASKS_PER_S times a second (beyond: "not that we know")
STATUS_FRESH_S = 0.1
PENDING_ASKS_PER_S = 200


class Checker:
    """The door's checks in the gateway, remembering what passed (by the envelope's
    SHA-256: the same bytes, the same verdict)."""

    def __init__(self, chain: str, capacity: int = CHECKED_CACHE):
        self.chain, self.capacity = chain, capacity
        self._good: OrderedDict[bytes, str] = OrderedDict()
        self.signature_checks = 0

    def check(self, envelope: bytes) -> Submitted | None:
        """None when the envelope passes the door, else the door's answer."""
        if type(envelope) is not bytes or len(envelope) > MAX_ENVELOPE_BYTES:
            return Submitted(None, MALFORMED, "too large or not bytes")
        digest = hashlib.sha256(envelope).digest()
        if digest in self._good:
            return None
        self.signature_checks += 1
        try:
            opened = open_envelope(envelope, self.chain, digest)
        except Refused as refused:
            return Submitted(refused.tx_id, refused.code, refused.reason)
        self._good[digest] = opened.tx.tx_id
        if len(self._good) > self.capacity:
            self._good.popitem(last=False)
        return None


class LinkedNode(NodeApi):
    def __init__(self, config, genesis, store, link_path, worker: int):
        self.config, self.genesis, self.store = config, genesis, store
        self.chain = genesis.chain
        self.genesis_hash = genesis.hash()
        self.listeners: list = []
        self.checker = Checker(self.chain)
        self.link = LinkClient(link_path, worker, self._on_notice, self._on_up)
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._own: OrderedDict[str, None] = OrderedDict()
        self._seen = (store.head()[0], True)    # (height, whether from a live notice)
        self._last_status: dict | None = None
        self._status_at = float("-inf")
        self._asking: asyncio.Future | None = None
        self._asks = (0.0, 0)                   # (second it counts, asks in it)

    async def start(self) -> None:
        await self.link.start()

    async def stop(self) -> None:
        await self.link.stop()
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()

    # ---- writes, over the link ----------------------------------------------------------

    async def submit(self, envelopes: list[bytes]) -> list[Submitted]:
        if not self.link.up:
            raise NodeUnavailable()
        answers: list[Submitted | None] = []
        for start in range(0, len(envelopes), CHECK_SLICE):
            if start:       # other requests to this gateway go on between slices
                await asyncio.sleep(0)
            answers += [self.checker.check(e) for e in envelopes[start:start + CHECK_SLICE]]
        good = [i for i, answer in enumerate(answers) if answer is None]
        if good:
            try:
                taken = await self.link.submit([envelopes[i] for i in good])
            except LinkDown:
                raise NodeUnavailable() from None
            for i, (tx_id, status, reason, retry_after_s) in zip(good, taken):
                answers[i] = Submitted(tx_id, status, reason, retry_after_s)
                if status == "pending":
                    self._own[tx_id] = None
            while len(self._own) > OWN_PENDING:
                self._own.popitem(last=False)
        return answers

    async def unexecuted(self, tx_id: str) -> str:
        """As Validator.unexecuted: `pending`, the code admission refused it with, or ""."""
        if tx_id in self._own:
            return "pending"
        second = int(asyncio.get_running_loop().time())
        at, count = self._asks
        count = count + 1 if at == second else 1
        self._asks = (second, count)
        if count > PENDING_ASKS_PER_S:
            return ""
        try:
            return await self.link.pending(bytes.fromhex(tx_id))
        except LinkDown:
            return ""

    async def status(self) -> dict:
        """The validator's status, asked again when the last answer is older than
        STATUS_FRESH_S or than the ledger (a block executed since: then the view may have
        changed too, and a reader who saw the block must not see the view before it)."""
        last = self._last_status
        if last is None or last["height"] < self.store.head()[0] or \
                asyncio.get_running_loop().time() - self._status_at > STATUS_FRESH_S:
            if self._asking is None:     # one question for everyone asking meanwhile
                self._asking = asyncio.ensure_future(self._ask_status())
            try:
                await asyncio.shield(self._asking)
            except LinkDown:
                raise NodeUnavailable() from None
        return dict(self._last_status)

    async def _ask_status(self) -> None:
        try:
            self._last_status = await self.link.status()
            self._status_at = asyncio.get_running_loop().time()
        finally:
            self._asking = None

    def offline_status(self) -> dict:
        """A status while the validator cannot be reached: the ledger's head from LMDB,
        the view as the validator last gave it, no validator connected."""
        last = self._last_status or {}
        height, head = self.store.head()
        record = self.store.block(height) if height else None
        in_force = sets.in_force(self.genesis, self.store, height + 1)
        members, pending = in_force.members, sets.pending(self.store, height)
        return {
            "chain": self.chain, "genesis": self.genesis_hash.hex(),
            "node": self.config.name, "height": height, "head": head.hex(),
            "view": last.get("view", 0), "primary": last.get("primary", members[0].name),
            "validators": [{"name": m.name, "key": m.key.hex(), "connected": False}
                           for m in members],
            "validator_set": {
                "since": in_force.first_height, "validators": list(in_force.names),
                "member": self.config.name in in_force.names,
                "pending": None if pending is None else {
                    "from": pending.first_height, "validators": list(pending.names)}},
            "time": record.time_ms if record else None, "pending": last.get("pending", 0),
            "warnings": ["this gateway cannot reach its validator process just now"]}

    # ---- reads, from LMDB ---------------------------------------------------------------

    def result(self, tx_id: str) -> dict | None:
        return decided(self.store, tx_id)

    async def wait(self, tx_id: str, timeout_s: float) -> dict | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = self.result(tx_id)
            left = deadline - loop.time()
            if found is not None or left <= 0:
                return found
            # woken by the notice of the block that executes it, or when the link comes
            # back (then it may have executed unnoticed): either way, look again
            await wait_woken(self._waiters, tx_id, left)

    # ---- notices ------------------------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        height, live = self._seen
        if notice.height < height or (notice.height == height and not live):
            return          # already read from LMDB after a reconnection
        if notice.height > height + 1:
            self._catch_up(height + 1, notice.height - 1)
        self._seen = (notice.height, True)
        self._deliver(notice)

    def _on_up(self) -> None:
        head = self.store.head()[0]
        height, _ = self._seen
        if head > height:
            self._catch_up(height + 1, head)
            self._seen = (head, False)
        for futures in list(self._waiters.values()):
            for future in futures:
                if not future.done():
                    future.set_result(None)

    def _catch_up(self, first: int, last: int) -> None:
        """Notices made from LMDB for blocks first..last, which executed while this
        gateway was not listening (the latest CATCH_UP_BLOCKS of them: the metrics of
        older ones are lost, and nobody waits that long)."""
        first = max(first, last - CATCH_UP_BLOCKS + 1)
        for record in self.store.blocks(first, last - first + 1):
            results = self.store.results(record.height)
            ids = tuple(raw[-64:].decode("ascii") for raw in results)
            ok = ok_count(results)
            self._deliver(Notice(record.height, ids, ok, len(results) - ok))

    def _deliver(self, notice: Notice) -> None:
        own, waiters = self._own, self._waiters
        for tx_id in notice.tx_ids:
            own.pop(tx_id, None)
            for future in waiters.pop(tx_id, ()) if waiters else ():
                if not future.done():
                    future.set_result(None)
        self._notify(notice)
