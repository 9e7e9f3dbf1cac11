"""Key layout, value encoding, and the buffered view of the state during a block.

Keys (all bytes; `K` is a 32-byte public key, `T` a task id and `O` an organisation id
as ASCII with its length in one byte in front, so no id is a prefix of another's key):

    g/admins              number of active admins                      msgpack int
    g/minted, g/redeemed  totals in cents                              msgpack int
    g/policy-years        years that have a policy, ascending          msgpack array
    p/ + u16be(year)      the cap policy of that year                  msgpack map
    m/ + K                a member                                     msgpack map
    x/ + tx id (32 bytes) an executed transaction id; for a spend the
                          spend [from, to, amount, refunded], else ""  bytes
    t/ + T                a task                                       msgpack map
    k/ + T + K            a citizen's claim on a task                  msgpack map
    i/ + K + T            index of a citizen's claims (for recovery)   empty
    r/ + K                a citizen's reservations                     msgpack map
    e/ + K + period       a citizen's earnings in "YYYY-MM" or "YYYY"  msgpack int
    o/ + payout (32)      a payout                                     msgpack map
    q/ + K + payout (32)  index of a merchant's pending payouts        empty
    g/constitution        organisations, thresholds, recovery delay    msgpack map
    g/validators          the genesis validators [{key, name, organisation}] msgpack array
    g/validator-sets      validator set changes
                          [[from, [[name, key, organisation], ...]]]  msgpack array
    g/rules               rules activations [[first height, version]]  msgpack array
    s/ + O + K            index of an organisation's active stewards   empty
    v/ + proposal (32)    a governance proposal                        msgpack map
    w/ + O + proposal(32) index of an organisation's open proposals:
                          the proposal's expiry                        msgpack int
    y/ + K                an open delayed recovery of key K            msgpack map
    z/ + K                the old key whose open recovery moves to K   bin (32)

Values are msgpack with maps' keys in ascending byte order, integers in their smallest
encoding, text as str and keys, hashes and proofs as bin: one value has one encoding, so
every implementation that follows docs/chaincode.md reaches the same state root.
"""
from __future__ import annotations

import struct

import msgpack

ADMINS = b"g/admins"
MINTED = b"g/minted"
REDEEMED = b"g/redeemed"
POLICY_YEARS = b"g/policy-years"
POLICY = b"p/"
MEMBER = b"m/"
EXECUTED = b"x/"
TASK = b"t/"
CLAIM = b"k/"
CLAIM_INDEX = b"i/"
RESERVED = b"r/"
EARNED = b"e/"
PAYOUT = b"o/"
PAYOUT_INDEX = b"q/"
CONSTITUTION = b"g/constitution"
VALIDATORS = b"g/validators"
RULES = b"g/rules"
VALIDATOR_SETS = b"g/validator-sets"
STEWARDS = b"s/"
PROPOSAL = b"v/"
OPEN_PROPOSALS = b"w/"
RECOVERY = b"y/"
RECOVERY_TO = b"z/"

_U16 = struct.Struct(">H")
# One reusable packer: packb would build a new one for every value (no state is kept
# between calls; autoreset returns each value's bytes on its own).
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_unpackb = msgpack.unpackb


def task_part(task: str) -> bytes:
    raw = task.encode("ascii")
    assert 1 <= len(raw) <= 64
    return bytes((len(raw),)) + raw


def org_part(organisation: str) -> bytes:
    return task_part(organisation)


def steward_key(organisation: str, key: bytes) -> bytes:
    return STEWARDS + org_part(organisation) + key


def policy_key(year: int) -> bytes:
    return POLICY + _U16.pack(year)


def member_key(key: bytes) -> bytes:
    return MEMBER + key


def task_key(task: str) -> bytes:
    return TASK + task_part(task)


def claim_key(task: str, citizen: bytes) -> bytes:
    return CLAIM + task_part(task) + citizen


def claim_index_key(citizen: bytes, task: str) -> bytes:
    return CLAIM_INDEX + citizen + task_part(task)


def earned_key(citizen: bytes, period: str) -> bytes:
    return EARNED + citizen + period.encode("ascii")


def pack(value) -> bytes:
    """The one encoding of a state value: maps with sorted keys, at every depth."""
    return _packb(canonical(value))


_LEAVES = frozenset((str, bytes, int, bool, type(None)))


def canonical(value):
    # only containers recurse: a call per scalar cost more than the sorting
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _LEAVES else canonical(v) for k, v in sorted(value.items())}
    if kind is list or kind is tuple:
        return [v if type(v) in _LEAVES else canonical(v) for v in value]
    return value


def pack_ordered(value) -> bytes:
    """pack() for a value whose maps are in canonical order already."""
    return _packb(value)


def pack_scalars(values: list) -> bytes:
    """pack() for an array of scalars."""
    return _packb(values)


def pack_flat(record: dict) -> bytes:
    """pack() for a map whose values are scalars: the hot path's cheaper form."""
    return _packb(dict(sorted(record.items())))


def unpack(raw: bytes):
    return _unpackb(raw, raw=False, strict_map_key=False)


class Overlay:
    """Reads through two write buffers (this transaction's, then the block's) to the base.

    A transaction writes into its own buffer; `commit` folds it into the block's buffer
    and `discard` drops it, which is how a rejected transaction changes nothing. The first
    read of every key from the base is kept in `original`, so the state root can subtract
    the old entries without reading them twice.
    """

    __slots__ = ("base", "original", "block", "tx", "max_writes")

    def __init__(self, base, max_writes: int = 10_000_000):
        self.base = base
        self.original: dict[bytes, bytes | None] = {}
        self.block: dict[bytes, bytes | None] = {}
        self.tx: dict[bytes, bytes | None] = {}
        self.max_writes = max_writes

    def get(self, key: bytes) -> bytes | None:
        tx = self.tx
        if key in tx:
            return tx[key]
        block = self.block
        if key in block:
            return block[key]
        original = self.original
        if key in original:
            return original[key]
        value = self.base.get(key)
        original[key] = value
        return value

    def put(self, key: bytes, value: bytes | None) -> None:
        self.tx[key] = value

    def commit(self) -> None:
        self.block.update(self.tx)
        self.tx = {}
        assert len(self.block) <= self.max_writes, "a block wrote more keys than allowed"

    def discard(self) -> None:
        self.tx = {}

    def savepoint(self) -> dict:
        """This transaction's writes so far, to roll back to (a governed action that
        fails undoes its own writes, not the approval that ran it)."""
        return dict(self.tx)

    def rollback(self, saved: dict) -> None:
        self.tx = saved

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Live entries under prefix, ascending, as this transaction sees them.

        Costs the base's range plus one pass over the buffers: used only by the rare
        kinds that need a range (cancel, recover).
        """
        merged = dict(self.base.scan(prefix))
        for buffer in (self.block, self.tx):
            for key, value in buffer.items():
                if key.startswith(prefix):
                    merged[key] = value
        return [(k, merged[k]) for k in sorted(merged) if merged[k] is not None]

    def net_writes(self) -> tuple[dict, dict]:
        """(old values, new values) of every key the block changed."""
        assert not self.tx, "a transaction was neither committed nor discarded"
        old, new = {}, {}
        original = self.original
        for key, value in self.block.items():
            before = original[key] if key in original else self.base.get(key)
            if before != value:
                old[key] = before
                new[key] = value
        return old, new


def get_member(view, key: bytes) -> dict | None:
    raw = view.get(MEMBER + key)
    return None if raw is None else _unpackb(raw, raw=False)


def put_member(view, key: bytes, record: dict, ordered: bool = False) -> None:
    """Store a member; `ordered` says the record came from get_member with only values
    changed, so its keys are already in canonical order and need no sorting."""
    assert record["balance"] >= 0, "a balance went negative"
    view.put(MEMBER + key, _packb(record) if ordered else pack_flat(record))


def get_int(view, key: bytes) -> int:
    raw = view.get(key)
    return 0 if raw is None else _unpackb(raw)


def current_key(view, key: bytes) -> bytes:
    """Follow recoveries from a key to the key that holds its account now."""
    for _ in range(1_000_000):
        raw = view.get(MEMBER + key)
        if raw is None:
            return key
        moved = _unpackb(raw, raw=False).get("recovered_to")
        if moved is None:
            return key
        key = moved
    raise AssertionError("recovery chain too long")  # pragma: no cover
