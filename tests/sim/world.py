"""The deterministic simulator: real replicas, the production driver, a simulated network,
crashes and restarts, storage faults, Byzantine replicas, and checkers that watch from
outside. The replicas, their fakes, the send and receive paths, catch-up and the checkers
are tests/sim/harness.py's, the same the scenario cluster drives; this module is the
random driver of that harness.

One seeded random.Random drives everything, so a seed reproduces a run exactly. Time is
virtual (milliseconds); each replica ticks every `tick_ms`.

The glue around the driver is the validator's where it can be: a catch-up answer is
checked by consensus/fetched.py (the harness's `take_fetched`), as node/runtime.py
checks it; a catch-up request is served within node/fetchserve.py's `FetchBudget` (its
clock the virtual one); a driver step that fails stops the node at once (the driver's
`on_failure`, as `Validator.fail`), and the node restarts later from its store and its
ledger. Serving is not free: each answer costs the server `serve_us` of its time and
`serve_us_per_block` for each block in it, each refused request `refuse_us`, and its
inputs wait meanwhile, so a peer flooding catch-up requests would starve a server that
answered them all.

With `Settings.pool` set, tests/sim/reconfig.py's `ReconfigWorld` runs instead: a pool of
identities, genesis's set some of them, and planned validator set changes.
"""
from __future__ import annotations

import heapq
import random
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field

from consensus.digest import max_faulty, quorum
from consensus.driver import Halted
from consensus.messages import FetchBatch
from node.fetchserve import FetchBudget
from tests.sim.byzantine import BEHAVIOURS, Byzantine
from tests.sim.fakes import ARMED_FAULTS, POWER_LOSS, Crash, StorageFault
from tests.sim.harness import Harness, Node, Violation

__all__ = ["Result", "Settings", "Violation", "World", "run_seed"]


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
    # chance per correct replica of each storage fault (fakes.ARMED_FAULTS and a power
    # loss) at a random moment of the safety phase
    storage_faults: float = 0.1
    flood_per_tick: int = 50        # catch-up requests a flooder sends each peer a tick
    serve_us: int = 500             # a server's time per answer (read, frame, send)
    serve_us_per_block: int = 100   # and per block in it
    refuse_us: int = 5              # and per request it refuses
    fetch_budget: bool = True       # False: serve every catch-up request (no FetchBudget)
    behaviours: tuple[str, ...] = ()   # the Byzantine replicas', instead of drawn ones
    # reconfiguration (tests/sim/reconfig.py): `pool` identities (0: none, the network
    # keeps genesis's `replicas` validators), genesis `replicas` of them, `byzantine` of
    # them Byzantine (at most f of every set), and `switches` planned set changes
    pool: int = 0
    switches: int = 4
    decoys: float = 0.3            # chance per switch of a change the planned one replaces
    switch_crash: float = 0.5      # chance per switch of a crash right across its height
    switch_margin: int | None = None   # M (None: drawn, window or window + K)
    # whether a decoy may go with its planned change, so that the planned one may replace
    # it from the same first height (both enacted in one checkpoint interval)
    replace_in_interval: bool = False


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
    fetch_requests: int = 0        # catch-up requests correct replicas sent
    catch_up_blocks: int = 0       # fetched blocks correct replicas applied
    catch_up_refused: Counter = field(default_factory=Counter)   # Byzantine answers, by check
    stale_answers: int = 0         # correct answers refused as not due (raced or restarted)
    fetch_served: int = 0          # catch-up requests correct replicas answered
    fetch_refused: int = 0         # and refused (node/fetchserve.py: over budget, repeat)
    flood_served: int = 0          # a flooder's requests correct replicas answered
    flood_refused: int = 0         # and refused
    storage_faults: Counter = field(default_factory=Counter)    # fired, by kind
    blocks_lost: int = 0           # ledger transactions power losses undid
    switches: int = 0              # validator sets that took over on the canonical chain
    planned: int = 0               # of the planned ones
    plan: int = 0                  # planned changes (at least `switches`)
    replaced: int = 0              # pending sets a later change replaced
    handovers: int = 0             # replicas handed over to the next set's (or a follower)
    stale_faults: int = 0          # faults recorded on a removed validator's stale place
    stale_votes: int = 0           # rounds of votes removed Byzantine validators sent
    switch_crashes: int = 0        # crashes right across a switch height
    sizes: tuple[int, ...] = ()    # the sizes of the sets in force, in order
    violations: list[str] = field(default_factory=list)


class SimNode(Node):
    """A harness node with what the simulator schedules around it: its catch-up budget
    and the inputs that wait while it serves catch-up."""

    def __init__(self, world: "World", index: int):
        super().__init__(world, index)
        self.fetch_budget: FetchBudget | None = None
        self.busy_us = 0                # serving catch-up keeps it busy until then
        self.backlog: deque = deque()   # inputs that came while it was busy, in order
        self.waking = False             # a "wake" event is due for the backlog

    def start(self) -> None:
        self.fetch_budget = FetchBudget(len(self.harness.nodes), self.harness.now / 1000)
        super().start()

    def crash(self) -> None:
        """The process dies, and so do the inputs waiting for it."""
        super().crash()
        self.backlog.clear()
        self.busy_us = 0


class World(Harness):
    node_type = SimNode

    def __init__(self, settings: Settings):
        self.s = settings
        self.rng = rng = random.Random(settings.seed)
        self.now = 0
        secrets, members = self.draw_identities(rng, settings)
        n = len(secrets)
        super().__init__(secrets, "sim", settings.ed25519, members,
                         checkpoint_interval=settings.checkpoint_interval,
                         window=settings.window, batch_max_count=settings.batch_max_count,
                         request_timeout_ticks=10, view_change_timeout_ticks=10,
                         max_clock_skew_ms=2_000, max_views_ahead=16,
                         **self.more_settings(rng, settings))
        byzantine = self.draw_byzantine(rng, settings)
        for i in byzantine:
            behaviours = settings.behaviours or self.draw_behaviours(rng)
            self.nodes[i].byzantine = Byzantine(self.config, i, self.nodes[i].crypto,
                                                random.Random(rng.random()), behaviours)
            self.nodes[i].byzantine.pool = n
        self.correct = [i for i in range(n) if self.nodes[i].byzantine is None]
        self.events: list = []
        self.seq = 0
        self.cut: set[tuple[int, int]] = set()      # directed links that drop everything
        self.liveness = False
        self.core: set[int] = set()
        self.created: list = []
        self.result = Result(settings.seed)

    # ---- who is who (tests/sim/reconfig.py draws them otherwise) ------------------------

    def draw_identities(self, rng, s: Settings) -> tuple[list[bytes], list[int] | None]:
        """The identities' secrets, and genesis's validators among them (None: all)."""
        assert s.byzantine <= max_faulty(s.replicas)
        return [rng.randbytes(32 if s.ed25519 else 16) for _ in range(s.replicas)], None

    def more_settings(self, rng, s: Settings) -> dict:
        return {}

    def draw_byzantine(self, rng, s: Settings) -> list[int]:
        return rng.sample(range(s.replicas), s.byzantine)

    def draw_behaviours(self, rng) -> tuple[str, ...]:
        return tuple(rng.sample(BEHAVIOURS, rng.randint(1, 3)))

    # ---- events -----------------------------------------------------------------------

    def at(self, time_ms: int, *event) -> None:
        self.seq += 1
        heapq.heappush(self.events, (time_ms, self.seq, event))

    def send(self, node: SimNode, to, message) -> None:
        super().send(node, to, message)
        if node.byzantine is None and type(message) is FetchBatch:
            self.result.batch_fetches += 1

    def carry(self, sender: int, to: int, data: bytes) -> None:
        self.transmit(sender, to, "deliver", data)

    def transmit(self, sender: int, to: int, kind: str, payload, *extra) -> None:
        """Carries one message from `sender` to `to` as the event (kind, to, sender,
        payload, *extra): lost, cut off by a partition, delayed (so reordered) or
        duplicated in the safety phase, delivered within 10 ms in the liveness phase."""
        rng, s = self.rng, self.s
        reliable = self.liveness
        if not reliable:
            if (sender, to) in self.cut or rng.random() < s.loss:
                return
        delay = rng.randint(1, 10 if reliable else s.max_delay_ms)
        self.at(self.now + delay, kind, to, sender, payload, *extra)
        if not reliable and rng.random() < s.duplicate:
            self.at(self.now + rng.randint(1, s.max_delay_ms), kind, to, sender, payload,
                    *extra)

    def fetch(self, node: SimNode, request) -> None:
        """The driver's catch-up request goes to the first peer it names, as the
        validator sends it (node/runtime.py `fetch`; the replica names another first
        each time): at most fetch_max_blocks, and with no idea whether the peer is up."""
        n = len(self.nodes)
        peers = self.fetch_peers(node, request) or \
            [p for p in range(n) if p != node.index]
        if not peers:
            return
        peer = peers[0]
        to = min(request.to_height, request.from_height + self.config.fetch_max_blocks - 1)
        if node.byzantine is None:
            self.result.fetch_requests += 1
        self.transmit(node.index, peer, "fetch_request", [(request.from_height, to)], False)

    def serve_fetch(self, server: SimNode, peer: int, ranges, flood: bool) -> None:
        """A peer's catch-up requests, each within the server's FetchBudget (the
        validator's `_serve_fetch`); every one costs the server time."""
        config = self.config
        for first, last in ranges:
            if self.s.fetch_budget:
                refused = server.fetch_budget.allow(peer, first, last, self.now / 1000)
                if refused is not None:
                    server.busy_us = max(server.busy_us, self.now * 1000) + self.s.refuse_us
                    if server.byzantine is None:
                        if flood:
                            self.result.flood_refused += 1
                        else:
                            self.result.fetch_refused += 1
                    continue
            last = min(last, first + config.fetch_max_blocks - 1)
            if flood:       # the flooder throws its answers away: only their cost counts
                count = max(0, min(last, server.ledger.height) - first + 1)
                blocks = []
            else:
                blocks = server.ledger.serve(first, last)
                count = len(blocks)
            server.busy_us = max(server.busy_us, self.now * 1000) + \
                self.s.serve_us + self.s.serve_us_per_block * count
            if server.byzantine is not None:
                blocks = server.byzantine.answer_fetch(blocks)
            elif flood:
                self.result.flood_served += 1
            else:
                self.result.fetch_served += 1
            if blocks:
                self.transmit(server.index, peer, "fetched", blocks)

    @staticmethod
    def target(event) -> int | None:
        """The node an event is an input of (it waits while that node is busy)."""
        kind = event[0]
        if kind in ("tick", "deliver", "fetch_request", "fetched", "submit"):
            return event[1]
        return None

    def step(self, event) -> None:
        i = self.target(event)
        if i is not None:
            node = self.nodes[i]
            if node.backlog or node.busy_us > self.now * 1000:
                # its inputs wait, in order, while the node serves catch-up
                node.backlog.append(event)
                if not node.waking:
                    node.waking = True
                    self.at(-(-node.busy_us // 1000), "wake", i)
                return
        elif event[0] == "wake":
            node = self.nodes[event[1]]
            node.waking = False
            while node.backlog and node.busy_us <= self.now * 1000:
                self.handle(node.backlog.popleft())
            if node.backlog:
                node.waking = True
                self.at(-(-node.busy_us // 1000), "wake", event[1])
            return
        self.handle(event)

    def handle(self, event) -> None:
        try:
            self._step(event)
        except (Crash, StorageFault) as error:
            # injected by the node's Disk inside one of its steps: the driver has stopped
            # the node already (`Node.fail`); it restarts from its disk later
            i = event[1]
            assert not self.nodes[i].up, f"replica {i} ran on after {error!r}"
            self.at(self.now + self.rng.randint(50, 1_500), "restart", i)
        except Halted as halted:
            raise Violation(f"an input reached replica {event[1]} after its driver "
                            f"stopped: {halted}") from None

    def _step(self, event) -> None:
        kind = event[0]
        if kind == "tick":
            _, i, incarnation = event
            node = self.nodes[i]
            if node.up and node.incarnation == incarnation:
                node.driver.tick(self.now)
                self.at(self.now + self.s.tick_ms, "tick", i, incarnation)
                if node.byzantine is not None and "fetch_flood" in node.byzantine.behaviours:
                    self.flood(node)
        elif kind == "deliver":
            _, to, sender, data = event
            if self.nodes[to].up:
                self.receive(to, sender, self.decode(data))
        elif kind == "fetch_request":
            _, to, sender, ranges, flood = event
            server = self.nodes[to]
            if server.up:
                self.serve_fetch(server, sender, ranges, flood)
        elif kind == "fetched":
            _, i, server, blocks = event
            node = self.nodes[i]
            if node.up:
                self.take_fetched(node, server, blocks)
        elif kind == "submit":
            _, i, requests = event
            node = self.nodes[i]
            if node.up:
                # the node's door answers a known transaction from its ledger instead
                fresh = [r for r in requests if r.key not in node.ledger.executed_keys]
                node.driver.submit(fresh)
        elif kind == "crash":
            self.nodes[event[1]].crash()
        elif kind == "arm":
            _, i, fault = event
            self.nodes[i].disk.armed.add(fault)
        elif kind == POWER_LOSS:
            # the machine goes down: the process with it, and the ledger's last
            # transaction if nothing synced after it (fakes.py)
            node = self.nodes[event[1]]
            node.crash()
            node.disk.power_loss()
            self.at(self.now + self.rng.randint(50, 1_500), "restart", event[1])
        elif kind == "restart":
            self.start(event[1])
        elif kind == "heal":
            self.cut = set()
        else:
            raise AssertionError(kind)

    def flood(self, node: SimNode) -> None:
        for peer in range(len(self.nodes)):
            if peer != node.index:
                ranges = node.byzantine.flood(node.ledger.height, self.s.flood_per_tick)
                self.transmit(node.index, peer, "fetch_request", ranges, True)

    def start(self, i: int) -> bool:
        """Starts replica i unless it is up, and its ticks with it."""
        started = super().start(i)
        if started:
            self.at(self.now + self.rng.randint(1, self.s.tick_ms), "tick", i,
                    self.nodes[i].incarnation)
        return started

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
        result = self.result
        for i in self.correct:
            disk = self.nodes[i].disk
            result.storage_faults.update(disk.fired)
            result.blocks_lost += disk.lost
        views = [n.driver.replica.view for n in self.nodes if n.up and n.byzantine is None]
        result.view_changes = max(views, default=0)
        result.blocks = max((self.nodes[i].ledger.height for i in self.correct), default=0)
        result.requests = len(self.created)
        result.duplicates = sum(self.nodes[i].ledger.duplicates for i in self.correct)
        result.refused_batches = self.refused_batches + sum(
            getattr(self.nodes[i].driver.replica, "refused_batches", 0) for i in self.correct
            if self.nodes[i].up)
        result.handovers = self.switches
        result.stale_faults = self.stale_faults
        result.faults_seen = self.faults_seen
        result.catch_up_blocks = self.caught_up
        result.catch_up_refused = Counter(r.kind for _, _, r in self.refused_fetched)
        result.stale_answers = self.stale_answers
        return result

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
        self.schedule_failures(rng, s, n)
        self.run_until(s.safety_ms)
        # liveness phase: a quorum of correct replicas, connected and reliable
        self.begin_liveness()
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

    def schedule_failures(self, rng, s: Settings, n: int) -> None:
        """Per correct replica: a crash and restart (crash_rate), and each storage fault
        (storage_faults), at random moments of the safety phase; half the runs, a
        partition of the `n` replicas in two until a random moment."""
        for i in self.correct:
            if rng.random() < s.crash_rate:
                down = rng.randint(0, s.safety_ms)
                self.at(down, "crash", i)
                self.at(down + rng.randint(50, 1_500), "restart", i)
            for fault in ARMED_FAULTS + (POWER_LOSS,):
                if rng.random() < s.storage_faults:
                    when = rng.randint(0, s.safety_ms)
                    if fault == POWER_LOSS:
                        self.at(when, POWER_LOSS, i)
                    else:
                        self.at(when, "arm", i, fault)
        if n > 1 and rng.random() < 0.5:
            side = set(rng.sample(range(n), rng.randint(1, n // 2)))
            self.cut = {(a, b) for a in range(n) for b in range(n)
                        if (a in side) != (b in side)}
            self.at(rng.randint(s.safety_ms // 2, s.safety_ms), "heal")

    def begin_liveness(self) -> None:
        """The network connected and reliable from now on, and no storage fault armed
        that did not fire in the safety phase."""
        self.liveness = True
        self.cut = set()
        for node in self.nodes:
            node.disk.armed.clear()

    def all_committed(self) -> bool:
        for i in self.core:
            keys = self.nodes[i].ledger.executed_keys
            if len(keys) < len(self.created):
                return False
        return True


def run_seed(settings: Settings) -> Result:
    if settings.pool:
        from tests.sim.reconfig import ReconfigWorld
        return ReconfigWorld(settings).run()
    return World(settings).run()
