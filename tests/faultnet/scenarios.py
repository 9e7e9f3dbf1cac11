"""Scenarios of a hostile network, each run the same way on four real validator processes
(docs/faults.md describes them and what is checked).

A run: `stadsmunt network init`; a FaultProxy process with a port per ordered pair of
validators, and every validator's `[peers]` rewritten to reach each peer through its
link (tests/faultnet/proxy.py); the validators started and linked through the proxy
(those of the clock scenarios through tests/faultnet/skew.py); clients submitting
through every gateway (tests/faultnet/history.py) until a first hundred acknowledgements
(warm-up); then the fault for `seconds`; then the heal, at which one fresh transaction
(the probe) is sent to every gateway until one acknowledges it; the clients go on a few
seconds more and stop; the validators must catch up with each other; they are stopped
with SIGTERM and their stores read. Checked: the ledger checks of history.py, the
scenario's own expectation (progress during the fault, or none at all; the primary
replaced), every validator alive to the end, accusing none of the others and stopping
cleanly, and `stadsmunt audit` of each validator's folder.

Measured: committed tx/s and the p50 and p99 latency (first submission to first
acknowledgement, of the transactions acknowledged during the fault), the view changes
(the highest view after the heal minus the one before the fault), heal to commit (the
probe's latency from the heal), bytes between validators per acknowledged transaction,
and the machine's load average around the fault.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from node import config as node_config
from node.readstore import ReadOnlyStore
from node.store import MAX_LIST
from tests.faultnet.history import Check, Clients, History, check_ledgers, percentile
from tests.faultnet.proxy import ProxyProcess
from tests.integration.netharness import REPO, Network

CLIENTS = 48
WARM_COMMITS = 100
RECOVER_S = 3.0             # clients go on this long after the probe is acknowledged
HEAL_TIMEOUT_S = 90.0       # no acknowledgement this long after the heal: a stall
CATCH_UP_S = 90.0
STILL_GRACE_S = 2.0         # a partition lets what was already voted commit first
SKEW_MS = 180_000           # three minutes
SCENARIO_OVERHEAD_S = 600   # start, warm-up, heal, catching up, audits: at most this


@dataclass
class Outcome:
    scenario: str
    seconds: float
    committed: int = 0              # acknowledged during the fault
    tx_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    view_changes: int | None = None
    heal_to_commit_s: float | None = None
    peer_bytes_per_tx: float | None = None  # between validators, over the whole run
    checks: list[Check] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    folder: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


class Run:
    """One scenario's network, proxy, clients and record."""

    def __init__(self, root: Path, seed: int, clients: int, through_proxy: bool = True,
                 clock: bool = False):
        self.root, self.seed = root, seed
        self.rng = random.Random(seed)
        self.through_proxy, self.clock = through_proxy, clock
        self.net = Network(root, 4)
        self.names = self.net.names
        self.proxy: ProxyProcess | None = None
        self.history = History()
        self.clients: Clients | None = None
        self.client_count = clients
        self.background: list[asyncio.Task] = []
        self.healing = asyncio.Event()      # background faults end when it is set
        self.marks: dict[str, object] = {}

    # ---- set-up -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.through_proxy:
            targets = {n: ("127.0.0.1", p) for n, p in self.net.peer_ports.items()}
            self.proxy = ProxyProcess(targets, self.seed, str(self.root / "proxy.log"))
            ports = await self.proxy.start()
            for name in self.names:
                route_through(self.root / name, name,
                              {peer: ports[(name, peer)] for peer in self.names
                               if peer != name})
        for name in self.names:
            if self.clock:
                self.offset_file(name).write_text("0\n")
                self.net.start(name, launcher=["-m", "tests.faultnet.skew",
                                               str(self.offset_file(name)), "node", "run"])
            else:
                self.net.start(name)
        await self.net.wait_ready(self.names, timeout_s=60)
        gateways = dict(self.net.gateways)
        self.clients = Clients(self.net.session, gateways, self.net.admin, self.net.chain,
                               self.history, self.client_count)

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.net.close()
        if self.proxy is not None:
            await self.proxy.stop()

    # ---- what scenarios use -------------------------------------------------------------

    async def primary(self) -> str:
        found = await self.net.statuses(self.names)
        views = [(s["view"], s["primary"]) for s in found.values() if s is not None]
        return max(views)[1]

    async def max_view(self) -> int:
        found = await self.net.statuses(self.names)
        return max(s["view"] for s in found.values() if s is not None)

    async def max_height(self) -> int:
        found = await self.net.statuses(self.names)
        return max(s["height"] for s in found.values() if s is not None)

    def edges_of(self, name: str, into: bool = True, out: bool = True) -> list:
        others = [n for n in self.names if n != name]
        return [(o, name) for o in others if into] + [(name, o) for o in others if out]

    def all_edges(self) -> list:
        return [(a, b) for a in self.names for b in self.names if a != b]

    def offset_file(self, name: str) -> Path:
        return self.root / f"{name}.clock-offset"

    async def set_clock(self, name: str, offset_ms: int) -> None:
        """Steps `name`'s wall clock to `offset_ms` off and waits until it took it."""
        self.offset_file(name).write_text(f"{offset_ms}\n")
        seen = len(self.net.log_events(name, "faultnet_clock_offset"))
        os.kill(self.net.processes[name].pid, signal.SIGUSR1)

        async def taken():
            events = self.net.log_events(name, "faultnet_clock_offset")
            return len(events) > seen and events[-1]["offset_ms"] == offset_ms
        await self.net.wait_for(f"{name}'s clock to step to {offset_ms} ms", taken, 10)

    def spawn(self, coroutine) -> None:
        self.background.append(asyncio.create_task(coroutine))

    async def stop_background(self) -> None:
        """Ends the background faults: each ends at its next step once `healing` is set;
        cancelled too, for those asleep."""
        self.healing.set()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background = []


def route_through(folder: Path, name: str, ports: dict[str, int]) -> None:
    """Rewrites the `[peers]` addresses of the validator in `folder` to the proxy's ports
    of its links, and checks the settings read back as meant."""
    path = folder / node_config.CONFIG_NAME
    text = path.read_text()
    settings = node_config.load(folder)
    for peer, (host, port) in settings.peers.items():
        old = f"{json.dumps(peer)} = {json.dumps(f'{host}:{port}')}"
        assert text.count(old) == 1, f"{path}: cannot find {old}"
        text = text.replace(old, f"{json.dumps(peer)} = "
                                 f"{json.dumps(f'127.0.0.1:{ports[peer]}')}")
    path.write_text(text)
    again = node_config.load(folder)
    assert again.peers == {p: ("127.0.0.1", ports[p]) for p in ports}, again.peers
    assert again.name == name


# ---- the scenarios ------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    about: str
    apply: Callable[[Run], Awaitable[None]] | None = None
    heal: Callable[[Run], Awaitable[None]] | None = None
    progress: bool = True           # commits go on during the fault
    standstill: bool = False        # no height advances during the fault
    view_change: bool = False       # the fault must replace the primary
    through_proxy: bool = True
    clock: bool = False


def _latency(latency_ms: float, jitter_ms: float):
    async def apply(run: Run) -> None:
        await run.proxy.set(run.all_edges(), latency_ms=latency_ms, jitter_ms=jitter_ms)
    return apply


async def _loss(run: Run) -> None:
    # every direction: 2 % of chunks lost and sent again after a 200 ms timeout; every
    # pair's connection reset now and then (about one reset a second in all)
    await run.proxy.set(run.all_edges(), stall_p=0.02, stall_ms=200.0, reset_per_s=0.08)


async def _cut_primary(run: Run) -> None:
    primary = await run.primary()
    run.marks["cut"] = primary
    await run.proxy.set(run.edges_of(primary), blocked=True)


async def _split_two_two(run: Run) -> None:
    primary = await run.primary()
    i = run.names.index(primary)
    side = {primary, run.names[(i + 1) % 4]}
    run.marks["sides"] = sorted(side), sorted(set(run.names) - side)
    await run.proxy.set([(a, b) for a in run.names for b in run.names
                         if a != b and (a in side) != (b in side)], blocked=True)


async def _deaf_primary(run: Run) -> None:
    # the primary sends to every peer and hears from none
    primary = await run.primary()
    run.marks["deaf"] = primary
    await run.proxy.set(run.edges_of(primary, into=True, out=False), blocked=True)


async def _flap(run: Run) -> None:
    """The primary's links to two backups go down and up, each on its own random
    schedule (0.3 to 1.5 s each way); half the downs also reset the connection."""
    primary = await run.primary()
    backups = [n for n in run.names if n != primary]
    peers = run.rng.sample(backups, 2)
    run.marks["flapping"] = [f"{primary}-{p}" for p in peers]
    for peer in peers:
        run.spawn(_flap_link(run, primary, peer, random.Random(run.rng.random())))


async def _flap_link(run: Run, a: str, b: str, rng: random.Random) -> None:
    edges = [(a, b), (b, a)]
    while not run.healing.is_set():
        await asyncio.sleep(rng.uniform(0.3, 1.5))     # up: the fault's own schedule
        if run.healing.is_set():
            break
        await run.proxy.set(edges, blocked=True)
        if rng.random() < 0.5:
            await run.proxy.reset(edges)
        run.marks["flips"] = run.marks.get("flips", 0) + 1
        await asyncio.sleep(rng.uniform(0.3, 1.5))     # down
        await run.proxy.set(edges, blocked=False)


async def _late_reconnects(run: Run) -> None:
    # 10 to 50 ms one way, and on every pair now and then a reconnect whose old bytes
    # arrive late (about one a second in all)
    await run.proxy.set(run.all_edges(), latency_ms=10.0, jitter_ms=40.0, late_per_s=0.08)


def _narrow(bandwidth: float):
    async def apply(run: Run) -> None:
        await run.proxy.set(run.all_edges(), latency_ms=18.0, jitter_ms=4.0,
                            bandwidth=bandwidth)
    return apply


def _skew_primary(offset_ms: int):
    async def apply(run: Run) -> None:
        primary = await run.primary()
        run.marks["skewed"] = primary
        await run.set_clock(primary, offset_ms)
    return apply


async def _skew_two(run: Run) -> None:
    # more than f clocks wrong: the primary's 3 minutes ahead, the next one's 3 behind
    primary = await run.primary()
    behind = run.names[(run.names.index(primary) + 1) % len(run.names)]
    run.marks["skewed"] = [primary, behind]
    await run.set_clock(primary, SKEW_MS)
    await run.set_clock(behind, -SKEW_MS)


async def _unskew(run: Run) -> None:
    skewed = run.marks["skewed"]
    for name in [skewed] if isinstance(skewed, str) else skewed:
        await run.set_clock(name, 0)


SCENARIOS = {s.name: s for s in [
    Scenario("direct", "no proxy: the validators linked directly on loopback",
             through_proxy=False),
    Scenario("baseline", "through the proxy, no fault (loopback)"),
    Scenario("wan20", "20 ms one way on every link (18 to 22 ms)", _latency(18.0, 4.0)),
    Scenario("wan50", "50 ms one way on every link (45 to 55 ms)", _latency(45.0, 10.0)),
    Scenario("narrow", "wan20 and 128 KiB/s (1 Mbit/s) each way on every link",
             _narrow(128 * 1024)),
    Scenario("loss", "2 % of chunks lost (200 ms retransmission) and random resets, "
                     "every link", _loss),
    Scenario("minority", "the primary cut off from the other three, then healed",
             _cut_primary, view_change=True),
    Scenario("majority", "two against two (the primary and the next against the others): "
                         "no quorum anywhere", _split_two_two, progress=False,
             standstill=True),
    Scenario("asymmetric", "the primary sends to every peer but hears from none",
             _deaf_primary, view_change=True),
    Scenario("flapping", "two of the primary's links go down and up at random",
             _flap),
    Scenario("reorder", "10 to 50 ms, and reconnects whose old bytes arrive late "
                        "(duplicates, reordering across connections)", _late_reconnects),
    Scenario("clock-ahead", "the primary's clock steps 3 minutes ahead, then back",
             _skew_primary(SKEW_MS), _unskew, view_change=True, clock=True),
    Scenario("clock-behind", "the primary's clock steps 3 minutes back, then right",
             _skew_primary(-SKEW_MS), _unskew, view_change=True, clock=True),
    Scenario("clock-split", "two clocks wrong at once (more than f): the primary's 3 "
                            "minutes ahead, the next one's 3 minutes behind",
             _skew_two, _unskew, progress=False, view_change=True, clock=True),
]}


# ---- running one ------------------------------------------------------------------------

async def run_scenario(scenario: Scenario, seconds: float = 15.0, seed: int | None = None,
                       clients: int = CLIENTS, keep: bool = False,
                       root: Path | None = None, log=None) -> Outcome:
    log = log or (lambda text: None)
    seed = random.randrange(1 << 32) if seed is None else seed
    made = root is None
    root = Path(tempfile.mkdtemp(prefix=f"faultnet-{scenario.name}-")) if made else root
    outcome = Outcome(scenario.name, seconds, folder=str(root / "net"))
    outcome.notes["seed"] = seed
    run = Run(root / "net", seed, clients, scenario.through_proxy, scenario.clock)
    try:
        async with asyncio.timeout(seconds + SCENARIO_OVERHEAD_S):
            await _run(scenario, run, seconds, outcome, log)
    except TimeoutError:
        outcome.checks.append(Check("the scenario ran to the end", False,
                                    f"not done {SCENARIO_OVERHEAD_S:g} s after its fault"))
    except Exception as error:      # noqa: BLE001 - every failure is reported as a check
        outcome.checks.append(Check("the scenario ran to the end", False,
                                    f"{type(error).__name__}: {error}"[:2000]))
    finally:
        await run.close()
    if made and outcome.ok and not keep:
        shutil.rmtree(root, ignore_errors=True)
    return outcome


async def _run(scenario: Scenario, run: Run, seconds: float, outcome: Outcome, log) -> None:
    net = run.net
    await run.start()
    log(f"{scenario.name}: {len(run.names)} validators up in {run.root}")
    clients = run.clients
    clients.start()

    async def warm():
        return len(run.history.acked()) >= WARM_COMMITS
    await net.wait_for(f"{WARM_COMMITS} commits before the fault", warm, 60)
    view_before = await run.max_view()

    # the fault
    load_before = os.getloadavg()[0]
    fault_at = time.monotonic()
    if scenario.apply is not None:
        await scenario.apply(run)
    log(f"{scenario.name}: fault on {run.marks or ''}")
    if scenario.standstill:
        await asyncio.sleep(STILL_GRACE_S)      # part of the fault's duration
        still_from = await run.max_height()
        await asyncio.sleep(max(0.0, fault_at + seconds - time.monotonic()))
        still_to = await run.max_height()
        outcome.checks.append(Check(
            "no block committed while no side has a quorum", still_to == still_from,
            f"height {still_from} after {STILL_GRACE_S:g} s, {still_to} at the heal"))
    else:
        await asyncio.sleep(seconds)            # the fault lasts this long
    heal_at = time.monotonic()
    # the machine's 1-minute load average around the fault: figures vary with it
    outcome.notes["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]

    # the heal, and the first commit of a fresh transaction after it
    await run.stop_background()
    if scenario.heal is not None:
        await scenario.heal(run)
    if run.proxy is not None:
        await run.proxy.heal()
    healed_at = time.monotonic()
    log(f"{scenario.name}: healed")
    acked_at = await clients.probe(HEAL_TIMEOUT_S)
    if acked_at is not None:
        outcome.heal_to_commit_s = acked_at - healed_at
    outcome.checks.append(Check(
        "a fresh transaction commits after the heal", acked_at is not None,
        f"{outcome.heal_to_commit_s:.2f} s" if acked_at is not None else
        f"none acknowledged within {HEAL_TIMEOUT_S:g} s"))
    if acked_at is not None:
        await asyncio.sleep(RECOVER_S)          # the load goes on after the heal a while
    await clients.stop()

    # figures of the fault
    during = run.history.acked_between(fault_at, heal_at)
    outcome.committed = len(during)
    outcome.tx_per_s = len(during) / (heal_at - fault_at)
    latencies = [(tx.first_ack.answered - tx.first_sent) * 1000 for tx in during]
    outcome.p50_ms, outcome.p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    late_half = run.history.acked_between(fault_at + seconds / 2, heal_at)
    if scenario.progress:
        outcome.checks.append(Check("commits go on during the fault (its second half)",
                                    bool(late_half), f"{len(late_half)} acknowledged"))

    # everyone caught up, then stopped cleanly, then the stores
    try:
        top = await net.wait_caught_up(run.names, timeout_s=CATCH_UP_S)
        outcome.checks.append(Check("all caught up after the heal", True, f"height {top}"))
    except AssertionError as error:
        outcome.checks.append(Check("all caught up after the heal", False, str(error)[:3000]))
    view_after = await run.max_view()
    outcome.view_changes = view_after - view_before
    if scenario.view_change:
        outcome.checks.append(Check("the primary was replaced", outcome.view_changes >= 1,
                                    f"view {view_before} -> {view_after}"))
    alive = [n for n in run.names if net.processes[n].poll() is None]
    failures = [(n, e) for n in run.names
                for kind in ("validator_failed", "transport_failed")
                for e in net.log_events(n, kind)]
    outcome.checks.append(Check("every validator ran throughout",
                                len(alive) == 4 and not failures,
                                f"alive {alive}; failures {failures[:2]}" if failures or
                                len(alive) != 4 else "4 alive, no failure logged"))
    # every validator is correct here: whatever the network did, none may be accused
    accused = [(n, e.get("validator"), e.get("kind")) for n in run.names
               for e in net.log_events(n, "peer_fault")]
    shunned = [(n, e.get("peer")) for n in run.names for e in net.log_events(n, "link_down")
               if e.get("reason") == "shunned"]
    outcome.checks.append(Check("no correct validator accused of a fault",
                                not accused and not shunned,
                                f"peer_fault {accused[:3]}, shunned {shunned[:3]}"
                                if accused or shunned else "none"))
    exits = await stop_all(net)
    outcome.checks.append(Check("every validator stops cleanly on SIGTERM",
                                set(exits.values()) == {0}, f"exit codes {exits}"))
    ledgers = {n: read_ledger(run.root / n / "data") for n in run.names}
    bound_ms = node_config.load(run.root / run.names[0]).timing.max_clock_skew_ms
    outcome.checks += check_ledgers(run.history, ledgers, bytes.fromhex(net.genesis_hash),
                                    bound_ms)
    outcome.checks.append(await audit_all(run))
    outcome.notes.update(answers=dict(run.history.kinds), marks=dict(run.marks),
                         blocks=len(next(iter(ledgers.values()))),
                         views=f"{view_before}->{view_after}")
    if run.proxy is not None:
        outcome.notes["proxy"] = (await run.proxy.stats())["stats"]
        acked = len(run.history.acked())
        outcome.peer_bytes_per_tx = outcome.notes["proxy"]["bytes"] / max(1, acked)
    outcome.notes["view_changed_events"] = {
        n: len(net.log_events(n, "view_changed")) for n in run.names}
    # a link replaced while its old connection was still open at this end: what the
    # reorder scenario aims at
    outcome.notes["links"] = {kind: sum(len(net.log_events(n, kind)) for n in run.names)
                              for kind in ("link_up", "link_replaced", "link_idle")}


async def stop_all(net: Network, grace_s: float = 20.0) -> dict[str, int]:
    """SIGTERM to every validator, waiting for each to stop (killed after the grace);
    their exit codes (0: a clean stop)."""
    for process in net.processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in net.processes.values():
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)           # polling the exit, with a deadline
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return {name: process.returncode for name, process in net.processes.items()}


def read_ledger(data_dir: Path) -> list:
    store = ReadOnlyStore(data_dir)
    try:
        blocks, height = [], 1
        while True:
            chunk = store.blocks(height, MAX_LIST)
            if not chunk:
                return blocks
            blocks += chunk
            height = chunk[-1].height + 1
    finally:
        store.close()


async def audit_all(run: Run) -> Check:
    """`stadsmunt audit` of every validator's folder, pinned to the genesis hash."""
    failed = []
    for name in run.names:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ops.cli", "audit", str(run.root / name),
            "--genesis-hash", run.net.genesis_hash, "--jobs", "1", cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            failed.append(f"{name}: exit {process.returncode}: "
                          f"{(out + err).decode(errors='replace')[-400:]}")
    return Check("stadsmunt audit passes on every validator's folder", not failed,
                 "; ".join(failed) or "4 folders")
