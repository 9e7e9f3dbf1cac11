"""The normal case's rules as pure functions over one slot of the log: which pre-prepare
a backup may accept, when a slot is prepared and when it is committed. The replica
(consensus/replica.py) applies them and does the signing, persisting and sending."""
from __future__ import annotations

from typing import Sequence

from consensus.api import Inspect, Request
from consensus.batches import checked_requests
from consensus.config import Config
from consensus.digest import batch_digest
from consensus.messages import (Commit, Prepare, PreparedProof, PrePrepare, Reproposal,
                                Signatures)


class Slot:
    """One height of the current view's log. `pp` is a Reproposal in a new view's
    re-proposed heights; `requests` is None while the replica lacks that batch."""
    __slots__ = ("pp", "requests", "prepares", "commits", "prepared", "committed", "since")

    def __init__(self) -> None:
        self.since = 0                                       # tick the pre-prepare came
        self.pp: PrePrepare | Reproposal | None = None
        self.requests: tuple[Request, ...] | None = ()
        self.prepares: dict[int, tuple[bytes, bytes]] = {}   # sender -> (digest, signature)
        self.commits: dict[int, tuple[bytes, bytes]] = {}
        self.prepared = False
        self.committed = False


def null_digest(config: Config, height: int) -> bytes:
    """The digest of the empty batch a new view puts in a gap: no requests, time 0."""
    return batch_digest(config.domain, height, 0, [])


def batch_requests(config: Config, inspect: Inspect,
                   pp: PrePrepare) -> tuple[Request, ...] | None:
    """The requests of a proposed batch if every envelope passes `inspect`, no key
    repeats and the digest covers exactly these envelopes at this height and time."""
    if not pp.payloads:
        ok = pp.time_ms == 0 and pp.digest == null_digest(config, pp.height)
        return () if ok else None
    return checked_requests(config, inspect, pp.height, pp.time_ms, pp.digest, pp.payloads)


def time_floor(slots: dict[int, Slot], height: int, block_time_ms: int) -> int:
    """The latest block time known below `height`: a new block must be later."""
    floor = block_time_ms
    for h, slot in slots.items():
        if h < height and slot.pp is not None:
            floor = max(floor, slot.pp.time_ms)
    return floor


def acceptable_header(config: Config, pp: PrePrepare, now_ms: int | None,
                      floor_ms: int) -> bool:
    """The cheap checks of a normal-case pre-prepare, before its signature and envelopes:
    not empty, within the batch limits, its time later than the blocks before it and
    within the allowed skew of this replica's clock."""
    if not acceptable_size(config, pp):
        return False
    if now_ms is None or abs(pp.time_ms - now_ms) > config.max_clock_skew_ms:
        return False
    return pp.time_ms > floor_ms


def acceptable_size(config: Config, pp: PrePrepare) -> bool:
    """Not empty and within the batch limits (what acceptable_header checks besides time)."""
    return (1 <= len(pp.payloads) <= config.batch_max_count
            and sum(len(p) for p in pp.payloads) <= config.batch_max_bytes)


def forward_runs(config: Config, payloads: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """`payloads` cut, in order, into runs a Forward may carry: at most batch_max_count
    envelopes and batch_max_bytes bytes each, the same bounds as a batch, so a forward
    fits in a frame whenever a full batch's pre-prepare does (node/config.py checks
    that). One envelope longer than batch_max_bytes travels alone (node/config.py
    refuses a batch_max_bytes below the largest envelope)."""
    runs: list[tuple[bytes, ...]] = []
    start, size = 0, 0
    for i, payload in enumerate(payloads):
        if i > start and (i - start == config.batch_max_count
                          or size + len(payload) > config.batch_max_bytes):
            runs.append(tuple(payloads[start:i]))
            start, size = i, 0
        size += len(payload)
    if start < len(payloads):
        runs.append(tuple(payloads[start:]))
    return runs


def acceptable_forward(config: Config, payloads: Sequence[bytes]) -> bool:
    """Within the bounds forward_runs keeps to."""
    return (1 <= len(payloads) <= config.batch_max_count
            and (len(payloads) == 1 or sum(len(p) for p in payloads) <= config.batch_max_bytes))


def prepared_certificate(config: Config, slot: Slot, view: int) -> PreparedProof | None:
    """The prepared certificate once quorum - 1 distinct backups sent prepares matching
    the pre-prepare (the primary's pre-prepare stands for its own vote)."""
    pp = slot.pp
    assert pp is not None and pp.view == view
    primary = config.primary(view)
    prepares = sorted((s, sig) for s, (d, sig) in slot.prepares.items()
                      if d == pp.digest and s != primary)
    if len(prepares) < config.quorum - 1:
        return None
    return PreparedProof(view, pp.height, pp.time_ms, pp.digest, pp.signature,
                         tuple(prepares[:config.quorum - 1]))


def commit_certificate(config: Config, slot: Slot) -> Signatures | None:
    """A quorum of distinct commits matching the pre-prepare: the block's certificate."""
    pp = slot.pp
    assert pp is not None
    commits = sorted((s, sig) for s, (d, sig) in slot.commits.items() if d == pp.digest)
    if len(commits) < config.quorum:
        return None
    return tuple(commits[:config.quorum])


def retransmissions(slots: dict[int, Slot], me: int, view: int, is_primary: bool,
                    oldest_tick: int) -> list[object]:
    """Links lose messages: this replica's own messages for slots that have waited since
    before `oldest_tick` without committing go out again. Receivers drop what they
    already hold without checking it again."""
    out: list[object] = []
    for height, slot in slots.items():
        if slot.pp is None or slot.committed or slot.since > oldest_tick:
            continue
        if is_primary and type(slot.pp) is PrePrepare:   # a new view is resent whole
            out.append(slot.pp)
        if me in slot.prepares:
            out.append(Prepare(view, height, *slot.prepares[me]))
        if me in slot.commits:
            out.append(Commit(view, height, *slot.commits[me]))
    return out
