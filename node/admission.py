"""Fair admission at the door: who may ask the validators to order a transaction.

An envelope that passed the door (node/envelope.py: well formed, this chain, well signed)
is then asked about its signer, in this order:

1. Membership. A key that is not an active member is refused at once with the code the
   chaincode would give (`unknown_member`, `revoked`, `frozen`), before it is ordered:
   a flood from fresh keys costs a signature check and a read each, and is never stored
   in a block. The read is the chaincode's read model through the store (`store_lookup`);
   an "active" answer is kept `member_ttl_ms` in a bounded cache (`members_cached`
   answers, least recently used dropped), no other answer is (a key registered a moment
   ago gets in on its first try). The chaincode still decides in the block: a stale
   "active" (a key revoked or frozen within the TTL) only means the block rejects the
   transaction, as it would have without this check.
   A key about to become a member is let in too: one that an admitted transaction of
   staff names as the member it registers or recovers to (`member.register`'s `key`,
   `member.recover`'s `new`, or the same in a `gov.propose`), for `expected_ms` after
   it (at most `expected_kept` such keys), so that an app may submit a new member's first
   transaction right after the registration, as it could before this check; the block
   decides, in order.
2. Share. Each citizen or merchant has a token bucket: `burst` envelopes at once,
   refilled at `rate_per_s`; past it the answer is `over_share` with the seconds after
   which one more will be let in (a gateway answers 429 with Retry-After). Staff keys
   (admin, reviewer, auditor, steward: a few keys of the partners, whose misuse is a
   matter for governance) are not bucketed, so a municipality's batch of thousands of
   approvals goes through at the network's pace. Only members get a bucket, so keys
   that are not members cannot push the buckets of members out of the bounded memory
   (at most `buckets`, least recently used dropped: a dropped signer comes back with a
   full bucket).

What it does not do: order anything or hold a place. The request pool shares its room
and every batch fairly among signers (consensus/requests.py); this object only keeps one
signer from submitting faster than its share through this node. Envelopes a peer
forwards were admitted (or not) by that peer's gateway: `member` answers step 1 alone for
them, since a correct peer forwards a request again if its first forward was lost and a
bucket would count it twice; the pool's per-signer share holds the rest (`forwarded`).

Pure but for the injected clock (ms, monotonic) and lookup; not thread-safe (the node
calls it from its event loop).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

from chaincode import queries
from chaincode.api import Tx
from node.envelope import OK, Door

# what the lookup answers about a key: an active citizen or merchant, active staff, or not
ACTIVE, STAFF = "active", "staff"
NOT_MEMBER, REVOKED, FROZEN = "not_member", "revoked", "frozen"
BUCKETED_ROLES = frozenset(("citizen", "merchant"))

# the answer's codes: admitted, the chaincode's refusals, or over this signer's share
ADMITTED = "ok"
UNKNOWN_MEMBER = "unknown_member"
OVER_SHARE = "over_share"
REFUSALS = {NOT_MEMBER: UNKNOWN_MEMBER, REVOKED: "revoked", FROZEN: "frozen"}

MILLI = 1000        # a bucket counts thousandths of an envelope: exact integer refills


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    # envelopes a signer may submit a second, sustained, and at once: far above what a
    # person does, and an admin's batch of 1,000 fits; the bench's spenders (a key per
    # 15,000 spends) stay under it up to 100 tx/s per key
    rate_per_s: int = 100
    burst: int = 1_000
    buckets: int = 100_000          # signers' buckets kept, least recently used dropped
    member_ttl_ms: int = 2_000      # how long an "active" answer is believed
    members_cached: int = 100_000   # "active" answers kept, least recently used dropped
    expected_ms: int = 60_000       # how long a key being registered is let in
    expected_kept: int = 10_000     # such keys kept, oldest dropped

    def __post_init__(self) -> None:
        for name in ("rate_per_s", "burst", "buckets", "members_cached", "expected_kept"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.member_ttl_ms < 0 or self.expected_ms < 0:
            raise ValueError("member_ttl_ms and expected_ms must not be negative")


@dataclass(frozen=True, slots=True)
class Answer:
    code: str               # ADMITTED, UNKNOWN_MEMBER, "revoked", "frozen" or OVER_SHARE
    retry_after_s: int = 0  # OVER_SHARE: whole seconds until one more is let in (>= 1)

    @property
    def admitted(self) -> bool:
        return self.code == ADMITTED


YES = Answer(ADMITTED)


class Admission:
    def __init__(self, lookup: Callable[[bytes], str], clock_ms: Callable[[], int],
                 limits: AdmissionLimits = AdmissionLimits()):
        """`lookup(key)`: ACTIVE, STAFF, NOT_MEMBER, REVOKED or FROZEN (see
        `store_lookup`); `clock_ms()`: a monotonic clock in milliseconds."""
        self.lookup, self.clock_ms, self.limits = lookup, clock_ms, limits
        # key -> (believed until, bucketed)
        self._members: OrderedDict[bytes, tuple[int, bool]] = OrderedDict()
        self._expected: OrderedDict[bytes, int] = OrderedDict()    # key -> let in until
        self._buckets: OrderedDict[bytes, list[int]] = OrderedDict()  # [milli-tokens, at ms]
        self.lookups = 0        # reads of the read model so far

    def admit(self, tx: Tx) -> Answer:
        """Whether a verified transaction may go on to the pool now; admitted takes one
        envelope from its signer's bucket (citizens and merchants), and a staff
        transaction that registers a member lets that key in from now on."""
        now = self.clock_ms()
        signer = tx.signer
        answer, bucketed = self._member(signer, now)
        if answer is not YES:
            return answer
        if bucketed:
            return self._take(signer, now)
        for key in named_members(tx):
            self._expected[key] = now + self.limits.expected_ms
            self._expected.move_to_end(key)
            if len(self._expected) > self.limits.expected_kept:
                self._expected.popitem(last=False)
        return YES

    def member(self, signer: bytes) -> Answer:
        """Step 1 alone: admitted, or the chaincode's refusal (forwarded envelopes)."""
        return self._member(signer, self.clock_ms())[0]

    def forget(self, signer: bytes) -> None:
        """Drop a believed "active" at once (the node may call it when a block revokes
        or freezes a key; without it the answer lapses after member_ttl_ms)."""
        self._members.pop(signer, None)

    def __len__(self) -> int:
        """Signers with a bucket."""
        return len(self._buckets)

    @property
    def cached_members(self) -> int:
        return len(self._members)

    def _member(self, signer: bytes, now: int) -> tuple[Answer, bool]:
        """The answer of step 1 and whether the signer is bucketed."""
        known = self._members.get(signer)
        if known is not None and now < known[0]:
            self._members.move_to_end(signer)
            return YES, known[1]
        self.lookups += 1
        status = self.lookup(signer)
        if status in (ACTIVE, STAFF):
            self._members[signer] = (now + self.limits.member_ttl_ms, status == ACTIVE)
            self._members.move_to_end(signer)
            if len(self._members) > self.limits.members_cached:
                self._members.popitem(last=False)
            return YES, status == ACTIVE
        self._members.pop(signer, None)
        code = REFUSALS.get(status)
        if code is None:
            raise ValueError(f"membership lookup answered {status!r}")
        expected = self._expected.get(signer)
        if status == NOT_MEMBER and expected is not None:
            if now < expected:
                return YES, True
            del self._expected[signer]
        return Answer(code), False

    def _take(self, signer: bytes, now: int) -> Answer:
        limits = self.limits
        full = limits.burst * MILLI
        bucket = self._buckets.get(signer)
        if bucket is None:
            bucket = self._buckets[signer] = [full, now]
            if len(self._buckets) > limits.buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(signer)
            # rate_per_s envelopes a second is rate_per_s thousandths a millisecond
            bucket[0] = min(full, bucket[0] + max(0, now - bucket[1]) * limits.rate_per_s)
            bucket[1] = now
        if bucket[0] >= MILLI:
            bucket[0] -= MILLI
            return YES
        wait_ms = -(-(MILLI - bucket[0]) // limits.rate_per_s)
        return Answer(OVER_SHARE, max(1, -(-wait_ms // 1000)))


def member_status(record: dict | None) -> str:
    """The lookup's answer for a member record as chaincode.queries.member gives it, in
    the chaincode's order of checks (unknown_member, revoked, frozen)."""
    if record is None:
        return NOT_MEMBER
    if not record["active"]:
        return REVOKED
    if "frozen" in record:        # as chaincode/v1.py checks it
        return FROZEN
    return ACTIVE if record["role"] in BUCKETED_ROLES else STAFF


def named_members(tx: Tx) -> tuple[bytes, ...]:
    """The keys a transaction makes members of, when its block accepts it: the key it
    registers or the new key it recovers to, signed directly or proposed to governance.
    Arguments of the wrong shape name nothing (the chaincode refuses them anyway)."""
    kind, args = tx.kind, tx.args
    if kind == "gov.propose":
        kind, args = args.get("action"), args.get("args")
        if type(args) is not dict:
            return ()
    field = {"member.register": "key", "member.recover": "new"}.get(kind)
    key = args.get(field) if field else None
    return (key,) if type(key) is bytes and len(key) == 32 else ()


def store_lookup(store) -> Callable[[bytes], str]:
    """The lookup over a node's store: one read of the member record, no transaction
    held after it returns."""
    def lookup(key: bytes) -> str:
        return member_status(queries.member(store, key))
    return lookup


def forwarded(admission: Admission, door: Door, payloads: Sequence[bytes],
              executed=None) -> tuple[bytes, ...]:
    """The envelopes of a peer's Forward that this node takes: those that pass the door
    and whose signer is an active member (step 1), in their order. A Byzantine peer's
    junk from throwaway keys stops here, as it would at this node's own gateway; the
    door remembers what it verified, so the replica's own check costs nothing more.
    With `executed` (raw tx ids -> whether each was executed, Store.executed), not those
    executed already: nobody orders them again, so in the pool they would wait for ever
    (one ordered below a synced state is not among the keys its replica knows ordered)."""
    kept = [(payload, verdict) for payload, verdict in zip(payloads, door.admit(payloads))
            if verdict.code == OK and admission.member(verdict.opened.tx.signer).admitted]
    if executed is not None and kept:
        done = executed([bytes.fromhex(verdict.tx_id) for _, verdict in kept])
        kept = [item for item, was in zip(kept, done) if not was]
    return tuple(payload for payload, _ in kept)
