"""A scripted cluster for scenario tests: the simulator's harness (tests/sim/harness.py:
real replicas, the production driver, the same fakes, send and receive paths, catch-up
and checkers) driven by the test instead of a random network. Messages wait on one
in-order wire until the test delivers them; clocks move only when a test moves them.
What was sent is what is received: messages cross as bytes. A catch-up request is
answered at once by the first live peer the replica names.

Every block and checkpoint a ledger keeps, and every message a replica sends, passes the
harness's checkers; the faults a replica records are left to the tests (test_faults.py
takes them), which play lying replicas themselves.

For consensus.fetched.check_fetched, whose first argument is a `SetAt` (height -> the
config and crypto of the set in force there, or None): `c.only_set(c.config,
c.keys.signer(i))` answers genesis's set at every height (the cluster never changes its
set unless a test submits a change); `c.set_at(c.nodes[i])` answers what replica i's
ledger knows, as the validator does (None beyond its head + M + 1, or from a pending
set's first height on)."""
from __future__ import annotations

from collections import deque

from consensus import wire
from consensus.driver import Driver
from consensus.messages import Commit
from tests.sim.fakes import DictStorage, HashChainLedger
from tests.sim.harness import Harness, Node


class Cluster(Harness):
    check_accusations = False       # the tests take the faults (test_faults.py)
    answers_may_be_stale = False    # answers arrive at once: none is ever late

    def __init__(self, n: int = 4, pool: int | None = None, **limits):
        """`n` validators in genesis; `pool` identities in all (default n), the others
        starting as followers, for tests that change the set (`change_set`)."""
        settings = dict(checkpoint_interval=2, window=8, batch_max_count=10,
                        request_timeout_ticks=4, view_change_timeout_ticks=4,
                        status_interval_ticks=3, max_clock_skew_ms=1_000)
        settings.update(limits)
        pool = n if pool is None else pool
        super().__init__([bytes([i + 1]) * 16 for i in range(pool)], "scenario",
                         members=None if pool == n else list(range(n)), **settings)
        self.wire: deque[tuple[int, int, bytes]] = deque()
        self.sent: list[tuple[int, int, object]] = []     # everything, for assertions
        self.timeline: list[tuple[int, int, object]] = []   # (time, sender, message) sent
        self.cut: set[int] = set()                        # replicas cut off both ways
        # a test that plays a lying replica rewrites its messages here: (sender, to, message)
        self.tamper = lambda sender, to, message: message
        self.now_ms = 1_000_000
        self.made = 0
        self.fetches: list = []
        # a test that plays a lying peer rewrites its catch-up answers here:
        # (server, requester, blocks) -> blocks; without one, every answer must pass
        self.tamper_fetched = None
        for i in range(pool):
            self.start(i)

    # ---- what the tests read ----------------------------------------------------------

    @property
    def drivers(self) -> list[Driver | None]:
        """Each replica's driver, None while it is down."""
        return [node.driver for node in self.nodes]

    @property
    def ledgers(self) -> list[HashChainLedger]:
        return [node.ledger for node in self.nodes]

    @property
    def storage(self) -> list[DictStorage]:
        return [node.storage for node in self.nodes]

    def crash(self, i: int) -> None:
        self.nodes[i].crash()

    def requests(self, count: int):
        out = [self.registry.make(self.made + k, b"scenario") for k in range(count)]
        self.made += count
        return out

    def change_set(self, members: list[int]):
        """A request that makes identities `members` (in that order) the validator set,
        from the height the rules give its block (tests/sim/fakes.py `Schedule`)."""
        self.made += 1
        return self.registry.make_set_change(self.made, tuple(self.keys.public[i]
                                                              for i in members))

    # ---- the network, step by step ----------------------------------------------------

    def post(self, sender: int, to: int | None, message) -> None:
        """`message` leaves `sender` (a replica's driver, or a test speaking for it)."""
        pairs = self.address(sender, to, message)
        self.timeline.append((self.now_ms, sender, message))
        self.sent.extend((sender, target, m) for target, m in pairs)
        self.emit(sender, pairs)

    def carry(self, sender: int, to: int, data: bytes) -> None:
        self.wire.append((sender, to, data))

    def deliver(self, drop=lambda sender, to, message: False, limit: int = 100_000) -> None:
        """Delivers queued messages (and what they cause) until none are left."""
        for _ in range(limit):
            if not self.wire:
                return
            sender, to, data = self.wire.popleft()
            message = self.decode(data)
            if sender in self.cut or to in self.cut or drop(sender, to, message):
                continue
            altered = self.tamper(sender, to, message)
            if altered is not message:      # what a liar sends still crosses as bytes
                message = self.decode(wire.encode(altered))
            self.receive(to, sender, message)
        raise AssertionError("the network never went quiet")

    def tick(self, times: int = 1, drop=lambda s, t, m: False) -> None:
        for _ in range(times):
            self.now_ms += 10
            for node in self.nodes:
                if node.up:
                    node.driver.tick(self.now_ms)
            self.deliver(drop)
            self.serve_fetches()
            self.deliver(drop)

    def prepare_only(self, requests, primary: int = 0) -> None:
        """Submits `requests` at the primary and delivers everything but commits: the
        batches prepare everywhere and commit nowhere."""
        self.drivers[primary].submit(requests)
        self.deliver(drop=lambda sender, to, message: isinstance(message, Commit))

    # ---- catch-up -----------------------------------------------------------------------

    def fetch(self, node: Node, request) -> None:
        self.fetches.append((node.index, request))

    def serve_fetches(self) -> None:
        fetches, self.fetches = self.fetches, []
        for i, request in fetches:
            self.serve(i, request)

    def serve(self, i: int, request) -> None:
        """Serves a catch-up request from the first live peer; the answer passes the
        validator's checks (the harness's `take_fetched`) before the driver sees it."""
        if i in self.cut or not self.nodes[i].up:
            return
        for peer in self.fetch_peers(self.nodes[i], request):
            if not self.nodes[peer].up or peer in self.cut:
                continue
            blocks = self.nodes[peer].ledger.serve(request.from_height, request.to_height)
            if self.tamper_fetched is not None:
                blocks = self.tamper_fetched(peer, i, blocks)
            self.take_fetched(self.nodes[i], peer, blocks)
            return

    def may_lie(self, server: int) -> bool:
        return self.tamper_fetched is not None
