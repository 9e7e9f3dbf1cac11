"""Checkpoints: every K blocks each replica signs (height, block hash, set hash) after
executing; a quorum of matching signatures is stable and becomes the low watermark.
Votes are kept only for heights in (stable, stable + 2 * window], so a flood cannot grow
them."""
from __future__ import annotations

from consensus.api import Crypto, StableCheckpoint
from consensus.config import Config
from consensus.digest import ZERO_HASH, checkpoint_bytes
from consensus.messages import Checkpoint


class Checkpoints:
    def __init__(self, config: Config, crypto: Crypto, me: int,
                 stable: StableCheckpoint):
        self.config, self.crypto, self.me = config, crypto, me
        self.stable = stable
        # height -> sender -> ((block hash, set hash), signature)
        self.votes: dict[int, dict[int, tuple[tuple[bytes, bytes], bytes]]] = {}
        # this replica's (block hash, set hash) at checkpoints
        self.own: dict[int, tuple[bytes, bytes]] = {}
        # its signed votes above the stable checkpoint: resent until one is stable, so a
        # lost vote, or a peer that restarted, cannot leave a checkpoint short of a quorum
        self.sent: dict[int, Checkpoint] = {}
        self.persisted: set[int] = set()        # heights whose vote is in the store
        self.emitted = self.stable.height       # the last stable handed to the ledger

    @property
    def stable_height(self) -> int:
        return self.stable.height

    def stable_signers(self) -> tuple[int, ...]:
        return tuple(i for i, _ in self.stable.certificate)

    def sign_own(self, height: int, block_hash: bytes, set_hash: bytes) -> Checkpoint | None:
        assert height % self.config.checkpoint_interval == 0
        self.own[height] = (block_hash, set_hash)
        if height <= self.stable.height:
            return None
        signature = self.crypto.sign(checkpoint_bytes(self.config.domain, height, block_hash,
                                                      set_hash))
        self.sent[height] = Checkpoint(height, block_hash, set_hash, signature)
        self.persisted.add(height)
        return self.sent[height]

    def unpersist_through(self, height: int) -> list[int]:
        """The heights at or below `height` whose vote is in the store, forgotten here:
        the caller deletes them there."""
        gone = sorted(h for h in self.persisted if h <= height)
        self.persisted -= set(gone)
        return gone

    def restore_own(self, votes: dict[int, Checkpoint]) -> None:
        """Its votes from before a restart (consensus/durable.py), above the stable
        checkpoint: counted again and resent."""
        self.persisted |= set(votes)
        for height, vote in sorted(votes.items()):
            if height > self.stable.height:
                self.own[height] = (vote.block_hash, vote.set_hash)
                self.sent[height] = vote
                self.add(self.me, vote)

    def add(self, sender: int, message: Checkpoint) -> StableCheckpoint | None:
        """Records a checkpoint vote; returns the checkpoint if it just became stable."""
        height = message.height
        if height <= self.stable.height or height % self.config.checkpoint_interval:
            return None
        if height > self.stable.height + 2 * self.config.window:
            return None
        votes = self.votes.setdefault(height, {})
        if sender in votes:
            return None
        if sender != self.me and not self.crypto.verify(
                sender, checkpoint_bytes(self.config.domain, height, message.block_hash,
                                         message.set_hash), message.signature):
            return None
        value = (message.block_hash, message.set_hash)
        votes[sender] = (value, message.signature)
        matching = sorted((s, sig) for s, (v, sig) in votes.items() if v == value)
        if len(matching) < self.config.quorum:
            return None
        return StableCheckpoint(height, message.block_hash, message.set_hash,
                                tuple(matching[:self.config.quorum]))

    def adopt(self, stable: StableCheckpoint) -> bool:
        """Makes a certified checkpoint the low watermark if it is newer."""
        if stable.height <= self.stable.height:
            return False
        assert stable.height % self.config.checkpoint_interval == 0
        assert stable.block_hash != ZERO_HASH
        self.stable = stable
        for table in (self.votes, self.own, self.sent):
            for h in [h for h in table if h < stable.height]:
                del table[h]
        self.sent.pop(stable.height, None)
        self.votes.pop(stable.height, None)
        return True

    def emit(self, executed_height: int) -> StableCheckpoint | None:
        """The stable checkpoint, once, when its block has been executed here."""
        stable = self.stable
        if stable.height <= self.emitted or executed_height < stable.height:
            return None
        own = self.own.get(stable.height)
        assert own is None or own == (stable.block_hash, stable.set_hash), \
            "state diverged from a quorum"
        self.emitted = stable.height
        return stable
