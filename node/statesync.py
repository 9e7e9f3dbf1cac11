"""A validator loads a recent stable checkpoint's state from its peers instead of
replaying every block (docs/statesync.md).

1. Offers: it asks every linked peer which snapshots it holds. Each answer carries the
   checkpoints (height, block hash, certificate, set hash) and a proof of the validator
   sets from genesis's on (node/setproof.py); an offer counts when its certificate is a
   quorum's of the set the proof says is in force at its height. It takes the highest
   height that f + 1 members of that set offer (so at least one is correct), and only
   when that is more than `behind` blocks above its own head.
2. Manifest: it asks those peers for the snapshot's manifest and waits for f + 1
   that agree (all but the record's commit certificate and view, which differ between
   correct validators) from members of the set; the manifest's block record must hash
   to the certified block hash, its envelopes make its batch digest, and its commit
   certificate be a quorum's of the set. What the state root does not cover (the chain's clock,
   the hash of the set's base) is thus vouched for by a correct validator.
3. Chunks: it asks the peers that sent the agreed manifest for the chunks, IN_FLIGHT at
   a time, round robin; a chunk that does not hash to the manifest's drops its sender,
   a late one is asked of another peer. Chunks are written in order as they come
   (node/stateload.py): memory holds at most IN_FLIGHT chunks whatever the state's size.
4. Finish: the loaded state's root must be the certified block's, and the validator
   sets it schedules must be the ones the proof led through; then it is installed and
   the validator starts from it. Its history below is fetched in the background
   (node/history.py).
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import structlog

from node import sets, setproof
from consensus.digest import batch_digest, envelope_hash
from node.block import BlockRecord, checkpoint_certificate_ok, commit_certificate_ok
from node.snapshots import Manifest
from node.stateload import BadChunk, Loader, StateMismatch, in_progress
from node.syncwire import ask

log = structlog.get_logger("stadsmunt.statesync")

ASK_EVERY_S = 2.0               # offers and manifests are asked again this often
OFFER_WAIT_S = 3.0              # answers to the offers awaited at most this long
CHUNK_TIMEOUT_S = 10.0          # a chunk not answered in this is asked of another peer
IN_FLIGHT = 4                   # chunks asked and not yet written
GIVE_UP_S = 120.0               # a manifest not agreed in this: start again from offers
MAX_MANIFEST_BYTES = 4 << 20
WAIT_LOG_S = 10.0               # while no snapshot can be chosen, a line this often


class SyncFailed(Exception):
    """The state could not be synced and the validator must not start (a state whose
    validator sets contradict the certified ones)."""


def _faulty(n: int) -> int:
    return (n - 1) // 3


class StateSync:
    def __init__(self, genesis, store, links, behind: int):
        """`links`: send(peer, frame), linked() -> peer indexes, key_of(peer),
        meet(members) (adds the validators a proof names to the links)."""
        self.genesis, self.store, self.links, self.behind = genesis, store, links, behind
        self.domain = genesis.domain()
        self.answers: asyncio.Queue = asyncio.Queue(maxsize=1024)
        self.loaded: Loader | None = None

    def on_answer(self, peer: int, payload: tuple) -> None:
        """A peer's sync answer (node/syncwire.py), from the validator's frame handler."""
        try:
            self.answers.put_nowait((peer, payload))
        except asyncio.QueueFull:
            pass            # more than it asked for: dropped

    # ---- 1. offers ------------------------------------------------------------------

    async def _offers(self) -> dict[int, tuple[list, list]]:
        """peer -> (offers, proof) from the linked peers that answered."""
        got: dict[int, tuple[list, list]] = {}
        for peer in self.links.linked():
            self.links.send(peer, ask("offers"))
        deadline = time.monotonic() + OFFER_WAIT_S
        while time.monotonic() < deadline and len(got) < len(self.links.linked()):
            item = await self._next(deadline)
            if item is not None and item[1][0] == "offers":
                got[item[0]] = (item[1][1], item[1][2])
        return got

    async def _next(self, deadline: float):
        try:
            return await asyncio.wait_for(self.answers.get(),
                                          max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return None

    def choose(self, answers: dict[int, tuple[list, list]]):
        """(height, checkpoint, set members in force, proof hops, chain of sets, peers
        offering it) of the highest snapshot f + 1 members of its set offer; None."""
        counted: dict[int, set[int]] = {}
        found: dict[int, tuple] = {}
        for peer, (offers, raw_proof) in answers.items():
            try:
                hops = setproof.decode(raw_proof)
                chain = setproof.verify(self.genesis, hops)
            except setproof.ProofError as error:
                log.warning("state_sync_bad_proof", peer=peer, reason=str(error))
                continue
            key = self.links.key_of(peer)
            for height, block_hash, certificate, set_hash in offers:
                first, members = [s for s in chain if s[0] <= height][-1]
                keys = [k for _, k in members]
                if key not in keys or not checkpoint_certificate_ok(
                        self.domain, keys, height, block_hash, certificate, set_hash):
                    continue
                counted.setdefault(height, set()).add(peer)
                found.setdefault(height, ((block_hash, certificate, set_hash), members,
                                          hops, chain))
        for height in sorted(counted, reverse=True):
            members = found[height][1]
            if len(counted[height]) >= _faulty(len(members)) + 1:
                return (height, *found[height], sorted(counted[height]))
        return None

    # ---- 2. manifest ----------------------------------------------------------------

    async def _manifest(self, height: int, block_hash: bytes, peers: list[int],
                        members) -> tuple[Manifest, list[int]] | None:
        keys = {k for _, k in members}
        need = _faulty(len(members)) + 1
        votes: dict[int, tuple[Manifest, bytes]] = {}     # peer -> (manifest, agreed)
        give_up = time.monotonic() + GIVE_UP_S
        while time.monotonic() < give_up:
            for peer in peers:
                if peer not in votes:
                    self.links.send(peer, ask("manifest", height))
            deadline = time.monotonic() + ASK_EVERY_S
            while time.monotonic() < deadline:
                item = await self._next(deadline)
                if item is None or item[1][0] != "manifest" or item[1][1] != height:
                    continue
                peer, raw = item[0], item[1][2]
                if self.links.key_of(peer) not in keys or len(raw) > MAX_MANIFEST_BYTES:
                    continue
                try:
                    manifest = Manifest.decode(raw, MAX_MANIFEST_BYTES)
                    record = BlockRecord.decode(manifest.record)
                except Exception as error:      # a peer's bytes: its fault
                    log.warning("state_sync_bad_manifest", peer=peer, reason=str(error))
                    continue
                if manifest.height != height or record.hash != block_hash or \
                        not self._record_ok(record, members):
                    log.warning("state_sync_bad_manifest", peer=peer,
                                reason="its block is not the certified one")
                    continue
                votes[peer] = (manifest, manifest.agreed())
                best, count = Counter(a for _, a in votes.values()).most_common(1)[0]
                if count >= need:
                    agreed = [p for p, (_, a) in votes.items() if a == best]
                    return votes[agreed[0]][0], agreed
        return None

    def _record_ok(self, record: BlockRecord, members) -> bool:
        """The snapshot's block record, whole: its hash over its header, its envelopes
        under its batch digest, and a commit certificate of the set in force there."""
        try:
            digest = batch_digest(self.domain, record.height, record.time_ms,
                                  [envelope_hash(e) for e in record.envelopes])
            return record.check_hash() and digest == record.batch_digest and \
                commit_certificate_ok(self.domain, [k for _, k in members], record)
        except (TypeError, ValueError, AssertionError):     # a peer's malformed fields
            return False

    # ---- 3. chunks ------------------------------------------------------------------

    async def _chunks(self, loader: Loader, peers: list[int]) -> bool:
        """Fetches and writes every chunk; False when every peer was dropped."""
        total = len(loader.manifest.chunks)
        height = loader.manifest.height
        asked: dict[int, tuple[int, float]] = {}     # chunk -> (peer, when)
        arrived: dict[int, tuple[int, bytes]] = {}   # chunk -> (its sender, bytes)
        good = list(peers)
        turn = 0
        while not loader.done:
            if not good:
                return False
            now = time.monotonic()
            for index, (peer, when) in list(asked.items()):
                if now - when > CHUNK_TIMEOUT_S:
                    del asked[index]        # asked again below, maybe of another peer
            want = loader.next
            while len(asked) + len(arrived) < IN_FLIGHT and want < total:
                if want not in asked and want not in arrived:
                    turn += 1
                    peer = good[turn % len(good)]
                    self.links.send(peer, ask("chunk", height, want))
                    asked[want] = (peer, now)
                want += 1
            item = await self._next(now + 1.0)
            if item is None:
                continue
            peer, payload = item
            if payload[0] != "chunk" or payload[1] != height:
                continue
            index, raw = payload[2], payload[3]
            if asked.get(index, (None,))[0] != peer:
                continue                    # not asked of it (any more)
            del asked[index]
            arrived[index] = (peer, raw)
            while loader.next in arrived:
                number = loader.next
                sender, chunk = arrived.pop(number)     # not always the peer just heard
                try:
                    loader.add(number, chunk)
                except BadChunk as error:
                    log.warning("state_sync_bad_chunk", peer=sender, chunk=number,
                                reason=str(error))
                    if sender in good:
                        good.remove(sender)
                    break
            if loader.next % 64 == 0 or loader.done:
                log.info("state_sync_progress", height=height, chunks=loader.next,
                         of=total, entries=loader.entries)
        return True

    # ---- 4. all of it ---------------------------------------------------------------

    def _check_sets(self, chain, height: int, set_hash: bytes) -> None:
        """The loaded state's schedule must be the sets the proof led through, and the
        newest set it schedules the one the checkpoint names."""
        loaded = [(s.first_height, tuple(s.keys))
                  for s in sets.every(self.genesis, self.store) if s.first_height <= height]
        proved = [(first, tuple(k for _, k in members)) for first, members in chain
                  if first <= height]
        if loaded != proved:
            raise StateMismatch("the synced state's validator sets are not the ones the "
                                "checkpoint certificates lead through")
        if sets.newest(self.genesis, self.store, height).hash(self.genesis) != set_hash:
            raise StateMismatch("the synced state's newest validator set is not the one "
                                "its checkpoint names")

    async def run(self) -> bool:
        """Syncs the state if a snapshot is more than `behind` above the head; True when
        it did, False when there was none to sync to (the validator replays instead).
        Keeps trying while peers do not answer; SyncFailed when a state is wrong."""
        waited = 0.0
        while True:
            answers = await self._offers()
            if answers and all(not offers for offers, _ in answers.values()) and \
                    in_progress(self.store) is None:
                log.info("state_sync_nothing_offered", peers=len(answers))
                return False
            chosen = self.choose(answers)
            if chosen is None:
                if waited % WAIT_LOG_S < ASK_EVERY_S:
                    log.info("state_sync_waiting", answers=len(answers),
                             linked=len(self.links.linked()), waited_s=round(waited))
                await asyncio.sleep(ASK_EVERY_S)
                waited += ASK_EVERY_S
                continue
            height, checkpoint, members, hops, chain, peers = chosen
            head = self.store.head()[0]
            if height <= head + self.behind and in_progress(self.store) is None:
                log.info("state_sync_not_needed", head=head, snapshot=height,
                         behind=self.behind)
                return False
            self.links.meet([m for _, ms in chain for m in ms])
            log.info("state_sync_started", height=height, peers=len(peers))
            agreed = await self._manifest(height, checkpoint[0], peers, members)
            if agreed is None:
                log.warning("state_sync_no_manifest", height=height)
                continue
            manifest, holders = agreed
            base_height = [f for f, _ in chain if f <= height + 1][-1] - 1
            loader = Loader(self.store, manifest, checkpoint, hops, base_height)
            loader.begin()
            if not await self._chunks(loader, holders):
                log.warning("state_sync_no_peer_left", height=height)
                continue
            try:
                loader.finish(lambda: self._check_sets(chain, height, checkpoint[2]))
            except StateMismatch as error:
                raise SyncFailed(str(error)) from None
            log.info("state_synced", height=height, entries=loader.entries,
                     chunks=len(manifest.chunks))
            return True
