"""The envelopes behind the digests. View-change and new-view messages name batches by
digest only, so a replica keeps the batches it voted for, serves them to peers that ask
(FetchBatch), and fetches those it lacks, checking every answer against the digest.

Why keep more than one batch per height: a digest a new view re-proposes is that of a
prepared certificate, and the replicas that can produce its envelopes are those that
accepted its pre-prepare. A replica that later votes another digest at the same height
(a later view) must still hold the older batch, or a certificate shown by a faulty
replica could name envelopes no correct replica holds any more. Each height keeps the
batch of the replica's prepared certificate and its `RECENT_PER_HEIGHT` latest votes;
everything at or below the stable checkpoint goes (a quorum has executed it, and
catch-up serves it as blocks).
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import durable
from consensus.api import Inspect, Request
from consensus.config import Config
from consensus.digest import batch_digest
from consensus.messages import FetchBatch

RECENT_PER_HEIGHT = 2


def checked_requests(config: Config, inspect: Inspect, height: int, time_ms: int,
                     digest: bytes, payloads: tuple[bytes, ...]) -> tuple[Request, ...] | None:
    """The requests of a batch whose envelopes all pass `inspect`, with no key twice, and
    whose digest at (height, time_ms) is `digest`; None otherwise. The envelope hashes
    come from `inspect`, which computed them once at the door."""
    if not payloads or len(payloads) > config.batch_max_count:
        return None
    if sum(len(p) for p in payloads) > config.batch_max_bytes:
        return None
    requests = inspect(payloads)
    if requests is None or len(requests) != len(payloads):
        return None
    if len({r.key for r in requests}) != len(requests):
        return None
    if batch_digest(config.domain, height, time_ms, [r.digest for r in requests]) != digest:
        return None
    return tuple(requests)


class BatchStore:
    """Batches this replica voted for, by (height, digest): checked requests, or envelopes
    read back from disk and checked when first used. Bounded: heights in the window, at
    most RECENT_PER_HEIGHT + 1 batches each."""

    def __init__(self, config: Config, restored: dict[int, dict[bytes, tuple[bytes, ...]]]):
        self.config = config
        self.kept: dict[int, dict[bytes, tuple[Request, ...] | tuple[bytes, ...]]] = {
            h: dict(batches) for h, batches in restored.items()}

    def __len__(self) -> int:
        return sum(len(b) for b in self.kept.values())

    def keep(self, height: int, digest: bytes, requests: tuple[Request, ...],
             pinned: bytes | None) -> list[tuple[bytes, bytes | None]]:
        """Keeps a batch just voted for (newest last); returns the disk writes. `pinned`
        is the digest of the replica's prepared certificate at this height, never
        dropped here."""
        assert requests
        at = self.kept.setdefault(height, {})
        ops: list[tuple[bytes, bytes | None]] = []
        known = at.pop(digest, None)
        at[digest] = requests
        if known is None:
            ops.append((durable.batch_key(height, digest),
                        durable.batch_value(tuple(r.payload for r in requests))))
        others = [d for d in at if d != pinned]
        for old in others[:-RECENT_PER_HEIGHT]:
            del at[old]
            ops.append((durable.batch_key(height, old), None))
        return ops

    def requests(self, config: Config, inspect: Inspect, height: int, time_ms: int,
                 digest: bytes) -> tuple[Request, ...] | None:
        """The checked requests of a kept batch, or None if it is not kept (or what the
        disk held does not match the digest)."""
        kept = self.kept.get(height, {}).get(digest)
        if not kept:
            return None
        if type(kept[0]) is Request:
            return kept
        requests = checked_requests(config, inspect, height, time_ms, digest, kept)
        if requests is not None:
            self.kept[height][digest] = requests
        return requests

    def payloads(self, height: int, digest: bytes) -> tuple[bytes, ...] | None:
        kept = self.kept.get(height, {}).get(digest)
        if not kept:
            return None
        if type(kept[0]) is Request:
            return tuple(r.payload for r in kept)
        return kept

    def drop_through(self, height: int) -> list[tuple[bytes, bytes | None]]:
        ops = []
        for h in [h for h in self.kept if h <= height]:
            ops += [(durable.batch_key(h, d), None) for d in self.kept.pop(h)]
        return ops

    def check(self, stable: int) -> None:
        assert all(stable < h <= stable + self.config.window for h in self.kept)
        assert all(len(b) <= RECENT_PER_HEIGHT + 1 for b in self.kept.values())


@dataclass
class Wanted:
    digest: bytes
    time_ms: int
    peers: tuple[int, ...]      # whom to ask, in turn: those known to hold it first
    turn: int = 0
    due_tick: int = 0           # when to ask the next peer
    asked: frozenset = frozenset()   # peers whose one answer will be looked at


class BatchFetcher:
    """Batches of this view's log whose envelopes this replica lacks: it asks one peer,
    then the next every `status_interval_ticks` until one answers with envelopes that
    match the digest. Only a peer it asked may answer, once each, so a faulty peer
    costs at most one check per request."""

    def __init__(self, config: Config, me: int):
        self.config, self.me = config, me
        self.wanted: dict[int, Wanted] = {}

    def want(self, height: int, digest: bytes, time_ms: int, holders: tuple[int, ...],
             ticks: int) -> None:
        rest = [p for p in range(self.config.n) if p not in holders]
        peers = tuple(p for p in (*holders, *rest) if p != self.me)
        self.wanted[height] = Wanted(digest, time_ms, peers, due_tick=ticks)

    def due(self, ticks: int) -> list[tuple[int, FetchBatch]]:
        out = []
        for height, want in sorted(self.wanted.items()):
            if want.due_tick > ticks or not want.peers:
                continue
            peer = want.peers[want.turn % len(want.peers)]
            want.turn += 1
            want.due_tick = ticks + self.config.status_interval_ticks
            want.asked = want.asked | {peer}
            out.append((peer, FetchBatch(height, want.digest)))
        return out

    def is_fetching(self) -> bool:
        """Whether a batch of this view's log is still wanted."""
        return bool(self.wanted)

    def answer(self, sender: int, height: int, digest: bytes) -> int | None:
        """The block time of the wanted batch this answer may fill, or None; the sender
        is not heard again on it."""
        want = self.wanted.get(height)
        if want is None or want.digest != digest or sender not in want.asked:
            return None
        want.asked = want.asked - {sender}
        return want.time_ms

    def ask_next_now(self, height: int, ticks: int) -> None:
        """An answer for this wanted batch missed its digest: the next peer is due now."""
        self.wanted[height].due_tick = ticks

    def filled(self, height: int) -> None:
        """The batch came, its envelopes under its digest: wanted no more."""
        del self.wanted[height]

    def new_view(self) -> None:
        """A new view says again which batches it needs: nothing is wanted any more."""
        self.wanted = {}

    def drop_through(self, height: int) -> None:
        for h in [h for h in self.wanted if h <= height]:
            del self.wanted[h]

    def check(self, stable: int, committed: int) -> None:
        """Every wanted height is in the window and above the committed height."""
        assert all(stable < h <= stable + self.config.window and h > committed
                   for h in self.wanted)

