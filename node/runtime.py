"""One validator as a running process: the asyncio shell around the pure core.

It owns the store, the door, the executor, the replica and its driver, and the transport.
Every input reaches the replica through consensus/driver.py (the order persist, send,
execute, acknowledge is written there once): peer frames, the gateway's submissions and a
tick every `tick_ms` that carries the wall clock in as a value. Executing happens inside
the driver, in this thread, so a block and its acknowledgement are never interleaved
with another input.

The gateway reaches the node only through `submit`, `wait`, `result`, `unexecuted`,
`status`, `listeners` and the read-only `store`: over the local link (node/link.py) from
gateway processes of their own, which read the store from LMDB themselves, or directly
when it is served in this process (tests, `[gateway] workers = 0`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass

import structlog

import chaincode
from chaincode import queries
from consensus import handover
from consensus.api import CommittedBatch, Fetch, StableCheckpoint
from consensus.digest import ZERO_HASH
from consensus.follower import Follower
from consensus.driver import Driver
from consensus.faults import BAD_CATCH_UP, Fault
from consensus.fetched import check_fetched
from consensus.messages import Forward
from consensus.replica import Replica
from node import genesis as genesis_file, keys
from node import peering, sets
from node.admission import OVER_SHARE, Admission, AdmissionLimits, forwarded, store_lookup
from node.block import BlockRecord, RulesMissing, block_hash, rules_for
from node.config import CONFIG_NAME, ConfigError, NodeConfig, runtime_limits
from node.config import load as load_config
from node.membership import Membership
from node.envelope import OK, Door, Verdict
from node.evidence import Evidence
from node.executor import open_ledger
from node.fetchserve import FetchBudget, FetchLimits
from node import history, setproof, stateload, syncwire
from node.snapshots import Snapshots
from node.statesync import StateSync
from node.ratelimit import SampledLog
from node.readstore import decided
from node.store import ConsensusStorage
from node.transport import MAX_ROSTER, PeerInputError, Transport
from node.waiters import wait_woken
from protocol.envelope import envelope_tx_id

log = structlog.get_logger("stadsmunt.node")

# Admission: a node takes new requests only while the pool holds at most this many
# seconds of work at the rate blocks are executing now. A deeper queue only adds latency,
# and a request that waits long makes the backups suspect a healthy primary (the
# censorship bound in consensus), so past it a submission is answered `overloaded`.
# Pipelined blocks share the CPU and commit late in a bunch, so the queue must stay well
# under the request timeout, the time a backup waits for a commit ([timing]
# request_timeout_ticks x tick_ms: 1.2 s by default). Its floors (an idle node, this
# node's own share) are node/config.py's ADMISSION_MIN_POOL and ADMISSION_MIN_OWN_SHARE.
QUEUE_SECONDS = 1.0
RATE_WINDOW_S = 0.5         # the commit rate is re-estimated this often

# transactions refused before ordering (admission: not an active member), remembered so
# that asking for one answers its refusal; the oldest forgotten first
REFUSED_KEPT = 100_000
POLICY_CHECK_S = 24 * 3600.0   # how often a missing coming year's policy is logged
FETCH_LOG_INTERVAL_S = 10.0   # refused catch-up requests and answers: lines per kind, interval
SHUN_S, SHUN_MAX_S = 2.0, 60.0  # a faulty partner's link is dropped this long, doubling
# state sync questions per peer: a joiner keeps statesync.IN_FLIGHT chunks asked
SYNC_LIMITS = FetchLimits(rate_per_s=50.0, burst=32, repeat_s=0.0)
HISTORY_RETRY_S = 5.0           # a history stretch not answered in this is asked again
HISTORY_IDLE_S = 1.0            # after an answer that brought nothing new


class StartError(Exception):
    """The validator cannot start: a wrong key, a foreign data folder, a bad genesis."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """The node's answer to one envelope: `pending` (ordered soon), `known` (executed or
    already waiting), `overloaded` (queue full: retry later), `over_share` (its signer
    submits faster than its share: retry after `retry_after_s`), admission's refusal
    (`unknown_member`, `revoked`, `frozen`: not ordered), or a door code."""
    tx_id: str | None
    status: str
    reason: str = ""
    retry_after_s: int = 0


class _Crypto:
    def __init__(self, keypair: keys.Keypair, validator_keys: list[bytes]):
        self.keypair, self.keys = keypair, validator_keys

    def sign(self, message: bytes) -> bytes:
        return self.keypair.sign(message)

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        return 0 <= replica < len(self.keys) and keys.verify(self.keys[replica], message,
                                                             signature)


class Validator:
    def __init__(self, config: NodeConfig, join: bool = False, state_sync: bool = False):
        """`join`: this validator's key may be in no validator set the chain names yet;
        it follows the chain (consensus/follower.py) until a set with it takes over.
        `state_sync`: `sync_state` may load a snapshot's state before `start`."""
        self.config = config
        try:
            self.genesis = genesis_file.load(config.genesis_file)
            self.keypair = keys.read_key_file(config.key_file)
        except (genesis_file.GenesisError, keys.KeyFileError) as error:
            raise StartError(str(error)) from None
        self.chain = self.genesis.chain
        self.genesis_hash = self.genesis.hash()
        # every limit of the parts below, derived from the settings in one place
        try:
            self.runtime_limits = runtime_limits(self.genesis, config)
        except ConfigError as error:
            raise StartError(f"{config.folder / CONFIG_NAME}: {error}") from None
        self.consensus_config = self.runtime_limits.consensus
        self.door = Door(self.chain, config.limits.verified_cache)
        try:
            self.executor = open_ledger(config.data_dir, self.genesis, self.door)
        except Exception as error:
            raise StartError(f"{config.data_dir}: {error}") from None
        self.store = self.executor.store
        if stateload.in_progress(self.store) is not None:
            if not state_sync:
                self.store.close()
                raise StartError(f"{config.data_dir}: a state sync stopped half way; run "
                                 "`stadsmunt node run --state-sync` to sync again")
            stateload.reset(self.store, self.genesis)   # its state was neither: start afresh
        self.snapshots = Snapshots(self.store, self.genesis.checkpoint_interval)
        self._syncer: StateSync | None = None
        self._history_answers: asyncio.Queue = asyncio.Queue(maxsize=16)
        self._history_task: asyncio.Task | None = None
        self.admission = Admission(store_lookup(self.store), _monotonic_ms, AdmissionLimits(
            rate_per_s=config.limits.signer_rate_per_s, burst=config.limits.signer_burst))
        self._refused: OrderedDict[str, str] = OrderedDict()   # tx id -> admission's code
        # envelopes admission refused since this process started, by code (/metrics)
        self.refusals = dict.fromkeys(("unknown_member", "revoked", "frozen", OVER_SHARE), 0)
        self.storage = storage = ConsensusStorage(self.store)
        height, head_hash = self.store.head()
        self.membership = Membership(self.genesis, self.keypair.public)
        self.membership.learn(self.store, height)
        own = self.keypair.public
        if own not in self.membership.names:
            if not join:
                raise StartError(f"{config.key_file}: this key is not a validator of the "
                                 "genesis nor of any validator set the chain names (a "
                                 "validator that joins runs `stadsmunt node run --join`)")
            self.membership.add(own, config.name)
        elif self.membership.names[own] != config.name:
            raise StartError(f"the key is validator {self.membership.names[own]!r}, the "
                             f"settings say {config.name!r}")
        in_force, pending = self._make_replica()
        self.peer_addresses = dict(config.peers)
        self.peer_addresses[config.name] = config.peer_listen
        needed = [m.name for m in in_force.members + (pending.members if pending else ())]
        missing = [n for n in dict.fromkeys(needed) if n not in self.peer_addresses]
        if missing:
            raise StartError(f"[peers] lacks the address of {', '.join(missing)}")
        roster = self.membership.roster()
        placed = [(k, n) for k, n in roster if n in self.peer_addresses]
        self.names = [n for _, n in placed]
        self.transport = Transport(
            [k for k, _ in placed].index(own), self.keypair.seed,
            [(k, *self.peer_addresses[n]) for k, n in placed],
            self.genesis_hash, self._on_frame, self.runtime_limits.transport,
            names=self.names)
        for key, name in roster:
            if name not in self.peer_addresses:
                self._add_peer(key)
        self.transport.admit(self._audience() | {own})
        self._waiters: dict[str, list[asyncio.Future]] = {}
        # submitted here and not executed yet; bounded like the replica's pool
        self._in_flight: OrderedDict[str, None] = OrderedDict()
        self._ticker: asyncio.Task | None = None
        self._links_started = False
        self._failure: BaseException | None = None     # the first failure (`fail`)
        self._failed = asyncio.Event()
        # called once, synchronously, by `fail`: each stops an input that is not the
        # validator's own (node/link.py's gateway socket)
        self.on_failure: list = []
        self.fetch_budget = FetchBudget(MAX_ROSTER, time.monotonic())
        self.sync_budget = FetchBudget(MAX_ROSTER, time.monotonic(), SYNC_LIMITS)
        self.evidence = Evidence(config.data_dir, self.names)
        self._shun_s: dict[int, float] = {}     # peer -> how long its last shun lasted
        self._fetch_log: SampledLog | None = None
        self.view_changes = 0
        # called with each executed batch, after its block is written (the gateway's live
        # event stream and metrics); a listener must not raise
        self.listeners: list = []
        self.committed_txs = 0
        self.started_ms = 0
        self._rate = 0.0                        # executed transactions a second, smoothed
        self._rate_mark = (time.monotonic(), 0)

    def _make_replica(self):
        """The replica (or follower) and its driver for the store's head: of the set in
        force after it, knowing the pending one. Returns (in force, pending)."""
        height, head_hash = self.store.head()
        own = self.keypair.public
        storage = self.storage
        in_force = sets.in_force(self.genesis, self.store, height + 1)
        pending = sets.pending(self.store, height)
        if pending is not None and pending.first_height == in_force.first_height:
            pending = None      # stopped at the last height of the old set: that one is over
        self.consensus_config = dataclasses.replace(
            self.runtime_limits.consensus, validators=in_force.keys,
            first_height=in_force.first_height, base_hash=self._block_hash(
                in_force.first_height - 1))
        # what it executed last, so that a restarted replica neither takes those requests
        # into its pool again nor accepts a block time before the chain's clock
        recent = self.store.recent_tx_ids(self.runtime_limits.recent_ids)
        next_set = None if pending is None else pending.plain()
        self._pending_seen = next_set
        crypto = _Crypto(self.keypair, list(in_force.keys))
        if own in in_force.keys:
            self.replica = Replica(self.consensus_config, in_force.keys.index(own), crypto,
                                   self.door.inspect, storage.items(), height, head_hash,
                                   self.store.block_time(), ordered_keys=recent,
                                   next_set=next_set)
        else:
            self.replica = Follower(self.consensus_config, crypto, height, head_hash,
                                    self.store.block_time(), next_set=next_set,
                                    ordered_keys=recent)
        # a driver step that raises stops every input at once (fail-stop, `fail`)
        self.driver = Driver(self.replica, storage, self, self, on_failure=self.fail,
                             successor=self._successor)
        return in_force, pending

    # ---- lifecycle ----------------------------------------------------------------------

    def _warn_of_policy(self) -> None:
        """From 1 November, a line a day while the coming year has no cap policy."""
        coming = queries.coming_year_unset(self.store, _now_ms())
        if coming is not None:
            log.warning("cap_policy_missing", year=coming,
                        action="the partners must set one (policy.set) before 1 January, "
                               "or this year's carries over")

    async def sync_state(self, behind: int) -> bool:
        """Before `start`: loads a stable checkpoint's state from the peers when one is
        more than `behind` blocks above the head (node/statesync.py), then rebuilds the
        replica on it. True when it did."""
        await self._start_links()
        self._syncer = StateSync(self.genesis, self.store, _SyncLinks(self), behind)
        try:
            synced = await self._syncer.run()
        finally:
            self._syncer = None
        if synced:
            self.membership.learn(self.store, self.store.head()[0])
            self._make_replica()
            self._learn_sets()
        return synced

    async def _start_links(self) -> None:
        if not self._links_started:
            self._links_started = True
            await self.transport.start()

    async def start(self) -> None:
        self.started_ms = _now_ms()
        self._policy_check_at = 0.0     # at the first tick, then every POLICY_CHECK_S
        await self._start_links()
        self._ticker = asyncio.create_task(self._tick_loop())
        if not history.status(self.store)["complete"]:
            self._history_task = asyncio.create_task(self._history_loop())
        log.info("validator_started", name=self.config.name, index=self.replica.me,
                 height=self.store.head()[0], view=self.replica.view,
                 validators=[self.membership.name(k) for k in self.consensus_config.validators],
                 since=self.consensus_config.first_height)

    # ---- validator sets ---------------------------------------------------------------

    def _block_hash(self, height: int) -> bytes:
        if height == 0:
            return ZERO_HASH
        record = self.store.block(height)
        if record is None:      # below a synced state: its manifest said
            known = stateload.base_hash(self.store, height)
            assert known is not None, f"block {height}, the base of the set in force, is missing"
            return known
        return record.hash

    def _audience(self) -> set[bytes]:
        """The keys that hear this validator: the set in force and the pending one."""
        keys = set(self.replica.config.validators)
        if self._pending_seen is not None:
            keys |= set(self._pending_seen.keys)
        return keys

    def _add_peer(self, key: bytes) -> int:
        name = self.membership.name(key)
        index = self.transport.add_peer(key, self.peer_addresses.get(name), name)
        while len(self.names) <= index:
            self.names.append(name)
        self.names[index] = name
        return index

    def _learn_sets(self, pending=None) -> None:
        """After a block that may have scheduled a set: peers it names are added to the
        transport (their addresses from node.toml's [peers], read again), and only the
        set in force and the pending one may hold links."""
        height = self.store.head()[0]
        fresh = self.membership.learn(self.store, height)
        if fresh:
            try:
                self.peer_addresses = {**dict(load_config(self.config.folder).peers),
                                       self.config.name: self.config.peer_listen}
            except (ConfigError, OSError) as error:
                log.warning("peers_not_reread", error=str(error))
            for key in fresh:
                self._add_peer(key)
                if self.membership.name(key) not in self.peer_addresses:
                    log.warning("validator_address_missing", peer=self.membership.name(key),
                                action="add its address to [peers] in node.toml")
        self.transport.admit(self._audience() | {self.keypair.public})

    def _successor(self, old):
        """The next set's replica, when the old one has run its set's last height
        (consensus/handover.py); the transport then admits the new set and the pending
        one only: a removed validator's link is closed."""
        keys = list(old.next_set.keys)
        self._take_faults(old)      # what the old replica saw, before it goes
        new = handover.successor(old, self.keypair.public, _Crypto(self.keypair, keys),
                                 self.door.inspect, self.storage.items())
        self.replica = new
        self.consensus_config = new.config
        self._pending_seen = None
        self._learn_sets()
        log.info("validator_set_changed", since=new.config.first_height,
                 validators=[self.membership.name(k) for k in keys],
                 index=new.me, follower=new.me is None)
        return new

    def _place(self, peer: int) -> int | None:
        """A transport peer's place in the set the replica serves, if it is a member."""
        try:
            return self.replica.config.validators.index(self.transport.key_of(peer))
        except ValueError:
            return None

    def _peer(self, place: int) -> int | None:
        """The transport index of the member at `place` in the set the replica serves."""
        return self.transport.index_of(self.replica.config.validators[place])

    def _set_at(self, height: int):
        """The config and crypto of the validator set in force at `height`, for checking
        a fetched block, or None when the blocks run so far cannot tell yet (a change
        enacted in a block not yet run takes effect above that block + M) or when it
        is not the set the replica serves (the blocks of the next set are fetched again
        once the replica has handed over to it)."""
        head = self.store.head()[0]
        if height > head + self.consensus_config.switch_margin + 1:
            return None
        named = sets.in_force(self.genesis, self.store, height)
        if named.first_height != self.consensus_config.first_height:
            return None     # the next set's: fetched again once the replica has switched
        return self.consensus_config, self.replica.crypto

    def rules_missing(self) -> RulesMissing | None:
        """Why this build cannot execute the next height, if the rules version in force
        there is not one it runs (node/block.rules_for); None when it can."""
        try:
            rules_for(self.genesis, self.store, self.store.head()[0] + 1)
        except RulesMissing as missing:
            return missing
        return None

    def fail(self, error: BaseException) -> None:
        """Fail-stop, at once and synchronously: from here on no peer frame, tick or
        gateway request reaches the replica (its state may be ahead of the ledger: a
        driver step raised half way, consensus/driver.py), and `failure()` returns
        `error`. Called by the driver as its step fails, by `failure()` when the ticker or
        the links die by themselves, and by `node run` when another part fails (the
        gateway supervisor). Only the first failure counts."""
        if self._failure is not None:
            return
        self._failure = error
        self.transport.halt()
        if self._ticker is not None and self._ticker is not asyncio.current_task():
            self._ticker.cancel()
        for halt in self.on_failure:
            halt()
        self._failed.set()

    async def failure(self) -> BaseException:
        """Wait until a part of the validator fails: a driver step (a broken invariant or
        a ledger error, whichever input ran it), the ticker task or the links (a bug of
        their own), or whatever called `fail`. Returns the first failure's exception,
        every input already stopped; the caller ends the process with a non-zero exit
        (fail-stop: see consensus/driver.py), never goes on."""
        links = asyncio.ensure_future(self.transport.wait_failure())
        failed = asyncio.ensure_future(self._failed.wait())
        watched = {links, failed} | ({self._ticker} if self._ticker is not None else set())
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            links.cancel()
            failed.cancel()
        if self._failure is None:       # the ticker or the links ended by themselves
            task = next(t for t in done if t is not failed)
            if task.cancelled():
                error: BaseException = asyncio.CancelledError("the ticker was cancelled")
            else:
                error = task.exception() or RuntimeError("the ticker ended")
            self.fail(error)
        return self._failure

    async def stop(self) -> None:
        for task in (self._ticker, self._history_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self.snapshots.close()
        await self.transport.stop()
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self.store.close()
        log.info("validator_stopped", name=self.config.name)

    async def _tick_loop(self) -> None:
        period = self.config.timing.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            if next_at < loop.time() - period:
                # the loop was busy (CPU, disk): ticks it missed are not fired in a burst
                # afterwards, so a starved node's timers run slow rather than all expiring
                # at once before it has read what its peers sent meanwhile
                next_at = loop.time()
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self._guarded(self.driver.tick, _now_ms())
            if loop.time() >= self._policy_check_at:
                self._policy_check_at = loop.time() + POLICY_CHECK_S
                self._warn_of_policy()

    def _guarded(self, step, *args) -> None:
        replica, view = self.replica, self.replica.view
        step(*args)
        if self.replica is replica and replica.me is not None and replica.view != view:
            self.view_changes += 1
            replica = self.replica
            oldest = replica.requests.oldest_arrival()
            # what the timers saw, so a view change under load can be explained
            primary = self.membership.name(replica.config.validators[replica.primary])
            log.info("view_changed", view=replica.view, primary=primary,
                     step=getattr(step, "__name__", "?"), pending=replica.pending_count,
                     ticks_since_progress=replica.ticks - replica.last_progress_tick,
                     oldest_wait_ticks=None if oldest is None else replica.ticks - oldest,
                     height=replica.committed_height)
        self._take_faults(self.replica)

    def _take_faults(self, replica) -> None:
        if replica.faults:
            # the replica names peers by place in its set; evidence and links by peer
            self._on_faults([dataclasses.replace(f, peer=self._peer(f.peer))
                             for f in replica.take_faults()
                             if self._peer(f.peer) is not None])

    def _on_faults(self, faults) -> None:
        """Partners' faults the replica saw (consensus/faults.py): kept as evidence,
        counted and logged by name, and the partner's link dropped for a while (SHUN_S,
        doubling with each fault to SHUN_MAX_S): the rest of a frame of bad votes is not
        even read, and the protocol goes on with the others."""
        now = _now_ms()
        for fault in faults:
            self.evidence.record(fault, now)
        for peer in {fault.peer for fault in faults}:
            seconds = self._shun_s[peer] = min(2 * self._shun_s.get(peer, SHUN_S / 2),
                                               SHUN_MAX_S)
            self.transport.shun(peer, seconds)

    # ---- the gateway's interface --------------------------------------------------------

    def submit(self, envelopes: list[bytes], checked: bool = False) -> list[Submitted]:
        """One answer per envelope. Only as many as the node may take go through the door;
        once it is full the rest are answered `overloaded` (or `known`) by their id alone,
        unopened: a busy node spends no signature check, decoding or cache entry on what
        it refuses anyway, and the client sends them again later. `checked`: a gateway
        process of this validator has verified the signatures (node/link.py), so the door
        checks all but those (Door.admit)."""
        admit = functools.partial(self.door.admit, checked=checked)
        # the pool counts what every gateway submitted, but the others' share arrives late
        # (forwarded), so each node also keeps its own share of the limit
        limit = self.admission_limit()
        own = max(self.runtime_limits.admission_min_own_share,
                  limit // len(self.consensus_config.validators))
        room = min(limit - self.replica.pending_count, own - len(self._in_flight))
        answers: list[Submitted | None] = [None] * len(envelopes)
        fresh, where = [], []
        start = 0
        while start < len(envelopes) and len(fresh) < room:
            end = start + room - len(fresh)    # refused or known ones leave room for more
            self._admit(admit, envelopes, start, end, answers, fresh, where)
            start = end
        if start < len(envelopes):
            self._full(admit, envelopes, start, answers)
        if fresh and self.replica.me is None:
            # not in the set in force: it orders nothing (a follower); the client sends
            # to another validator's gateway, or again once this one's set takes over
            for i in where:
                answers[i] = Submitted(answers[i].tx_id, "overloaded",
                                       "this validator is not in the validator set in force")
            fresh = []
        if fresh:
            accepted = self.driver.submit(fresh)
            pool = self.replica.requests
            for i, request, ok in zip(where, fresh, accepted):
                tx_id = answers[i].tx_id
                if ok:
                    answers[i] = Submitted(tx_id, "pending")
                    self._in_flight[tx_id] = None
                elif pool.knows(request.key):
                    # already waiting there, or ordered moments ago
                    answers[i] = Submitted(tx_id, "known")
                    self._in_flight[tx_id] = None
                else:
                    # no room: the pool is full, or this signer holds its share of it
                    # (consensus/requests.py); the client sends it again later
                    answers[i] = Submitted(tx_id, "overloaded")
            while len(self._in_flight) > self.runtime_limits.in_flight_limit:
                self._in_flight.popitem(last=False)
        return answers

    def _admit(self, admit, envelopes, start: int, end: int, answers: list, fresh: list,
               where: list) -> None:
        verdicts: list[Verdict] = admit(envelopes[start:end])
        ok_ids = [bytes.fromhex(v.tx_id) for v in verdicts if v.code == OK]
        executed = iter(self.store.executed(ok_ids))
        for i, verdict in enumerate(verdicts, start):
            if verdict.code != OK:
                answers[i] = Submitted(verdict.tx_id, verdict.code, verdict.reason)
            elif next(executed) or verdict.tx_id in self._in_flight:
                # executed, or waiting here already: a full queue must not refuse it
                answers[i] = Submitted(verdict.tx_id, "known")
            else:
                admitted = self.admission.admit(verdict.opened.tx)
                if admitted.admitted:
                    answers[i] = Submitted(verdict.tx_id, "taken")   # until the pool answers
                    fresh.append(verdict.opened.request)
                    where.append(i)
                    continue
                answers[i] = Submitted(verdict.tx_id, admitted.code,
                                       retry_after_s=admitted.retry_after_s)
                self.refusals[admitted.code] += 1
                if admitted.code != OVER_SHARE:
                    self._refused[verdict.tx_id] = admitted.code
                    self._refused.move_to_end(verdict.tx_id)
                    if len(self._refused) > REFUSED_KEPT:
                        self._refused.popitem(last=False)

    def _full(self, admit, envelopes, start: int, answers: list) -> None:
        ids = [envelope_tx_id(e) for e in envelopes[start:]]
        raw = [bytes.fromhex(t) for t in ids if t is not None]
        executed = iter(self.store.executed(raw))
        for i, tx_id in enumerate(ids, start):
            if tx_id is None:       # not in the usual form: the door says what it is
                verdict = admit([envelopes[i]])[0]
                if verdict.code != OK:
                    answers[i] = Submitted(verdict.tx_id, verdict.code, verdict.reason)
                    continue
                tx_id = verdict.tx_id
                known = self.store.executed([bytes.fromhex(tx_id)])[0]
            else:
                known = next(executed)
            known = known or tx_id in self._in_flight
            answers[i] = Submitted(tx_id, "known" if known else "overloaded")

    def admission_limit(self) -> int:
        """How many requests may wait here: QUEUE_SECONDS of the current commit rate,
        never fewer than admission_min_pool (an idle node must take a burst's first
        batch) and never more than the configured pool."""
        now = time.monotonic()
        at, count = self._rate_mark
        if now - at >= RATE_WINDOW_S:
            measured = (self.committed_txs - count) / (now - at)
            self._rate = measured if measured > self._rate else \
                (self._rate + measured) / 2      # up at once, down gently
            self._rate_mark = (now, self.committed_txs)
        floor = self.runtime_limits.admission_min_pool
        return min(self.consensus_config.pending_limit,
                   max(floor, int(self._rate * QUEUE_SECONDS)))

    def unexecuted(self, tx_id: str) -> str:
        """What this node knows of a transaction it has not executed: `pending` (taken
        here, waiting to be ordered), the code admission refused it with, or ""."""
        if tx_id in self._in_flight:
            return "pending"
        return self._refused.get(tx_id, "")

    def result(self, tx_id: str) -> dict | None:
        """The decided result of a transaction, or None while it is not executed."""
        return decided(self.store, tx_id)

    async def wait(self, tx_id: str, timeout_s: float) -> dict | None:
        found = self.result(tx_id)
        if found is not None or timeout_s <= 0:
            return found
        await wait_woken(self._waiters, tx_id, timeout_s)
        return self.result(tx_id)

    def status(self) -> dict:
        height, head = self.store.head()
        record = self.store.block(height) if height else None
        connected = self.transport.connected()
        return {
            "chain": self.chain, "genesis": self.genesis_hash.hex(), "node": self.config.name,
            "height": height, "head": head.hex(), "view": self.replica.view,
            "primary": self.membership.name(
                self.consensus_config.validators[self.replica.primary]),
            "validators": [{"name": self.membership.name(k), "key": k.hex(),
                            "connected": self._linked(k, connected)}
                           for k in self.consensus_config.validators],
            "validator_set": self.set_status(),
            "time": record.time_ms if record else None,
            "pending": self.replica.pending_count,
            # partners' faults seen since this process started (node/evidence.py)
            "faults": {name: dict(kinds) for name, kinds in self.evidence.counts.items()},
            "quorum": self.quorum_status(connected),
            "rules": self.rules_status(height),
            "history": history.status(self.store),
        }

    def _linked(self, key: bytes, connected: set[int]) -> bool:
        return key == self.keypair.public or self.transport.index_of(key) in connected

    def set_status(self) -> dict:
        """The validator set in force at the head (`since`: its first height), this
        validator's part in it, and the pending set with its `from` (docs/api.md)."""
        replica, name = self.replica, self.membership.name
        pending = replica.next_set
        return {"since": self.consensus_config.first_height,
                "validators": [name(k) for k in self.consensus_config.validators],
                "member": replica.me is not None,
                "pending": None if pending is None else {
                    "from": pending.first_height,
                    "validators": [name(k) for k in pending.keys]}}

    def rules_status(self, height: int) -> dict:
        """The rules version in force at the head (`since`: its first height), any pending
        activation, and the versions this build runs (docs/api.md, "Status")."""
        version, since = chaincode.rules_in_force(self.store, height, self.genesis.rules_version)
        due = chaincode.pending_rules(self.store, height)
        return {"version": version, "since": since,
                "pending": None if due is None else {"version": due[0], "height": due[1]},
                "runs": list(chaincode.rules_versions())}

    def quorum_status(self, connected: set[int] | None = None) -> dict:
        """Whether this validator can take part in deciding anything: `needed` validators
        (a quorum, n - f) must be linked, counting itself; `linked` are (itself and its
        peers with a live link), `missing` names the validators it has no link with, in
        genesis order, and `ok` says linked >= needed. Without a quorum nothing submitted
        here is decided until enough links come back (it waits in the pool meanwhile)."""
        if connected is None:
            connected = self.transport.connected()
        members = self.consensus_config.validators
        linked = [self._linked(k, connected) for k in members]
        needed = self.consensus_config.quorum
        count = sum(linked)
        return {"needed": needed, "linked": count, "ok": count >= needed,
                "missing": [self.membership.name(k) for k, up in zip(members, linked)
                            if not up]}

    # ---- consensus.api.Network ----------------------------------------------------------

    def send(self, to: int | None, message: object) -> None:
        frame = peering.consensus_frame(message)
        if to is None:
            for key in self._audience() - {self.keypair.public}:
                peer = self.transport.index_of(key)
                if peer is not None:
                    self.transport.send(peer, frame)
        else:
            peer = self._peer(to)
            if peer is not None:
                self.transport.send(peer, frame)

    def fetch(self, request: Fetch) -> None:
        """Asks the first of the named members (places in the set the replica serves)
        for the blocks; any member when none is named. The replica names another one
        first with each request (consensus/catchup.py): turning them here as well undid
        that, and with two named the same one was asked every time."""
        members = self.consensus_config.validators
        places = [p for p in request.peers if 0 <= p < len(members)] or range(len(members))
        peers = [self._peer(p) for p in places if members[p] != self.keypair.public]
        peers = [p for p in peers if p is not None]
        if not peers:
            return
        peer = peers[0]
        to = min(request.to_height,
                 request.from_height + self.consensus_config.fetch_max_blocks - 1)
        self.transport.send(peer, peering.fetch_frame(request.from_height, to))

    # ---- consensus.api.Ledger -----------------------------------------------------------

    def execute(self, batch: CommittedBatch) -> bytes:
        block_hash = self.executor.execute(batch)
        if batch.height % self.genesis.checkpoint_interval == 0:
            after = sets.in_force(self.genesis, self.store, batch.height + 1)
            self.snapshots.executed(batch.height, self._block_hash(after.first_height - 1))
        self.committed_txs += len(batch.requests)
        in_flight, waiters = self._in_flight, self._waiters
        if in_flight or waiters:
            # both are keyed by the hex tx id the gateway knows; request.key is raw bytes
            for request in batch.requests:
                tx_id = request.key.hex()
                in_flight.pop(tx_id, None)
                for future in waiters.pop(tx_id, ()) if waiters else ():
                    if not future.done():
                        future.set_result(None)
        for listener in self.listeners:
            listener(batch)
        return block_hash

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None:
        self.executor.keep_checkpoint(checkpoint)
        self.snapshots.stable(checkpoint.height)

    def next_set(self):
        """The executor's pending set after the block just run; when it is new, the
        validators it names are added to the transport and admitted."""
        found = self.executor.next_set()
        if found != self._pending_seen:
            self._pending_seen = found
            self._learn_sets(found)
        return found

    # ---- frames from peers --------------------------------------------------------------

    def _on_frame(self, peer: int, data: bytes) -> None:
        try:
            kind, payload = peering.parse(data, self.config.limits.max_frame_bytes)
        except peering.PeerFrameError as error:
            # the peer's fault: the transport counts it and logs it sampled, the link stays
            raise PeerInputError(f"{self.names[peer]}: {error}") from None
        if kind == peering.CONSENSUS:
            if self._syncer is not None:
                return          # its replica is rebuilt on the synced state
            if type(payload) is Forward:
                # a peer's requests pass this node's admission too: junk from keys
                # that are not members, forwarded by a faulty peer, stops here
                kept = forwarded(self.admission, self.door, payload.payloads,
                                 self.store.executed)
                if not kept:
                    return
                payload = Forward(kept)
            place = self._place(peer)
            if place is not None:       # else not a member of the set the replica serves
                self._guarded(self.driver.receive, place, payload)
        elif kind == peering.FETCH:
            self._serve_fetch(peer, *payload)
        elif kind == peering.SYNC_ASK:
            self._serve_sync(peer, payload)
        elif kind == peering.SYNC_ANSWER:
            if self._syncer is not None:
                self._syncer.on_answer(peer, payload)
            elif payload[0] == "history" and not self._history_answers.full():
                self._history_answers.put_nowait((peer, payload[1]))
        elif self._syncer is None:
            self._apply_blocks(peer, payload)

    def _serve_fetch(self, peer: int, from_height: int, to_height: int) -> None:
        """A peer's catch-up request, within its budget (node/fetchserve.py): the stored
        bytes of the blocks it asks for, at most fetch_max_blocks and fetch_answer_bytes
        (half a frame; at least the first block, which always fits a frame)."""
        now = time.monotonic()
        refused = self.fetch_budget.allow(peer, from_height, to_height, now)
        if refused is not None:
            self._fetch_note("fetch_refused", {"peer": self.names[peer], "reason": refused})
            return
        count = min(to_height - from_height + 1, self.consensus_config.fetch_max_blocks)
        records = self.store.raw_blocks(from_height, count,
                                        self.runtime_limits.fetch_answer_bytes)
        if records:
            self.transport.send(peer, peering.blocks_frame(records))

    def _serve_sync(self, peer: int, question: tuple) -> None:
        """A peer's state sync question (node/syncwire.py), within its budget: offers of
        the stable snapshots held, a manifest (computed once, in slices), a chunk, or a
        stretch of history. What this validator does not hold is not answered."""
        what, *args = question
        refused = self.sync_budget.allow(peer, 0, 0, time.monotonic())
        if refused is not None:
            self._fetch_note("sync_refused", {"peer": self.names[peer], "reason": refused})
            return
        if what == "offers":
            self.transport.send(peer, syncwire.answer("offers", *self._offers()))
        elif what == "manifest":
            snapshot = self.snapshots.get(args[0])
            if snapshot is not None:
                asyncio.ensure_future(self._send_manifest(peer, snapshot))
        elif what == "chunk":
            snapshot = self.snapshots.get(args[0])
            raw = None if snapshot is None else snapshot.chunk(args[1])
            if raw is not None:
                self.transport.send(peer, syncwire.answer("chunk", args[0], args[1], raw))
        else:
            items = history.serve(self.store, args[0], args[1],
                                  self.runtime_limits.fetch_answer_bytes)
            self.transport.send(peer, syncwire.answer("history", items))

    def _offers(self) -> tuple[list, list]:
        offered = []
        for height in self.snapshots.offered():
            found = self.store.checkpoint(height)
            if found is not None:
                offered.append([height, found[0], [list(c) for c in found[1]], found[2]])
        if not offered:
            return [], []
        proof = setproof.build(self.genesis, self.store, offered[0][0] + 1,
                               stateload.kept_hops(self.store))
        if proof is None:
            log.warning("state_sync_no_proof", height=offered[0][0],
                        reason="no checkpoint kept here names a validator set change")
            return [], []
        return offered, setproof.encode(proof)

    async def _send_manifest(self, peer: int, snapshot) -> None:
        try:
            manifest = await snapshot.manifest()
        except RuntimeError as error:      # dropped meanwhile, or too large a state
            log.warning("manifest_not_served", height=snapshot.height, error=str(error))
            return
        self.transport.send(peer, syncwire.answer("manifest", snapshot.height,
                                                  manifest.encode()))

    async def _history_loop(self) -> None:
        """Fetches the history below a synced state from the members of the set in force,
        in turn, then indexes it (node/history.py); the status says how far it is."""
        turn = 0
        while True:
            stretch = history.ask(self.store)
            if stretch is None:
                break
            peers = [p for p in (self._peer(i) for i in range(self.consensus_config.n))
                     if p is not None and p in self.transport.connected()]
            if not peers:
                await asyncio.sleep(HISTORY_RETRY_S)
                continue
            turn += 1
            peer = peers[turn % len(peers)]
            self.transport.send(peer, syncwire.ask("history", *stretch))
            try:
                answered_by, items = await asyncio.wait_for(self._history_answers.get(),
                                                            HISTORY_RETRY_S)
            except asyncio.TimeoutError:
                continue
            try:
                written = history.apply(self.store, items)
            except history.HistoryRefused as refused:
                written = 0
                self._fetch_note("bad_history", {"peer": self.names[answered_by]},
                                 height=refused.height, reason=refused.reason)
            if not written:
                await asyncio.sleep(HISTORY_IDLE_S)     # the peers lack it too: not a spin
        while history.reindex_step(self.store):
            await asyncio.sleep(0)      # a stretch at a time, between the validator's work
        log.info("history_complete", height=self.store.head()[0])

    def _fetch_note(self, event: str, kind: dict, **details) -> None:
        """Catch-up requests refused and answers refused, logged as SampledLog does: a
        peer that repeats them costs two lines per kind and interval, not one each."""
        now = time.monotonic()
        if self._fetch_log is None:
            self._fetch_log = SampledLog(FETCH_LOG_INTERVAL_S, now, me=self.config.name)
        self._fetch_log.note(now, event, kind, **details)

    def _apply_blocks(self, peer: int, records: list[BlockRecord]) -> None:
        """A peer's catch-up answer: the blocks that follow this node's committed height,
        in order, each checked before the driver sees it (consensus/fetched.py, the code
        the simulator runs too). Its envelopes must pass the door and hash to its batch
        digest, a quorum's commits must sign that digest in this network's domain (so no
        block of another genesis counts, even one signed by the same keys under the same
        chain id), its hash must cover its header, and the blocks must chain: the first
        to this node's head when that is the block before, each next one to the one
        before it. The first block that fails ends the answer, logged with the peer's
        name."""
        committed = self.replica.committed_height
        head_height, head_hash = self.store.head()
        checked = check_fetched(self._set_at, self.door.inspect, _header_hash, committed,
                                head_hash if head_height == committed else None, records)
        refused = checked.refused
        if checked.batches:
            self._guarded(self.driver.apply_fetched, list(checked.batches))
            log.info("caught_up", peer=self.names[peer], height=checked.batches[-1].height)
        if refused is not None:
            self._fetch_note("bad_fetched_block", {"peer": self.names[peer],
                                                   "check": refused.kind},
                             height=refused.height, reason=refused.reason)
            # no correct validator serves such a block: kept as evidence, link dropped
            self._on_faults([Fault(peer, BAD_CATCH_UP, (_as_sent(records[refused.index]),),
                                   f"block {refused.height!r}: {refused.reason}")])


class _SyncLinks:
    """What node/statesync.py uses of the validator's links."""

    def __init__(self, validator: Validator):
        self.validator = validator

    def send(self, peer: int, frame: bytes) -> None:
        self.validator.transport.send(peer, frame)

    def linked(self) -> list[int]:
        return sorted(self.validator.transport.connected())

    def key_of(self, peer: int) -> bytes:
        return self.validator.transport.key_of(peer)

    def meet(self, members) -> None:
        """The validators a verified proof names: added to the links and admitted."""
        v = self.validator
        for name, key in members:
            if key not in v.membership.names:
                v.membership.add(key, name)
            if v.transport.index_of(key) is None:
                v._add_peer(key)
        v.transport.admit(v._audience() | {k for _, k in members} | {v.keypair.public})


def _as_sent(record: BlockRecord) -> bytes:
    """A fetched record's bytes again, for the evidence: what was decoded from msgpack
    packs back to the same bytes (protocol/codec.py is canonical), however wrong its fields."""
    return record.encode()


def _header_hash(record: BlockRecord) -> bytes | None:
    """consensus.fetched.HeaderHash: the block hash over the record's header, which covers
    execution's roots besides what consensus checked; None when a root is malformed."""
    if not all(type(x) is bytes and len(x) == 32
               for x in (record.results_root, record.state_root)):
        return None
    return block_hash(record.prev_hash, record.height, record.batch_digest,
                      record.results_root, record.state_root)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
