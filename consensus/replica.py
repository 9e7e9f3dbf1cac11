"""One PBFT replica as a pure state machine (Castro and Liskov, OSDI 1999).

Inputs are method calls; outputs accumulate in a Ready (consensus/api.py) that the
driver takes. Rules, in the order a batch meets them:

1. The primary of view v (v mod n) proposes a pre-prepare for the next height inside the
   watermark window (S, S + window], S being the stable checkpoint. It never proposes a
   key it has seen ordered or has in flight, and never an empty batch outside a new view.
2. A backup accepts a pre-prepare of its current view from that view's primary if the
   height is in the window and free, the primary signed it, every envelope passes
   `inspect`, the digest covers exactly those envelopes, the block time is later than
   every block before it that the backup knows and within the allowed skew of its clock,
   and it has not voted another digest at that (view, height) - even before a restart.
   It then persists its vote and sends a signed prepare.
3. Prepared: the pre-prepare plus quorum - 1 matching prepares from distinct backups.
   The replica keeps that prepared certificate (durably) and sends a signed commit.
4. Committed: quorum matching commits; their signatures are the commit certificate.
   Batches go out in height order, each once.
5. Every K blocks the replica signs a checkpoint over the executed block hash; a quorum
   of matching ones is stable; the log at and below it is dropped.
6. Requests wait with a timer; when the oldest waits too long, or a new view does not
   come in time, the replica moves to the next view (consensus/viewchange.py). Timeouts
   double with each attempt and reset when a batch is delivered. A replica alone (n = 1)
   that restarts past heights it proposed and did not execute moves at once.
7. Behind a stable checkpoint, or stalled behind what a peer reports, the replica asks to
   fetch the certified blocks it lacks.
8. A new view names batches by digest: a replica votes for a re-proposed digest whether
   or not it holds the batch, and fetches the envelopes of one it lacks from peers
   (consensus/batches.py); it delivers a batch only once it holds envelopes that hash to
   its digest, and a primary proposes nothing new while it lacks one.
"""
from __future__ import annotations

from typing import Sequence

from consensus import durable, ordering
from consensus.api import (CommittedBatch, Crypto, Inspect, Ready, Request, StableCheckpoint,
                           ValidatorSet)
from consensus.batches import BatchFetcher, BatchStore
from consensus.catchup import CatchUp
from consensus.certificates import RememberingVerifier, stable_is_certified
from consensus.checkpoint import Checkpoints
from consensus.config import Config
from consensus.digest import (batch_digest, commit_bytes, prepare_bytes, preprepare_bytes,
                              validator_set_hash)
from consensus.faults import BAD_SIGNATURE, EQUIVOCATION, MAX_FAULTS, Fault
from consensus.messages import (BatchPayloads, Checkpoint, Commit, FetchBatch, Forward,
                                NewView, PreparedProof, PrePrepare, Prepare, Reproposal,
                                StableProof, Status, ViewChange)
from consensus.ordering import Slot
from consensus.replica_views import ViewSteps
from consensus.requests import RequestPool
from consensus.setbound import SetBound


class Replica(ViewSteps, SetBound):
    def __init__(self, config: Config, me: int, crypto: Crypto, inspect: Inspect,
                 restored: list[tuple[bytes, bytes]], executed_height: int,
                 executed_hash: bytes, last_block_time_ms: int,
                 ordered_keys: Sequence[bytes] = (), next_set: ValidatorSet | None = None):
        """`ordered_keys`: keys of recently executed requests, oldest first (at most
        seen_limit are kept), so that a restarted primary does not order them again.
        `next_set`: the set the executed blocks scheduled to take over from this one
        (the ledger's `next_set`), if any. `restored` of an earlier set is dropped."""
        assert 0 <= me < config.n
        assert executed_height >= config.first_height - 1
        # a signature seen in a vote comes back inside certificates: check each once
        self.crypto = RememberingVerifier(crypto, 8 * config.n * config.window)
        self.config, self.me, self.inspect = config, me, inspect
        self.ready = Ready()
        state = durable.restore(restored)
        # a store written before stores named their set holds genesis's set's state
        of_set = 1 if state.first_height is None else state.first_height
        assert of_set <= config.first_height, "the store holds a later set's replica"
        if of_set < config.first_height:
            state = durable.Restored()
            self.ready.persist.extend(durable.reset(restored, config.first_height))
        elif state.first_height is None:
            self.ready.persist.append((durable.SET_KEY, durable.set_value(of_set)))
        if state.stable is None:
            state.stable = StableCheckpoint(config.first_height - 1, config.base_hash,
                                            config.set_hash, ())
        self.next_set: ValidatorSet | None = None
        self.view, self.active = state.view, state.active
        self.votes: dict[int, tuple[int, bytes]] = state.votes      # own vote per height
        self.proofs: dict[int, PreparedProof] = state.proofs        # prepared certificates
        self.executed_height = self.committed_height = executed_height
        self.executed_hash = executed_hash
        self.block_time_ms = last_block_time_ms
        self.checkpoints = Checkpoints(config, crypto, me, state.stable)
        self.checkpoints.restore_own(state.checkpoints)
        stable = self.checkpoints.stable_height
        self.batches = BatchStore(config, {h: b for h, b in state.batches.items()
                                           if stable < h <= stable + config.window})
        self.fetcher = BatchFetcher(config, me)
        self.served: dict[tuple[int, int], int] = {}   # (peer, height) -> tick answered
        self.refused_batches = 0     # fetched answers whose envelopes missed the digest
        self.slots: dict[int, Slot] = {}
        self.early: dict[int, PrePrepare] = {}      # pre-prepares that came before their new view
        self.certified: dict[int, CommittedBatch] = {}   # committed, waiting for a gap
        self.requests = RequestPool(config, ordered_keys)
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        self.known_valid: set[ViewChange] = set()
        self.new_view_message: NewView | None = state.new_view if (
            state.new_view is not None and state.new_view.view == self.view) else None
        self.catchup = CatchUp(config, me)
        # HANDLERS bound to this replica once: receive looks a message's class up here
        self._handlers = {kind: getattr(self, name) for kind, name in self.HANDLERS.items()}
        self.ticks = 0
        self.now_ms: int | None = None
        self.view_started_tick = 0
        self.last_progress_tick = 0
        self.attempts = 0
        # the new-view timer starts only once a quorum wants this view (PBFT 4.5.2), so
        # that a replica alone in a view change waits instead of racing ahead
        self.vc_quorum_tick: int | None = None
        # the highest view of a batch committed since this start; blocks from before a
        # restart have no known view, so the check in _enter_view starts above them
        self.committed_view = 0
        self.restart_height = executed_height
        # (mark, tick): the oldest pending request with how often its client was served
        # (RequestPool.oldest_mark), and when a later request overtook it
        self.overtaken: tuple[tuple[bytes, int] | None, int] = (None, 0)
        # what peers did that no correct validator does, until the node takes it
        self.faults: list[Fault] = []
        self.faults_lost = 0
        self.proposing = False
        self.next_height = max(self.stable_height, self.committed_height) + 1
        if self.is_primary:
            own = [h for h, (v, _) in self.votes.items() if v == self.view]
            self.next_height = max([self.next_height - 1, *own]) + 1
        if self.is_primary and config.n == 1 and self.active and \
                self.next_height > self.committed_height + 1:
            # Alone, it restarted past heights it proposed in this view and did not
            # execute: it never proposes at them again (that could equivocate), and no
            # backup's timer replaces it. So it moves to the next view itself, a quorum
            # of one, whose new view proposes its prepared batches again.
            self._start_view_change(self.view + 1)
        elif not self.active:
            self._broadcast_view_change()
        if next_set is not None:
            assert self.executed_height < next_set.first_height
            self._learn_set(next_set)
        self._want(self.stable_height, self.checkpoints.stable_signers())
        self._check_invariants()

    # ---- properties for the node and its status page -----------------------------------

    @property
    def primary(self) -> int:
        return self.config.primary(self.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.me

    @property
    def stable_height(self) -> int:
        return self.checkpoints.stable_height

    @property
    def ordering_done(self) -> bool:
        """Every height of this set is committed or certified stable: nothing is left
        for it to order, so no timer runs and no view change starts (one would be
        signed under this set and reach the next set's replicas as noise)."""
        return self.last_height is not None and \
            max(self.committed_height, self.stable_height) >= self.last_height

    def _top(self) -> int:
        """The highest height this replica may propose or vote at: inside the window,
        in this set, and below any height a block it has not yet run could give to
        another set (a change enacted at h takes effect above h + M)."""
        top = min(self.stable_height + self.config.window,
                  self.executed_height + self.config.switch_margin + 1)
        return top if self.next_set is None else min(top, self.last_height)

    def _newest_set_hash(self) -> bytes:
        """What a checkpoint signed now covers: the set scheduled last."""
        if self.next_set is None:
            return self.config.set_hash
        return validator_set_hash(self.config.domain, self.next_set.first_height,
                                  self.next_set.keys)

    def _learn_set(self, next_set: ValidatorSet | None) -> None:
        """The ledger's pending set after the blocks run here. A later change replaces a
        pending one (from the same height, when enacted in the same checkpoint interval,
        or a later one); none takes effect inside this set's heights in flight."""
        if next_set == self.next_set:
            return
        assert next_set is not None, "a pending validator set vanished before its height"
        assert self.next_set is None or next_set.first_height >= self.next_set.first_height
        assert (next_set.first_height - 1) % self.config.checkpoint_interval == 0
        assert next_set.first_height > self.config.first_height
        # Slots may lie beyond its last height for a while: a replica behind in execution
        # can enter a new view that re-proposes heights the others ordered under a
        # change that replaced this one, enacted in a block it has yet to run (before
        # the last height, so before it could execute past it: `executed` checks)
        self.next_set = next_set

    @property
    def pending_count(self) -> int:
        return len(self.requests)

    def take_ready(self) -> Ready:
        ready, self.ready = self.ready, Ready()
        return ready

    def handover(self) -> tuple[list[bytes], list[Request]]:
        """The keys ordered and the requests waiting, for the next set's replica."""
        return self.requests.handover()

    # ---- inputs ------------------------------------------------------------------------

    def submit(self, requests: Sequence[Request]) -> list[bool]:
        accepted = [self.requests.add(r, self.ticks) for r in requests]
        fresh = tuple(r.payload for r, ok in zip(requests, accepted) if ok)
        if fresh and not (self.active and self.is_primary):
            for run in ordering.forward_runs(self.config, fresh):
                self._send(None, Forward(run))
        self._propose()
        self._check_invariants()
        return accepted

    # The handler of each message class a replica receives, one line per kind, called
    # with (sender, message). A message of any other class (matched by exact type) is
    # dropped; tests/consensus/test_consensus_encapsulation.py checks that every class of
    # messages.MESSAGE_TYPES is here.
    HANDLERS: dict[type, str] = {
        PrePrepare: "_on_preprepare",
        Prepare: "_on_prepare",
        Commit: "_on_commit",
        Checkpoint: "_on_checkpoint",
        Forward: "_on_forward",
        ViewChange: "_on_view_change",
        NewView: "_on_new_view",
        Status: "_on_status",
        FetchBatch: "_on_fetch_batch",
        BatchPayloads: "_on_batch_payloads",
        StableProof: "_on_stable_proof",
    }

    def receive(self, sender: int, message: object) -> None:
        if not 0 <= sender < self.config.n or sender == self.me:
            return
        handler = self._handlers.get(type(message))
        if handler is not None:
            handler(sender, message)
        self._check_invariants()

    def tick(self, now_ms: int) -> None:
        self.ticks += 1
        self.now_ms = now_ms
        if self.ordering_done:
            pass
        elif self.active:
            self._propose()
            oldest = self.requests.oldest_arrival()
            if oldest is not None and not self.is_primary:
                # a primary that keeps committing is slow, not faulty (PBFT restarts the
                # timer on progress); one that keeps ordering requests that came after
                # the oldest, but not the oldest, censors it. Under fair batching others'
                # later requests rightly overtake a flooder's oldest (it sits in a later
                # round at the primary); a client that keeps being served is not censored,
                # so the mark also names how often its client was served
                since = max(oldest, self.view_started_tick)
                timeout = self.config.backoff(self.config.request_timeout_ticks,
                                              self.attempts)
                mark, overtaken_tick = self.overtaken
                censored = mark == self.requests.oldest_mark() and \
                    self.ticks - max(overtaken_tick, self.view_started_tick) >= \
                    self.config.censorship_factor * timeout
                if self.ticks - max(since, self.last_progress_tick) >= timeout or censored:
                    self._start_view_change(self.view + 1)
        elif self.vc_quorum_tick is not None and self.ticks - self.vc_quorum_tick >= \
                self.config.backoff(self.config.view_change_timeout_ticks, self.attempts):
            self._start_view_change(self.view + 1)
        if self.ticks % self.config.status_interval_ticks == 0:
            self._send(None, Status(self.view, self.active, self.committed_height,
                                    self.stable_height))
            self._reforward()
            for message in list(self.checkpoints.sent.values()):
                self._send(None, message)
            if self.active:
                for message in ordering.retransmissions(
                        self.slots, self.me, self.view, self.is_primary,
                        self.ticks - self.config.status_interval_ticks):
                    self._send(None, message)
            else:
                own = self.view_changes.get(self.view, {}).get(self.me)
                if own is not None:
                    self._send(None, own)
        self._want(self.catchup.target, self.catchup.reporters())
        self._ask_batches()
        self._check_invariants()

    def executed(self, height: int, block_hash: bytes,
                 next_set: ValidatorSet | None = None) -> None:
        """Block `height` ran; `next_set`: the ledger's pending set after it."""
        assert height == self.executed_height + 1 and height <= self.committed_height
        assert self.last_height is None or height <= self.last_height, \
            "a block beyond the last height of its validator set"
        self.executed_height, self.executed_hash = height, block_hash
        self._learn_set(next_set)
        self._after_block(height, block_hash)
        self._propose()
        self._check_invariants()

    def caught_up(self, height: int, block_hash: bytes, batch: CommittedBatch | None = None,
                  next_set: ValidatorSet | None = None) -> None:
        """A fetched certified block was executed. With the batch, its keys count as
        ordered (so they are not proposed again) and its time as the latest block time.
        `next_set`: the ledger's pending set after it."""
        assert height == self.committed_height + 1 == self.executed_height + 1
        assert self.last_height is None or height <= self.last_height
        self.committed_height = self.executed_height = height
        self.executed_hash = block_hash
        self._learn_set(next_set)
        self.certified.pop(height, None)
        self.fetcher.drop_through(height)
        if batch is not None:
            assert batch.height == height
            self._mark_ordered(batch)
            self.committed_view = max(self.committed_view, batch.view)
        self.last_progress_tick = self.ticks
        self._after_block(height, block_hash)
        self.catchup.arrived(height, self.ticks)
        self._want(self.catchup.target, self.catchup.reporters())
        self._deliver()
        self._check_invariants()

    def answered(self) -> None:
        """A catch-up answer brought blocks (Driver.apply_fetched): the next stretch may
        be asked for at once."""
        self.catchup.answered(self.ticks)
        self._want(self.catchup.target, self.catchup.reporters())

    # ---- requests ----------------------------------------------------------------------

    def _on_forward(self, sender: int, message: Forward) -> None:
        if not ordering.acceptable_forward(self.config, message.payloads):
            return
        requests = self.inspect(message.payloads)
        if requests is None:
            return
        for request in requests:
            self.requests.add(request, self.ticks)
        self._propose()

    def _mark_ordered(self, batch: CommittedBatch) -> None:
        self.requests.ordered(batch.requests)
        if batch.time_ms:
            self.block_time_ms = max(self.block_time_ms, batch.time_ms)

    # ---- normal case -------------------------------------------------------------------

    def _propose(self) -> None:
        if not (self.active and self.is_primary) or self.now_ms is None or self.proposing:
            return
        self.proposing = True   # committing in n = 1 calls back here; one loop is enough
        try:
            self._propose_batches()
        finally:
            self.proposing = False

    def _propose_batches(self) -> None:
        config = self.config
        if self.committed_height < self.stable_height or self.fetcher.is_fetching():
            return   # behind, or lacking a batch: it may hold the same keys; fetch first
        while self.next_height <= min(self._top(),
                                      self.committed_height + config.max_in_flight):
            batch, oldest, full = self.requests.next_batch()
            if not batch or (not full and self.ticks - oldest < config.batch_wait_ticks):
                return
            height = self.next_height
            time_ms = max(self.now_ms, ordering.time_floor(self.slots, height, self.block_time_ms) + 1)
            digest = batch_digest(config.domain, height, time_ms, [r.digest for r in batch])
            signature = self.crypto.sign(preprepare_bytes(config.domain, self.view, height,
                                                          digest))
            pp = PrePrepare(self.view, height, time_ms, digest,
                            tuple(r.payload for r in batch), signature)
            self.next_height += 1
            self._vote(height, digest)
            self._send(None, pp)
            self._install(pp, tuple(batch))

    def _install(self, pp: PrePrepare | Reproposal, requests: tuple[Request, ...] | None,
                 holders: tuple[int, ...] = ()) -> None:
        """Takes an accepted pre-prepare into the log; a backup votes for it. `requests`
        None: a re-proposed batch this replica lacks, fetched from `holders` first."""
        slot = self.slots.setdefault(pp.height, Slot())
        assert slot.pp is None
        slot.pp, slot.requests, slot.since = pp, requests, self.ticks
        if requests is None:
            if pp.height > self.committed_height:   # else it has run here already
                self.fetcher.want(pp.height, pp.digest, pp.time_ms, holders, self.ticks)
                self._ask_batches()
        elif requests:
            self._keep_batch(pp.height, pp.digest, requests)
            if pp.height > self.committed_height:   # else its requests are ordered already
                self.requests.proposed(requests, self.ticks)
        if not self.is_primary:
            self._vote(pp.height, pp.digest)
            signature = self.crypto.sign(prepare_bytes(self.config.domain, self.view,
                                                       pp.height, pp.digest))
            slot.prepares[self.me] = (pp.digest, signature)
            self._send(None, Prepare(self.view, pp.height, pp.digest, signature))
        self._check_slot(pp.height)

    def _reforward(self) -> None:
        """Requests waiting here and in no pre-prepare go to the peers again, a batch at a
        time, in case the first forward was lost: every half request timeout (at least
        every status interval), those older than that. More often, a burst's pool, which
        waits its turn for up to a second, went to every peer every status interval, and
        whatever had been executed meanwhile was opened and checked again there."""
        if self.is_primary and self.active:
            return
        config = self.config
        every = config.status_interval_ticks * max(
            1, config.request_timeout_ticks // 2 // config.status_interval_ticks)
        if self.ticks % every:
            return
        payloads = self.requests.stale_payloads(self.ticks - every, config.batch_max_count)
        for run in ordering.forward_runs(config, payloads)[:1]:    # a batch at a time
            self._send(None, Forward(run))

    def _vote(self, height: int, digest: bytes) -> None:
        assert self.votes.get(height, (self.view, digest)) == (self.view, digest) or \
            self.votes[height][0] < self.view
        self.votes[height] = (self.view, digest)
        self.ready.persist.append((durable.vote_key(height),
                                   durable.vote_value(self.view, digest)))

    def _may_vote(self, height: int, digest: bytes, view: int | None = None) -> bool:
        voted_view, voted = self.votes.get(height, (-1, b""))
        return voted_view != (self.view if view is None else view) or voted == digest

    def _on_preprepare(self, sender: int, pp: PrePrepare) -> None:
        config = self.config
        if sender != config.primary(pp.view) or pp.view != self.view:
            return
        if not self.stable_height < pp.height <= self._top():
            return
        if not self.active:
            if len(self.early) < config.window:
                self.early.setdefault(pp.height, pp)
            return
        slot = self.slots.get(pp.height)
        if slot is not None and slot.pp is not None:
            first = slot.pp
            if type(first) is PrePrepare and first.view == pp.view and \
                    first.digest != pp.digest:
                self._conflicting(sender, first, pp, preprepare_bytes)
            return
        floor_ms = ordering.time_floor(self.slots, pp.height, self.block_time_ms)
        if not ordering.acceptable_header(config, pp, self.now_ms, floor_ms):
            if ordering.acceptable_size(config, pp):
                self._watch_untimely(sender, pp)
            return
        if not self._may_vote(pp.height, pp.digest):
            return
        if not self.crypto.verify(sender, preprepare_bytes(config.domain, pp.view, pp.height,
                                                           pp.digest), pp.signature):
            self._fault(sender, BAD_SIGNATURE, pp)
            return
        requests = ordering.batch_requests(self.config, self.inspect, pp)
        if requests is None:
            return
        self._install(pp, requests)

    def _watch_untimely(self, sender: int, pp: PrePrepare) -> None:
        """A pre-prepare refused for its block time only: a primary that proposed while it
        was cut off resends it as it is (another at that height would equivocate), older
        than this clock allows once the others are back. Its requests join this backup's
        pool, so that its timer watches them: if nobody orders them, a view change
        follows and the next primary proposes them at a fresh time. Without this only
        that primary held them, no backup's timer ran, and they were never decided."""
        if not self.crypto.verify(sender, preprepare_bytes(self.config.domain, pp.view,
                                                           pp.height, pp.digest),
                                  pp.signature):
            self._fault(sender, BAD_SIGNATURE, pp)
            return
        requests = ordering.batch_requests(self.config, self.inspect, pp)
        for request in requests or ():
            self.requests.add(request, self.ticks)

    def _on_prepare(self, sender: int, vote: Prepare) -> None:
        self._on_vote(sender, vote, is_commit=False)

    def _on_commit(self, sender: int, vote: Commit) -> None:
        self._on_vote(sender, vote, is_commit=True)

    def _on_vote(self, sender: int, vote: Prepare | Commit, is_commit: bool) -> None:
        if vote.view != self.view:
            return
        if not self.stable_height < vote.height <= self._top():
            return
        if not is_commit and sender == self.primary:
            return
        slot = self.slots.setdefault(vote.height, Slot())
        table = slot.commits if is_commit else slot.prepares
        make = commit_bytes if is_commit else prepare_bytes
        if sender in table:
            digest, signature = table[sender]
            if digest != vote.digest:
                first = type(vote)(vote.view, vote.height, digest, signature)
                self._conflicting(sender, first, vote, make)
            return
        if not self.crypto.verify(sender, make(self.config.domain, vote.view, vote.height,
                                               vote.digest), vote.signature):
            self._fault(sender, BAD_SIGNATURE, vote)
            return
        table[sender] = (vote.digest, vote.signature)
        self._check_slot(vote.height)

    def _check_slot(self, height: int) -> None:
        slot = self.slots[height]
        pp = slot.pp
        if pp is None:
            return
        config = self.config
        if not slot.prepared:
            proof = ordering.prepared_certificate(config, slot, self.view)
            if proof is not None:
                slot.prepared = True
                self.proofs[height] = proof
                self.ready.persist.append((durable.proof_key(height),
                                           durable.proof_value(proof)))
                signature = self.crypto.sign(commit_bytes(config.domain, self.view, height,
                                                          pp.digest))
                slot.commits[self.me] = (pp.digest, signature)
                self._send(None, Commit(self.view, height, pp.digest, signature))
        if not slot.committed and (slot.requests is not None or
                                   height <= self.committed_height):
            certificate = ordering.commit_certificate(config, slot)
            if certificate is not None:
                slot.committed = True
                if height > self.committed_height:
                    self.certified[height] = CommittedBatch(
                        height, self.view, pp.time_ms, pp.digest, slot.requests, certificate)
                    self._deliver()

    def _deliver(self) -> None:
        while self.committed_height + 1 in self.certified:
            batch = self.certified.pop(self.committed_height + 1)
            self.committed_height = batch.height
            self.committed_view = max(self.committed_view, batch.view)
            newest = self.requests.newest_arrival(batch.requests)
            self._mark_ordered(batch)
            oldest = self.requests.oldest_arrival()
            if newest is not None and oldest is not None and newest > oldest:
                # a request that came after the oldest one was ordered before it
                mark = self.requests.oldest_mark()
                if self.overtaken[0] != mark:
                    self.overtaken = (mark, self.ticks)
            self.ready.committed.append(batch)
            self.last_progress_tick = self.ticks
            if self.active and batch.requests:
                self.attempts = 0
        self.fetcher.drop_through(self.committed_height)
        self._propose()

    # ---- checkpoints and catching up ---------------------------------------------------

    def _after_block(self, height: int, block_hash: bytes) -> None:
        """A block was executed here: sign its checkpoint, hand over a stable one."""
        if height % self.config.checkpoint_interval == 0:
            message = self.checkpoints.sign_own(height, block_hash, self._newest_set_hash())
            if message is not None:
                self.ready.persist.append((durable.checkpoint_key(height),
                                           durable.checkpoint_value(message)))
                self._send(None, message)
                self._stabilize(self.checkpoints.add(self.me, message))
        stable = self.checkpoints.emit(self.executed_height)
        if stable is not None:
            self.ready.checkpoints.append(stable)

    def _on_checkpoint(self, sender: int, message: Checkpoint) -> None:
        if self.last_height is not None and message.height > self.last_height:
            return      # the next set's: it catches up by fetching
        self._stabilize(self.checkpoints.add(sender, message))
        self._propose()

    def _on_stable_proof(self, sender: int, message: StableProof) -> None:
        stable = StableCheckpoint(message.height, message.block_hash, message.set_hash,
                                  message.certificate)
        if self.last_height is not None and stable.height > self.last_height:
            return
        if stable.height > self.stable_height and stable_is_certified(
                self.config, self.crypto, stable):
            self._stabilize(stable)
            self._propose()

    def _stabilize(self, stable: StableCheckpoint | None) -> None:
        """A checkpoint became stable (or was learnt from a view change): drop the log at
        and below it, and fetch up to it if this replica is behind."""
        if stable is None or not self.checkpoints.adopt(stable):
            return
        self.ready.persist.append((durable.STABLE_KEY, durable.stable_value(stable)))
        for table in (self.slots, self.early, self.certified):
            for h in [h for h in table if h <= stable.height]:
                del table[h]
        self.ready.persist.extend(self.batches.drop_through(stable.height))
        self.fetcher.drop_through(stable.height)
        self.served = {k: t for k, t in self.served.items() if k[1] > stable.height}
        for h in self.checkpoints.unpersist_through(stable.height):
            self.ready.persist.append((durable.checkpoint_key(h), None))
        for table, key in ((self.proofs, durable.proof_key), (self.votes, durable.vote_key)):
            for h in [h for h in table if h <= stable.height]:
                del table[h]
                self.ready.persist.append((key(h), None))
        block = self.checkpoints.emit(self.executed_height)
        if block is not None:
            self.ready.checkpoints.append(block)
        self.next_height = max(self.next_height, stable.height + 1)
        self._want(stable.height, tuple(i for i, _ in stable.certificate))

    def _want(self, height: int, peers: tuple[int, ...], proven: bool = True) -> None:
        fetch = self.catchup.want(height, peers, self.committed_height, self.ticks,
                                  self.ready.fetch is not None, proven)
        if fetch is not None:
            self.ready.fetch = fetch

    def _on_status(self, sender: int, status: Status) -> None:
        target, peers = self.catchup.claimed(sender, status.height)
        if target > self.committed_height and self.ticks - self.last_progress_tick >= \
                self.config.status_interval_ticks:
            self._want(target, peers, proven=False)
        if status.stable_height < self.stable_height:
            stable = self.checkpoints.stable
            self._send(sender, StableProof(stable.height, stable.block_hash, stable.set_hash,
                                           stable.certificate))
        if self.active and self.is_primary and self.new_view_message is not None and (
                status.view < self.view or (status.view == self.view and not status.active)):
            self._send(sender, self.new_view_message)

    # ---- output and invariants ---------------------------------------------------------

    def take_faults(self) -> list[Fault]:
        """What peers were seen doing wrong since the last call (consensus/faults.py)."""
        faults, self.faults = self.faults, []
        return faults

    def _fault(self, peer: int, kind: str, *evidence: object) -> None:
        if len(self.faults) < MAX_FAULTS:
            self.faults.append(Fault(peer, kind, evidence))
        else:
            self.faults_lost += 1

    def _conflicting(self, sender: int, first, second, make) -> None:
        """A second signed message of `sender` for a view and height it already signed,
        with another digest: equivocation if its signature holds, else a bad signature.
        (One more signature check, paid once: the node then drops the link.)"""
        if self.crypto.verify(sender, make(self.config.domain, second.view, second.height,
                                           second.digest), second.signature):
            self._fault(sender, EQUIVOCATION, first, second)
        else:
            self._fault(sender, BAD_SIGNATURE, second)

    def _send(self, to: int | None, message: object) -> None:
        if self.config.n > 1:
            self.ready.messages.append((to, message))

    def _check_invariants(self) -> None:
        config, stable = self.config, self.stable_height
        assert self.executed_height <= self.committed_height
        assert all(stable < h <= stable + config.window for h in self.slots)
        assert all(h > self.committed_height for h in self.certified)
        assert len(self.certified) <= config.window and len(self.early) <= config.window
        assert all(h > stable for h in self.proofs) and all(h > stable for h in self.votes)
        self.requests.check()
        self.batches.check(stable)
        self.fetcher.check(stable, self.committed_height)
        assert len(self.served) <= config.n * config.window
        assert len(self.view_changes) <= config.max_views_ahead + 1
        for h, slot in self.slots.items():
            if slot.pp is not None:
                assert slot.pp.view == self.view and slot.pp.height == h
                assert self.votes.get(h) == (self.view, slot.pp.digest)
        if self.active and self.is_primary:
            assert self.next_height > stable
        assert self.last_height is None or self.executed_height <= self.last_height
