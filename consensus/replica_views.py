"""The replica's view change (PBFT section 4.4) and the batches a new view names by
digest, as steps of consensus.replica.Replica, kept apart to keep each file short. The
rules are in consensus/viewchange.py and consensus/batches.py; these steps apply them to
the replica's state, sign, persist and send.

A new view names batches by digest: a replica votes for a re-proposed digest whether or
not it holds the batch, and fetches the envelopes of one it lacks from peers; it delivers
a batch only once it holds envelopes that hash to its digest.
"""
from __future__ import annotations

from consensus import durable, ordering, viewchange, wire
from consensus.api import Request, StableCheckpoint
from consensus.batches import checked_requests
from consensus.digest import preprepare_bytes
from consensus.faults import BAD_SIGNATURE
from consensus.messages import BatchPayloads, FetchBatch, NewView, Reproposal, ViewChange


class ViewSteps:
    """Mixed into Replica; uses its state and its normal-case steps (_install, _vote,
    _may_vote, _on_preprepare, _check_slot, _stabilize, _propose, _send)."""

    def _start_view_change(self, view: int) -> None:
        assert view > self.view
        self._reset_view(view)
        self.active = False
        self.view_started_tick = self.ticks
        self.attempts += 1
        self.requests.new_view()
        self.new_view_message = None
        self.ready.persist.append((durable.NEW_VIEW_KEY, None))
        self.vc_quorum_tick = None
        for v in [v for v in self.view_changes if v < view]:
            del self.view_changes[v]
        self.ready.persist.append((durable.VIEW_KEY, durable.view_value(view, False)))
        self._broadcast_view_change()

    def _reset_view(self, view: int) -> None:
        """Moves to a later view, whose log starts empty: the old view's slots and the
        pre-prepares that waited for a new view go, and so do the batches being fetched
        (the new view says again which batches it needs)."""
        self.view = view
        self.slots, self.early = {}, {}
        self.fetcher.new_view()

    def _broadcast_view_change(self) -> None:
        vc = viewchange.make_view_change(self.config, self.crypto, self.me, self.view,
                                         self.checkpoints.stable,
                                         list(self.proofs.values()))
        self.view_changes.setdefault(self.view, {})[self.me] = vc
        self.known_valid.add(vc)
        self._send(None, vc)
        self._try_new_view()

    def _on_view_change(self, sender: int, vc: ViewChange) -> None:
        if vc.replica != sender or self.ordering_done:
            return
        if vc.stable_height < self.config.first_height - 1:
            return      # sent under an earlier validator set: not this set's business
        if (self.last_height is not None and vc.stable_height >= self.last_height) or \
                vc.stable_height > self.executed_height + self.config.switch_margin:
            # perhaps signed under a later set (from its base on), which this replica
            # does not run or cannot know yet: neither used nor judged here
            return
        if vc.new_view == self.view and self.active:
            if self.is_primary and self.new_view_message is not None:
                self._send(sender, self.new_view_message)
            return
        if not self.view <= vc.new_view <= self.view + self.config.max_views_ahead:
            return
        stored = self.view_changes.setdefault(vc.new_view, {})
        if sender in stored:
            return
        if vc not in self.known_valid:
            if not viewchange.view_change_is_valid(self.config, self.crypto, vc):
                # at this set's base the sender may still serve the previous set, whose
                # last height it is (reached by a stable checkpoint before it ran the
                # block that ended that set): signed under that set, not judged here
                at_base = self.config.first_height > 1 and \
                    vc.stable_height == self.config.first_height - 1
                if not at_base and not self.crypto.verify(
                        sender, viewchange.signed_bytes(self.config, vc), vc.signature):
                    self._fault(sender, BAD_SIGNATURE, vc)
                return
            self.known_valid.add(vc)
        stored[sender] = vc
        later = viewchange.lowest_later_view(self.view_changes, self.view, self.config.f)
        if later is not None:
            self._start_view_change(later)
        else:
            self._try_new_view()

    def _try_new_view(self) -> None:
        stored = self.view_changes.get(self.view, {})
        if self.vc_quorum_tick is None and not self.active:
            if viewchange.replicas_leaving(self.view_changes, self.view) >= \
                    self.config.quorum:
                self.vc_quorum_tick = self.ticks
        if self.active or not self.is_primary or len(stored) < self.config.quorum:
            return
        chosen = [stored[self.me]] + [vc for s, vc in sorted(stored.items()) if s != self.me]
        chosen = chosen[:self.config.quorum]
        plan = viewchange.plan_new_view(self.config, self.view, chosen)
        rps = viewchange.build_reproposals(self.config, self.crypto, plan)
        installs = []
        for rp in rps:
            if rp.height <= self.stable_height:
                continue
            installs.append((rp, self._kept(rp)))
            self._vote(rp.height, rp.digest)
        message = NewView(self.view, tuple(chosen), tuple(rps))
        self._send(None, message)
        self._enter_view(plan, installs, message)

    def _on_new_view(self, sender: int, nv: NewView) -> None:
        config = self.config
        if sender != config.primary(nv.view):
            return
        if nv.view < self.view or (nv.view == self.view and self.active):
            return
        if nv.view > self.view + config.max_views_ahead:
            return
        plan = viewchange.new_view_plan(config, self.crypto, nv, self.known_valid)
        if plan is None:
            return
        installs = []
        for rp in nv.preprepares:
            if rp.height <= self.stable_height:
                continue
            if not self.crypto.verify(sender, preprepare_bytes(config.domain, rp.view,
                                                               rp.height, rp.digest),
                                      rp.signature):
                return
            installs.append((rp, self._kept(rp)))
        if any(not self._may_vote(pp.height, pp.digest, nv.view) for pp, _ in installs):
            return
        if nv.view > self.view:
            self._reset_view(nv.view)
        self._enter_view(plan, installs, nv)

    def _enter_view(self, plan: viewchange.Plan, installs, message: NewView) -> None:
        assert plan.view == self.view
        self.active = True
        self.view_started_tick = self.ticks
        self.new_view_message = message
        for v in [v for v in self.view_changes if v <= self.view]:
            del self.view_changes[v]
        self.known_valid = {vc for vs in self.view_changes.values() for vc in vs.values()}
        self.ready.persist.append((durable.VIEW_KEY, durable.view_value(self.view, True)))
        if self.is_primary:
            self.ready.persist.append((durable.NEW_VIEW_KEY, wire.encode(message)))
        self.next_height = plan.next_height
        if plan.stable_height > self.stable_height:
            self._stabilize(StableCheckpoint(plan.stable_height, plan.stable_hash,
                                             plan.stable_set_hash, plan.stable_certificate))
        self.next_height = max(plan.next_height, self.stable_height + 1)
        # every batch committed before this view is inside the new view's range (the
        # quorums intersect); only batches of this view itself, learnt late, lie beyond
        assert self.committed_height < self.next_height or \
            self.committed_height <= max(self.stable_height, self.restart_height) or \
            self.committed_view >= self.view, "a committed batch was lost"
        self.requests.new_view()
        proofs = dict(plan.slots)
        for rp, requests in installs:
            if rp.height > self.stable_height:
                self._install(rp, requests, viewchange.holders(self.config,
                                                               proofs.get(rp.height)))
        early, self.early = self.early, {}
        for height in sorted(early):
            self._on_preprepare(self.primary, early[height])
        self._propose()

    # ---- batches named by digest ---------------------------------------------------------

    def _kept(self, rp: Reproposal) -> tuple[Request, ...] | None:
        """The requests of a re-proposed batch: none for a null batch, those this replica
        kept, or None when it lacks them."""
        if rp.time_ms == 0 and rp.digest == ordering.null_digest(self.config, rp.height):
            return ()
        return self.batches.requests(self.config, self.inspect, rp.height, rp.time_ms,
                                     rp.digest)

    def _keep_batch(self, height: int, digest: bytes, requests: tuple[Request, ...]) -> None:
        proof = self.proofs.get(height)
        self.ready.persist.extend(self.batches.keep(height, digest, requests,
                                                    proof.digest if proof else None))

    def _ask_batches(self) -> None:
        for peer, message in self.fetcher.due(self.ticks):
            self._send(peer, message)

    def _on_fetch_batch(self, sender: int, message: FetchBatch) -> None:
        """Answers a peer once per status interval per height, so that asking again and
        again buys a faulty peer nothing."""
        height = message.height
        if not self.stable_height < height <= self.stable_height + self.config.window:
            return
        served = self.served.get((sender, height))
        if served is not None and self.ticks - served < self.config.status_interval_ticks:
            return
        payloads = self.batches.payloads(height, message.digest)
        if payloads is None:
            return
        self.served[(sender, height)] = self.ticks
        self._send(sender, BatchPayloads(height, message.digest, payloads))

    def _on_batch_payloads(self, sender: int, message: BatchPayloads) -> None:
        height, digest = message.height, message.digest
        time_ms = self.fetcher.answer(sender, height, digest)
        if time_ms is None:
            return
        requests = checked_requests(self.config, self.inspect, height, time_ms, digest,
                                    message.payloads)
        if requests is None:
            self.refused_batches += 1
            self.fetcher.ask_next_now(height, self.ticks)
            self._ask_batches()
            return
        self.fetcher.filled(height)
        self._keep_batch(height, digest, requests)
        slot = self.slots.get(height)
        if slot is None or slot.pp is None or slot.pp.digest != digest or \
                slot.requests is not None:
            return
        slot.requests = requests
        if height > self.committed_height:
            self.requests.proposed(requests, self.ticks)
        self._check_slot(height)
        self._propose()
