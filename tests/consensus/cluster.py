"""A scripted cluster for scenario tests: real replicas and the production driver, a
network that delivers in order unless a test says otherwise, and clocks that move only
when a test moves them. What was sent is what is received: messages cross as bytes.
Catch-up answers are checked by consensus/fetched.py, as the validator checks them."""
from __future__ import annotations

import hashlib
from collections import deque

from consensus import wire
from consensus.config import Config
from consensus.driver import Driver
from consensus.messages import Commit
from consensus.replica import Replica
from tests.sim.fakes import (DictStorage, HashChainLedger, KeyedHashKeys, Registry,
                             take_answer)


class Cluster:
    def __init__(self, n: int = 4, **limits):
        self.keys = KeyedHashKeys([bytes([i + 1]) * 16 for i in range(n)])
        validators = tuple(hashlib.sha256(s).digest() for s in self.keys.secrets)
        settings = dict(checkpoint_interval=2, window=8, batch_max_count=10,
                        request_timeout_ticks=4, view_change_timeout_ticks=4,
                        status_interval_ticks=3, max_clock_skew_ms=1_000)
        settings.update(limits)
        self.config = Config(chain="scenario", validators=validators, **settings)
        self.registry = Registry()
        self.storage = [DictStorage() for _ in range(n)]
        self.ledgers = [HashChainLedger(lambda *_: None, lambda *_: None) for _ in range(n)]
        self.drivers: list[Driver | None] = [None] * n
        self.wire: deque[tuple[int, int, bytes]] = deque()
        self.sent: list[tuple[int, int, object]] = []     # everything, for assertions
        self.cut: set[int] = set()                        # replicas cut off both ways
        # a test that plays a lying replica rewrites its messages here: (sender, to, message)
        self.tamper = lambda sender, to, message: message
        self.now_ms = 1_000_000
        self.made = 0
        self.fetches: list = []
        # a test that plays a lying peer rewrites its catch-up answers here:
        # (server, requester, blocks) -> blocks; without one, every answer must pass
        self.tamper_fetched = None
        self.refused_fetched: list = []     # (requester, server, consensus.fetched.Refusal)
        self.timeline: list[tuple[int, int, object]] = []   # (time, sender, message) sent
        for i in range(n):
            self.start(i)

    # ---- the world --------------------------------------------------------------------

    def start(self, i: int) -> None:
        ledger = self.ledgers[i]
        replica = Replica(self.config, i, self.keys.signer(i), self.registry.inspect,
                          self.storage[i].items(), ledger.height, ledger.head_hash,
                          ledger.last_time_ms, list(ledger.executed_keys))
        self.drivers[i] = Driver(replica, self.storage[i], _Link(self, i), ledger)
        self.drivers[i].flush()

    def crash(self, i: int) -> None:
        self.drivers[i] = None

    def replica(self, i: int) -> Replica:
        return self.drivers[i].replica

    def requests(self, count: int):
        out = [self.registry.make(self.made + k, b"scenario") for k in range(count)]
        self.made += count
        return out

    def prepare_only(self, requests, primary: int = 0) -> None:
        """Submits `requests` at the primary and delivers everything but commits: the
        batches prepare everywhere and commit nowhere."""
        self.drivers[primary].submit(requests)
        self.deliver(drop=lambda sender, to, message: isinstance(message, Commit))

    def post(self, sender: int, to: int | None, message) -> None:
        targets = [to] if to is not None else [i for i in range(self.config.n) if i != sender]
        data = wire.encode(message)
        self.timeline.append((self.now_ms, sender, message))
        for target in targets:
            self.sent.append((sender, target, message))
            self.wire.append((sender, target, data))

    def deliver(self, drop=lambda sender, to, message: False, limit: int = 100_000) -> None:
        """Delivers queued messages (and what they cause) until none are left."""
        for _ in range(limit):
            if not self.wire:
                return
            sender, to, data = self.wire.popleft()
            message = wire.decode(data, self.config.max_message_bytes)
            if sender in self.cut or to in self.cut or drop(sender, to, message):
                continue
            altered = self.tamper(sender, to, message)
            if altered is not message:      # what a liar sends still crosses as bytes
                message = wire.decode(wire.encode(altered), self.config.max_message_bytes)
            if self.drivers[to] is not None:
                self.drivers[to].receive(sender, message)
        raise AssertionError("the network never went quiet")

    def tick(self, times: int = 1, drop=lambda s, t, m: False) -> None:
        for _ in range(times):
            self.now_ms += 10
            for driver in self.drivers:
                if driver is not None:
                    driver.tick(self.now_ms)
            self.deliver(drop)
            self.serve_fetches()
            self.deliver(drop)

    def fetch(self, i: int, request) -> None:
        self.fetches.append((i, request))

    def serve_fetches(self) -> None:
        fetches, self.fetches = self.fetches, []
        for i, request in fetches:
            self.serve(i, request)

    def serve(self, i: int, request) -> None:
        """Serves a catch-up request from the first live peer; the answer passes the
        validator's checks (consensus/fetched.py) before the driver sees it."""
        if i in self.cut or self.drivers[i] is None:
            return
        for peer in request.peers:
            if self.drivers[peer] is None or peer in self.cut:
                continue
            blocks = self.ledgers[peer].serve(request.from_height, request.to_height)
            if self.tamper_fetched is not None:
                blocks = self.tamper_fetched(peer, i, blocks)
            _, refusal = take_answer(self.config, self.keys.signer(i), self.registry.inspect,
                                     self.drivers[i], self.ledgers[i], blocks)
            if refusal is not None:
                assert self.tamper_fetched is not None, \
                    f"replica {i} refused correct replica {peer}'s answer: {refusal}"
                self.refused_fetched.append((i, peer, refusal))
            return

    def heights(self) -> list[int]:
        return [ledger.height for ledger in self.ledgers]


class _Link:
    def __init__(self, cluster: Cluster, me: int):
        self.cluster, self.me = cluster, me

    def send(self, to, message) -> None:
        self.cluster.post(self.me, to, message)

    def fetch(self, request) -> None:
        self.cluster.fetch(self.me, request)
