"""The deterministic simulator: real replicas, the production driver, a simulated network,
crashes and restarts, Byzantine replicas, and checkers that watch from outside.

One seeded random.Random drives everything, so a seed reproduces a run exactly. Time is
virtual (milliseconds); each replica ticks every `tick_ms`.
"""
from __future__ import annotations

import hashlib
import heapq
import random
import traceback
from dataclasses import dataclass, field

from consensus import wire
from consensus.certificates import batch_is_certified
from consensus.config import Config
from consensus.digest import max_faulty, quorum
from consensus.driver import Driver
from consensus.messages import FetchBatch
from consensus.replica import Replica
from tests.sim.byzantine import BEHAVIOURS, Byzantine
from tests.sim.fakes import (DictStorage, Ed25519Keys, HashChainLedger, KeyedHashKeys,
                             Registry)


@dataclass(frozen=True)
class Settings:
    seed: int
    replicas: int = 4
    byzantine: int = 1
    ed25519: bool = False
    tick_ms: int = 20
    safety_ms: int = 4_000
    liveness_ms: int = 90_000      # the bound: every request committed by then
    loss: float = 0.05
    duplicate: float = 0.03
    max_delay_ms: int = 40
    crash_rate: float = 0.3        # chance per replica of one crash in the safety phase
    requests: int = 60
    checkpoint_interval: int = 4
    window: int = 16
    batch_max_count: int = 8


@dataclass
class Result:
    seed: int
    blocks: int = 0
    view_changes: int = 0
    requests: int = 0
    duplicates: int = 0
    batch_fetches: int = 0         # FetchBatch sent by correct replicas
    refused_batches: int = 0       # answers whose envelopes missed the digest (since start)
    faults_seen: int = 0           # faults correct replicas recorded (all Byzantine ones')
    violations: list[str] = field(default_factory=list)


class Violation(Exception):
    pass


class Node:
    def __init__(self, world: "World", index: int):
        self.world, self.index = world, index
        self.storage = DictStorage()
        self.ledger = HashChainLedger(world.check_block, world.check_checkpoint)
        self.crypto = world.keys.signer(index)
        self.byzantine: Byzantine | None = None
        self.up = False
        self.incarnation = 0
        self.driver: Driver | None = None

    def start(self) -> None:
        self.incarnation += 1
        self.up = True
        replica = Replica(self.world.config, self.index, self.crypto,
                          self.world.registry.inspect, self.storage.items(),
                          self.ledger.height, self.ledger.head_hash, self.ledger.last_time_ms,
                          list(self.ledger.executed_keys))
        self.driver = Driver(replica, self.storage, Link(self.world, self), self.ledger)
        self.driver.flush()

    def crash(self) -> None:
        if self.driver is not None:
            self.world.result.refused_batches += self.driver.replica.refused_batches
        self.up = False
        self.driver = None


class Link:
    """The driver's Network: hands messages and fetches to the simulated world."""

    def __init__(self, world: "World", node: Node):
        self.world, self.node = world, node

    def send(self, to, message) -> None:
        self.world.send(self.node, to, message)

    def fetch(self, request) -> None:
        self.world.fetch(self.node, request)


class World:
    def __init__(self, settings: Settings):
        self.s = settings
        self.rng = rng = random.Random(settings.seed)
        n = settings.replicas
        assert settings.byzantine <= max_faulty(n)
        if settings.ed25519:
            self.keys = Ed25519Keys([rng.randbytes(32) for _ in range(n)])
            validators = tuple(self.keys.public)
        else:
            self.keys = KeyedHashKeys([rng.randbytes(16) for _ in range(n)])
            validators = tuple(hashlib.sha256(s).digest() for s in self.keys.secrets)
        self.config = Config(chain="sim", validators=validators,
                             checkpoint_interval=settings.checkpoint_interval,
                             window=settings.window, batch_max_count=settings.batch_max_count,
                             request_timeout_ticks=10, view_change_timeout_ticks=10,
                             max_clock_skew_ms=2_000, max_views_ahead=16)
        self.registry = Registry()
        self.nodes = [Node(self, i) for i in range(n)]
        byzantine = rng.sample(range(n), settings.byzantine)
        for i in byzantine:
            behaviours = tuple(rng.sample(BEHAVIOURS, rng.randint(1, 3)))
            self.nodes[i].byzantine = Byzantine(self.config, i, self.nodes[i].crypto,
                                                random.Random(rng.random()), behaviours)
        self.correct = [i for i in range(n) if self.nodes[i].byzantine is None]
        self.now = 0
        self.events: list = []
        self.seq = 0
        self.cut: set[tuple[int, int]] = set()      # directed links that drop everything
        self.liveness = False
        self.core: set[int] = set()
        self.canonical: dict[int, bytes] = {}       # height -> batch digest, first seen
        self.canonical_hash: dict[int, bytes] = {}
        self.created: list = []
        self.result = Result(settings.seed)

    # ---- events -----------------------------------------------------------------------

    def at(self, time_ms: int, *event) -> None:
        self.seq += 1
        heapq.heappush(self.events, (time_ms, self.seq, event))

    def send(self, node: Node, to, message) -> None:
        if node.byzantine is not None:
            pairs = node.byzantine.outgoing(to, message)
        elif type(message) is FetchBatch:
            self.result.batch_fetches += 1
            pairs = [(to, message)]
        elif to is None:
            pairs = [(i, message) for i in range(len(self.nodes)) if i != node.index]
        else:
            pairs = [(to, message)]
        encoded: dict[int, bytes] = {}
        for peer, m in pairs:
            data = encoded.get(id(m))
            if data is None:
                data = encoded[id(m)] = wire.encode(m)
            self.transmit(node.index, peer, data)

    def transmit(self, sender: int, to: int, data: bytes) -> None:
        rng, s = self.rng, self.s
        reliable = self.liveness
        if not reliable:
            if (sender, to) in self.cut or rng.random() < s.loss:
                return
        delay = rng.randint(1, 10 if reliable else s.max_delay_ms)
        self.at(self.now + delay, "deliver", to, sender, data)
        if not reliable and rng.random() < s.duplicate:
            self.at(self.now + rng.randint(1, s.max_delay_ms), "deliver", to, sender, data)

    def fetch(self, node: Node, request) -> None:
        peers = [p for p in request.peers if self.nodes[p].up]
        if not peers:
            return
        peer = self.nodes[self.rng.choice(peers)]
        batches = peer.ledger.serve(request.from_height, request.to_height)
        if peer.byzantine is not None and batches and self.rng.random() < 0.5:
            first = batches[0]
            batches = [type(first)(first.height, first.view, first.time_ms + 1, first.digest,
                                   first.requests, first.certificate)] + batches[1:]
        self.at(self.now + self.rng.randint(5, 30), "fetched", node.index, node.incarnation,
                batches)

    def step(self, event) -> None:
        kind = event[0]
        if kind == "tick":
            _, i, incarnation = event
            node = self.nodes[i]
            if node.up and node.incarnation == incarnation:
                node.driver.tick(self.now)
                self.at(self.now + self.s.tick_ms, "tick", i, incarnation)
        elif kind == "deliver":
            _, to, sender, data = event
            node = self.nodes[to]
            if node.up:
                message = wire.decode(data, self.config.max_message_bytes)
                node.driver.receive(sender, message)
                if node.byzantine is None:
                    self.check_faults(node)
        elif kind == "fetched":
            _, i, incarnation, batches = event
            node = self.nodes[i]
            if node.up and node.incarnation == incarnation:
                good = []
                for batch in batches:
                    if not batch_is_certified(self.config, node.crypto, batch):
                        break
                    if any(r.digest != hashlib.sha256(r.payload).digest() for r in batch.requests):
                        break
                    good.append(batch)
                node.driver.apply_fetched(good)
        elif kind == "submit":
            _, i, requests = event
            node = self.nodes[i]
            if node.up:
                # the node's door answers a known transaction from its ledger instead
                fresh = [r for r in requests if r.key not in node.ledger.executed_keys]
                node.driver.submit(fresh)
        elif kind == "crash":
            self.nodes[event[1]].crash()
        elif kind == "restart":
            self.start(event[1])
        elif kind == "heal":
            self.cut = set()
        else:
            raise AssertionError(kind)

    def start(self, i: int) -> None:
        node = self.nodes[i]
        if node.up:
            return
        node.start()
        self.at(self.now + self.rng.randint(1, self.s.tick_ms), "tick", i, node.incarnation)

    def run_until(self, end_ms: int, done=None) -> bool:
        next_check = self.now
        while self.events and self.events[0][0] <= end_ms:
            time_ms, _, event = heapq.heappop(self.events)
            self.now = time_ms
            self.step(event)
            if done is not None and time_ms >= next_check:
                next_check = time_ms + 100
                if done():
                    return True
        self.now = max(self.now, end_ms)
        return done() if done is not None else True

    # ---- checkers (outside the replicas) -----------------------------------------------

    def check_faults(self, node: Node) -> None:
        """A correct replica accuses only Byzantine ones: a false accusation would make a
        node drop a correct partner's link."""
        for fault in node.driver.replica.take_faults():
            if self.nodes[fault.peer].byzantine is None:
                raise Violation(f"replica {node.index} accused correct replica "
                                f"{fault.peer} of {fault.kind}")
            self.result.faults_seen += 1

    def check_block(self, ledger: HashChainLedger, batch) -> None:
        owner = next(n for n in self.nodes if n.ledger is ledger)
        if batch.height != ledger.height + 1:
            raise Violation(f"replica {owner.index} executed height {batch.height} "
                            f"after {ledger.height}: commits regress or skip")
        for request in batch.requests:
            if request.key not in self.registry.by_key:
                raise Violation(f"height {batch.height} holds a request nobody submitted")
        if owner.byzantine is not None:
            return
        known = self.canonical.setdefault(batch.height, batch.digest)
        if known != batch.digest:
            raise Violation(f"fork: correct replicas committed different batches at "
                            f"height {batch.height}")
        if not batch_is_certified(self.config, owner.crypto, batch):
            raise Violation(f"height {batch.height} committed without a valid certificate")

    def check_checkpoint(self, ledger: HashChainLedger, checkpoint) -> None:
        owner = next(n for n in self.nodes if n.ledger is ledger)
        if owner.byzantine is not None:
            return
        height = checkpoint.height
        if height > ledger.height or ledger.hashes[height - 1] != checkpoint.block_hash:
            raise Violation(f"replica {owner.index} kept a checkpoint at {height} that "
                            f"disagrees with its block")
        known = self.canonical_hash.setdefault(height, checkpoint.block_hash)
        if known != checkpoint.block_hash:
            raise Violation(f"checkpoints disagree at height {height}")

    # ---- the two phases ----------------------------------------------------------------

    def new_requests(self, count: int) -> list:
        out = []
        for _ in range(count):
            request = self.registry.make(len(self.created), self.rng.randbytes(
                self.rng.randint(4, 64)))
            self.created.append(request)
            out.append(request)
        return out

    def run(self) -> Result:
        try:
            self._run()
        except Violation as v:
            self.result.violations.append(str(v))
        except AssertionError:
            self.result.violations.append("assertion: " + traceback.format_exc()[-600:])
        views = [n.driver.replica.view for n in self.nodes if n.up and n.byzantine is None]
        self.result.view_changes = max(views, default=0)
        self.result.blocks = max((self.nodes[i].ledger.height for i in self.correct), default=0)
        self.result.requests = len(self.created)
        self.result.duplicates = sum(self.nodes[i].ledger.duplicates for i in self.correct)
        self.result.refused_batches += sum(self.nodes[i].driver.replica.refused_batches
                                           for i in self.correct if self.nodes[i].up)
        return self.result

    def _run(self) -> None:
        rng, s, n = self.rng, self.s, len(self.nodes)
        for i in range(n):
            self.start(i)
        # safety phase: load, faults, crashes, partitions
        remaining = s.requests
        while remaining > 0:
            count = min(remaining, rng.randint(1, 5))
            remaining -= count
            self.at(rng.randint(0, s.safety_ms), "submit", rng.randrange(n),
                    self.new_requests(count))
        for i in self.correct:
            if rng.random() < s.crash_rate:
                down = rng.randint(0, s.safety_ms)
                self.at(down, "crash", i)
                self.at(down + rng.randint(50, 1_500), "restart", i)
        if n > 1 and rng.random() < 0.5:
            side = set(rng.sample(range(n), rng.randint(1, n // 2)))
            self.cut = {(a, b) for a in range(n) for b in range(n)
                        if (a in side) != (b in side)}
            self.at(rng.randint(s.safety_ms // 2, s.safety_ms), "heal")
        self.run_until(s.safety_ms)
        # liveness phase: a quorum of correct replicas, connected and reliable
        self.liveness = True
        self.cut = set()
        q = quorum(n)
        self.core = set(rng.sample(self.correct, q)) if len(self.correct) > q else set(self.correct)
        for i in self.correct:
            if i in self.core:
                self.start(i)
            elif self.nodes[i].up and rng.random() < 0.5:
                self.nodes[i].crash()
        waiting = [r for r in self.created]
        for i in sorted(self.core):
            for k in range(0, len(waiting), 50):
                self.at(self.now + 1, "submit", i, waiting[k:k + 50])
        deadline = self.now + s.liveness_ms
        if not self.run_until(deadline, self.all_committed):
            missing = [r.key.hex() for r in self.created
                       if any(r.key not in self.nodes[i].ledger.executed_keys
                              for i in self.core)]
            heights = {i: self.nodes[i].ledger.height for i in sorted(self.core)}
            raise Violation(f"liveness: {len(missing)} requests not committed at every core "
                            f"replica within {s.liveness_ms} ms (heights {heights})")

    def all_committed(self) -> bool:
        for i in self.core:
            keys = self.nodes[i].ledger.executed_keys
            if len(keys) < len(self.created):
                return False
        return True


def run_seed(settings: Settings) -> Result:
    return World(settings).run()
