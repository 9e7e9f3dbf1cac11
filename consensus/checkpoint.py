"""Checkpoints: every K blocks each replica signs (height, block hash) after executing;
a quorum of matching signatures is stable and becomes the low watermark. Votes are kept
only for heights in (stable, stable + 2 * window], so a flood cannot grow them."""
from __future__ import annotations

from consensus.api import Crypto, StableCheckpoint
from consensus.config import Config
from consensus.digest import ZERO_HASH, checkpoint_bytes
from consensus.messages import Checkpoint, Signatures


class Checkpoints:
    def __init__(self, config: Config, crypto: Crypto, me: int,
                 stable: tuple[int, bytes, Signatures]):
        self.config, self.crypto, self.me = config, crypto, me
        self.stable = StableCheckpoint(*stable)
        self.votes: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        self.own: dict[int, bytes] = {}         # this replica's block hash at checkpoints
        self.emitted = self.stable.height       # the last stable handed to the ledger

    @property
    def stable_height(self) -> int:
        return self.stable.height

    def stable_triple(self) -> tuple[int, bytes, Signatures]:
        return self.stable.height, self.stable.block_hash, self.stable.certificate

    def stable_signers(self) -> tuple[int, ...]:
        return tuple(i for i, _ in self.stable.certificate)

    def sign_own(self, height: int, block_hash: bytes) -> Checkpoint | None:
        assert height % self.config.checkpoint_interval == 0
        self.own[height] = block_hash
        if height <= self.stable.height:
            return None
        signature = self.crypto.sign(checkpoint_bytes(self.config.domain, height, block_hash))
        return Checkpoint(height, block_hash, signature)

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
                sender, checkpoint_bytes(self.config.domain, height, message.block_hash),
                message.signature):
            return None
        votes[sender] = (message.block_hash, message.signature)
        matching = sorted((s, sig) for s, (h, sig) in votes.items() if h == message.block_hash)
        if len(matching) < self.config.quorum:
            return None
        return StableCheckpoint(height, message.block_hash,
                                tuple(matching[:self.config.quorum]))

    def adopt(self, stable: StableCheckpoint) -> bool:
        """Makes a certified checkpoint the low watermark if it is newer."""
        if stable.height <= self.stable.height:
            return False
        assert stable.height % self.config.checkpoint_interval == 0
        assert stable.block_hash != ZERO_HASH
        self.stable = stable
        for table in (self.votes, self.own):
            for h in [h for h in table if h < stable.height]:
                del table[h]
        self.votes.pop(stable.height, None)
        return True

    def emit(self, executed_height: int) -> StableCheckpoint | None:
        """The stable checkpoint, once, when its block has been executed here."""
        stable = self.stable
        if stable.height <= self.emitted or executed_height < stable.height:
            return None
        own = self.own.get(stable.height)
        assert own is None or own == stable.block_hash, "state diverged from a quorum"
        self.emitted = stable.height
        return stable
