"""Real fakes for the harness both the simulator and the scenario cluster drive
(tests/sim/harness.py): signers, a dict store, a hash-chain ledger, a request
registry that plays the node's envelope door. No mocks: each keeps the contract of the
production piece it stands for, and the store and the ledger fail the way theirs can.

Storage faults, and what survives them. In the validator the consensus store
(node/store.py `ConsensusStorage`) and the block ledger are one LMDB environment opened
with sync on and metasync off: a commit flushes its data pages but not its meta page,
which the next commit's flush (or an explicit sync) carries to disk. So:
- a process crash (kill -9) loses nothing that was committed: the pages are in the
  operating system's cache;
- a system crash (power loss) may undo the environment's last committed transaction,
  unless something synced after it. `ConsensusStorage.write` ends with `env.sync(True)`:
  every consensus write is on disk before it returns, and so is every ledger
  transaction before it. The only thing a power loss can take is therefore the last
  ledger transaction (a block executed, or a checkpoint kept) when no consensus write
  and no other ledger transaction came after it. That is what "writes lost after the
  last sync" means here: the consensus store loses nothing, ever; the ledger loses at
  most its last transaction (`Disk.undo`);
- a transaction is atomic: a crash in the middle of a write leaves all of it or none;
- a write can fail (a full disk, an I/O error): nothing of it is written, and the
  driver's step raises, so the validator fail-stops (consensus/driver.py `Halted`) and
  restarts from what is on disk.
A `Disk` is what one node's `DictStorage` and `HashChainLedger` share: that durability
and the faults the world arms on it. An armed fault fires at the next write it applies
to: `crash_in_persist` (the process dies during a consensus write, which does not land),
`crash_after_persist` (the write lands, the process dies before the step sends
anything), `write_fails` (a consensus write fails), `crash_after_execute` (a block is
written, the process dies before the replica hears of it), `ledger_fails` (a block's
write fails). A power loss is the world's event (`Disk.power_loss`).
"""
from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Callable

import nacl.bindings
import nacl.exceptions

from consensus.api import CommittedBatch, Request, StableCheckpoint, ValidatorSet
from consensus.fetched import FetchedBlock


class KeyedHashKeys:
    """Fast stand-in for Ed25519: identity i signs with a keyed BLAKE2b under its own
    secret; its public key is the secret's SHA-256. Verifying needs every secret, which
    only this object (the simulated world) holds; a Byzantine replica is handed only its
    own signer."""

    def __init__(self, secrets: list[bytes]):
        self.secrets = secrets
        self.public = [hashlib.sha256(s).digest() for s in secrets]
        self.identity = {key: i for i, key in enumerate(self.public)}

    def signer(self, me: int, validators: tuple[bytes, ...] | None = None) -> "KeyedHashCrypto":
        """Identity `me`'s Crypto, verifying by the numbering of `validators` (a set's
        keys in its order), or by identity when None (the whole pool)."""
        return KeyedHashCrypto(self, me, _numbering(self, validators))

    def tag(self, index: int, message: bytes) -> bytes:
        return hashlib.blake2b(message, key=self.secrets[index], digest_size=16).digest()


def _numbering(keys, validators) -> list[int] | None:
    """Replica index -> identity, for a set's keys (None: identity numbering). A key
    outside the pool gets -1, which no signature verifies under."""
    if validators is None:
        return None
    return [keys.identity.get(key, -1) for key in validators]


class KeyedHashCrypto:
    def __init__(self, keys: KeyedHashKeys, me: int, numbering: list[int] | None = None):
        self.keys, self.me, self.numbering = keys, me, numbering

    def sign(self, message: bytes) -> bytes:
        return self.keys.tag(self.me, message)

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        numbering = self.numbering
        if numbering is not None:
            if not 0 <= replica < len(numbering) or numbering[replica] < 0:
                return False
            replica = numbering[replica]
        if not 0 <= replica < len(self.keys.secrets):
            return False
        return hmac.compare_digest(self.keys.tag(replica, message), signature)


class Ed25519Keys:
    def __init__(self, seeds: list[bytes]):
        pairs = [nacl.bindings.crypto_sign_seed_keypair(seed) for seed in seeds]
        self.public = [pk for pk, _ in pairs]
        self.secret = [sk for _, sk in pairs]
        self.identity = {key: i for i, key in enumerate(self.public)}

    def signer(self, me: int, validators: tuple[bytes, ...] | None = None) -> "Ed25519Crypto":
        return Ed25519Crypto(self, me, _numbering(self, validators))


class Ed25519Crypto:
    def __init__(self, keys: Ed25519Keys, me: int, numbering: list[int] | None = None):
        self.keys, self.me, self.numbering = keys, me, numbering

    def sign(self, message: bytes) -> bytes:
        return nacl.bindings.crypto_sign(message, self.keys.secret[self.me])[:64]

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        numbering = self.numbering
        if numbering is not None:
            if not 0 <= replica < len(numbering) or numbering[replica] < 0:
                return False
            replica = numbering[replica]
        if not 0 <= replica < len(self.keys.public) or len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.keys.public[replica])
        except nacl.exceptions.BadSignatureError:
            return False
        return True


# A request whose payload starts with this names a new validator set (the simulated
# chain's `validators.set`): SET_PREFIX | u64 counter | u8 count | each 32-byte key.
SET_PREFIX = b"valset"


def set_change_keys(payload: bytes) -> tuple[bytes, ...] | None:
    """The keys a set-change payload names, in order, or None for any other payload."""
    if not payload.startswith(SET_PREFIX):
        return None
    body = payload[len(SET_PREFIX) + 8:]
    count = body[0]
    keys = tuple(body[1 + 32 * i:33 + 32 * i] for i in range(count))
    assert len(body) == 1 + 32 * count
    return keys


class Registry:
    """Every request clients made, by envelope: the door's verdict. An envelope the
    registry does not know is a bad one (malformed, forged or for another chain)."""

    def __init__(self):
        self.by_payload: dict[bytes, Request] = {}
        self.by_key: dict[bytes, Request] = {}

    def make(self, counter: int, padding: bytes, client: bytes | None = None) -> Request:
        """A request; by default its own client (the pool then orders like a plain
        queue), or one of `client`'s, whose requests share one client's room and turn."""
        payload = b"req" + counter.to_bytes(8, "big") + padding
        key = b"k" + counter.to_bytes(8, "big")
        request = Request(key, hashlib.sha256(payload).digest(), payload,
                          key if client is None else client)
        self.by_payload[payload] = request
        self.by_key[request.key] = request
        return request

    def make_set_change(self, counter: int, keys: tuple[bytes, ...]) -> Request:
        """A governance request that schedules the validator set `keys` (in that order)
        when it executes (the ledger's `Schedule`)."""
        assert 1 <= len(keys) < 256
        payload = SET_PREFIX + counter.to_bytes(8, "big") + bytes([len(keys)]) + b"".join(keys)
        key = b"s" + counter.to_bytes(8, "big")
        request = Request(key, hashlib.sha256(payload).digest(), payload, b"governance")
        self.by_payload[payload] = request
        self.by_key[request.key] = request
        return request

    def inspect(self, payloads) -> list[Request] | None:
        out = []
        for payload in payloads:
            request = self.by_payload.get(payload)
            if request is None:
                return None
            out.append(request)
        return out


def first_height(height: int, interval: int, margin: int) -> int:
    """The first height of a set enacted in the block at `height`: c + M + 1, c the first
    multiple of the checkpoint interval at or above it (chaincode/validators.py)."""
    return -(-height // interval) * interval + margin + 1


class Schedule:
    """The validator sets of the simulated chain, as its state keeps them: genesis's
    from height 1, then each change from the height its enacting block gave it. A change
    enacted while another is pending (its first height above the block) replaces it; one
    naming the newest scheduled set changes nothing (validators.set's invalid_state).
    `replaced` counts pending sets a later change replaced."""

    def __init__(self, genesis: ValidatorSet, interval: int, margin: int):
        self.sets: list[ValidatorSet] = [genesis]
        self.interval, self.margin = interval, margin
        self.replaced = 0

    def copy(self) -> "Schedule":
        other = Schedule(self.sets[0], self.interval, self.margin)
        other.sets, other.replaced = list(self.sets), self.replaced
        return other

    def enact(self, height: int, keys: tuple[bytes, ...]) -> bool:
        """A set change runs in block `height`; whether it changed the schedule."""
        if self.sets[-1].keys == keys:
            return False
        kept = [s for s in self.sets if s.first_height <= height]
        self.replaced += len(self.sets) - len(kept)
        first = first_height(height, self.interval, self.margin)
        self.sets = kept + [ValidatorSet(first, tuple(keys))]
        return True

    def in_force(self, height: int) -> ValidatorSet:
        """The set that orders `height`, as far as the blocks run so far tell."""
        found = self.sets[0]
        for s in self.sets:
            if s.first_height <= height:
                found = s
        return found

    def pending(self, height: int) -> ValidatorSet | None:
        """The set the blocks up to `height` scheduled to take over later (first height
        above `height`), if any: the ledger's `next_set` once `height` has run."""
        later = [s for s in self.sets if s.first_height > height]
        return later[-1] if later else None

    def newest(self, height: int) -> ValidatorSet:
        """What a checkpoint at `height` names: the pending set, else the one in force
        after the block."""
        return self.pending(height) or self.in_force(height + 1)


CRASH_IN_PERSIST, CRASH_AFTER_PERSIST, WRITE_FAILS = (
    "crash_in_persist", "crash_after_persist", "write_fails")
CRASH_AFTER_EXECUTE, LEDGER_FAILS, POWER_LOSS = (
    "crash_after_execute", "ledger_fails", "power_loss")
ARMED_FAULTS = (CRASH_IN_PERSIST, CRASH_AFTER_PERSIST, WRITE_FAILS, CRASH_AFTER_EXECUTE,
                LEDGER_FAILS)


class Crash(BaseException):
    """The process dies here, in the middle of a step (a BaseException, as nothing in the
    process may handle it: the world catches it and restarts the node later)."""


class StorageFault(Exception):
    """A write failed; nothing of it was written."""


class Disk:
    """What one node's consensus store and ledger share (see the module docstring)."""

    def __init__(self):
        self.armed: set[str] = set()
        self.fired: Counter[str] = Counter()
        self.undo: Callable[[], None] | None = None   # the last ledger transaction, unsynced
        self.lost = 0                                  # ledger transactions power losses undid

    def fire(self, kind: str) -> bool:
        if kind not in self.armed:
            return False
        self.armed.discard(kind)
        self.fired[kind] += 1
        return True

    def ledger_committed(self, undo: Callable[[], None]) -> None:
        """A ledger transaction committed; its flush carried the one before it to disk."""
        self.undo = undo

    def synced(self) -> None:
        """A consensus write: the whole environment is on disk."""
        self.undo = None

    def power_loss(self) -> None:
        self.fired[POWER_LOSS] += 1
        if self.undo is not None:
            self.undo()
            self.undo = None
            self.lost += 1


class DictStorage:
    """consensus.api.Storage: each write atomic and on disk when it returns."""

    def __init__(self, disk: Disk | None = None):
        self.data: dict[bytes, bytes] = {}
        self.disk = disk if disk is not None else Disk()

    def write(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        disk = self.disk
        if disk.armed:
            if disk.fire(WRITE_FAILS):
                raise StorageFault("the consensus store refused a write")
            if disk.fire(CRASH_IN_PERSIST):
                raise Crash("died while persisting")
        for key, value in ops:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        disk.synced()
        if disk.armed and disk.fire(CRASH_AFTER_PERSIST):
            raise Crash("died after persisting, before sending")

    def items(self) -> list[tuple[bytes, bytes]]:
        return sorted(self.data.items())


def block_hash(prev_hash: bytes, height: int, digest: bytes) -> bytes:
    """The simulated ledger's block hash: SHA-256(previous hash, height, batch digest)."""
    return hashlib.sha256(prev_hash + height.to_bytes(8, "big") + digest).digest()


def header_hash(block: FetchedBlock) -> bytes:
    """consensus.fetched.HeaderHash for the simulated ledger's blocks."""
    return block_hash(block.prev_hash, block.height, block.batch_digest)


class HashChainLedger:
    """Execution stand-in: block hash = `block_hash`; a key executes once, later copies are
    duplicates. A set-change request (`SET_PREFIX`) that executes the first time changes
    the schedule of validator sets (`Schedule`), which `next_set` answers from. Survives
    crashes, like the disk, but for what a power loss takes."""

    def __init__(self, on_block, on_checkpoint, disk: Disk | None = None,
                 schedule: Schedule | None = None):
        self.schedule = schedule        # None: genesis's set for ever (no set changes)
        self.blocks: list[CommittedBatch] = []
        self.hashes: list[bytes] = []
        self.executed_keys: dict[bytes, int] = {}
        self.duplicates = 0
        self.last_time_ms = 0
        self.checkpoints: dict[int, StableCheckpoint] = {}
        self.on_block, self.on_checkpoint = on_block, on_checkpoint
        self.disk = disk if disk is not None else Disk()

    @property
    def height(self) -> int:
        return len(self.blocks)

    @property
    def head_hash(self) -> bytes:
        return self.hashes[-1] if self.hashes else bytes(32)

    def execute(self, batch: CommittedBatch) -> bytes:
        disk = self.disk
        if disk.armed and disk.fire(LEDGER_FAILS):
            raise StorageFault(f"the ledger refused block {batch.height}")
        self.on_block(self, batch)
        hash_ = block_hash(self.head_hash, batch.height, batch.digest)
        self.blocks.append(batch)
        self.hashes.append(hash_)
        fresh, duplicates = [], 0
        schedule = self.schedule
        for request in batch.requests:
            if request.key in self.executed_keys:
                duplicates += 1
            else:
                self.executed_keys[request.key] = batch.height
                fresh.append(request.key)
                keys = set_change_keys(request.payload)
                if keys is not None and schedule is not None:
                    if self.schedule is schedule:
                        self.schedule = schedule.copy()     # the undo keeps the old one
                    self.schedule.enact(batch.height, keys)
        self.duplicates += duplicates
        last_time_ms = self.last_time_ms
        if batch.time_ms:
            self.last_time_ms = max(self.last_time_ms, batch.time_ms)

        def undo() -> None:
            self.schedule = schedule
            self.blocks.pop()
            self.hashes.pop()
            for key in fresh:
                del self.executed_keys[key]
            self.duplicates -= duplicates
            self.last_time_ms = last_time_ms
        disk.ledger_committed(undo)
        if disk.armed and disk.fire(CRASH_AFTER_EXECUTE):
            raise Crash(f"died after executing block {batch.height}")
        return hash_

    def next_set(self) -> ValidatorSet | None:
        """consensus.api.Ledger.next_set: the set the blocks run here scheduled to take
        over after this height, if any."""
        return None if self.schedule is None else self.schedule.pending(self.height)

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None:
        self.on_checkpoint(self, checkpoint)
        before = self.checkpoints.get(checkpoint.height)
        self.checkpoints[checkpoint.height] = checkpoint

        def undo() -> None:
            if before is None:
                del self.checkpoints[checkpoint.height]
            else:
                self.checkpoints[checkpoint.height] = before
        self.disk.ledger_committed(undo)

    def serve(self, first: int, last: int) -> list[FetchedBlock]:
        """The stored blocks from `first` to `last`, as a catch-up answer carries them."""
        out = []
        for height in range(max(first, 1), min(last, self.height) + 1):
            batch = self.blocks[height - 1]
            out.append(FetchedBlock(height, batch.view, batch.time_ms,
                                    self.hashes[height - 2] if height > 1 else bytes(32),
                                    self.hashes[height - 1], batch.digest,
                                    tuple(r.payload for r in batch.requests),
                                    batch.certificate))
        return out

