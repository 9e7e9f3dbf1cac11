"""Fair admission at the door (node/admission.py): non-members refused with the
chaincode's code before ordering, a token bucket per signer, bounded memory, a cheap and
bounded membership cache. A fake clock and a dict of members stand in for the node."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ledger_kit import CHAIN, T0, HOUR_MS, certified, keypair, make_genesis
from chaincode.api import Tx
from node.admission import (ACTIVE, ADMITTED, FROZEN, NOT_MEMBER, OVER_SHARE, REVOKED,
                            STAFF, Admission, AdmissionLimits, forwarded, member_status,
                            named_members, store_lookup)
from node.envelope import Door, sign_tx
from node.executor import open_ledger


class Clock:
    def __init__(self, now_ms: int = 1_000):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Members:
    """The read model's answers, counting reads."""

    def __init__(self, **status: str):
        self.status = {name.encode(): s for name, s in status.items()}
        self.reads = 0

    def __call__(self, key: bytes) -> str:
        self.reads += 1
        return self.status.get(key, NOT_MEMBER)


def tx(signer: bytes, kind: str = "coin.spend", **args) -> Tx:
    """A verified transaction of `signer`, as the door hands it over."""
    return Tx("00" * 32, signer, kind, args)


def admission(members: Members, clock: Clock, **limits) -> Admission:
    return Admission(members, clock, AdmissionLimits(**limits))


def test_only_active_members_are_admitted_and_others_get_the_chaincode_code():
    members = Members(alice=ACTIVE, bob=REVOKED, carol=FROZEN)
    door = admission(members, Clock())
    assert door.admit(tx(b"alice")).admitted
    answers = {name: door.admit(tx(name.encode())) for name in ("bob", "carol", "mallory")}
    assert {n: a.code for n, a in answers.items()} == {
        "bob": "revoked", "carol": "frozen", "mallory": "unknown_member"}
    assert not any(a.admitted or a.retry_after_s for a in answers.values())
    assert len(door) == 1               # refused keys get no bucket


def test_a_lookup_answer_outside_the_vocabulary_is_an_error_not_an_admission():
    door = Admission(lambda key: "maybe", Clock())
    with pytest.raises(ValueError):
        door.admit(tx(b"alice"))


def test_the_bucket_refuses_past_the_burst_and_says_when_to_retry():
    clock = Clock()
    door = admission(Members(alice=ACTIVE, bob=ACTIVE), clock, rate_per_s=2, burst=5)
    assert all(door.admit(tx(b"alice")).admitted for _ in range(5))
    refused = door.admit(tx(b"alice"))
    assert refused.code == OVER_SHARE and refused.retry_after_s == 1
    assert door.admit(tx(b"bob")).admitted          # one signer's share is its own


def test_the_bucket_refills_with_time_up_to_the_burst():
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=2, burst=5)
    for _ in range(5):
        door.admit(tx(b"alice"))
    clock.now_ms += 499                          # 0.998 of an envelope
    assert door.admit(tx(b"alice")).code == OVER_SHARE
    clock.now_ms += 1                            # one
    assert door.admit(tx(b"alice")).admitted
    assert door.admit(tx(b"alice")).code == OVER_SHARE
    clock.now_ms += 3_600_000                    # an hour: only the burst, not 7,200
    assert sum(door.admit(tx(b"alice")).admitted for _ in range(10)) == 5


def test_retry_after_is_whole_seconds_rounded_up():
    """At a rate of at least one a second, one more envelope is due within a second."""
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=1, burst=1)
    door.admit(tx(b"alice"))
    assert door.admit(tx(b"alice")).retry_after_s == 1       # 1,000 ms to go
    clock.now_ms += 999
    assert door.admit(tx(b"alice")).retry_after_s == 1       # 1 ms to go


def test_a_clock_that_steps_back_refills_nothing():
    clock = Clock(10_000)
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=10, burst=1)
    door.admit(tx(b"alice"))
    clock.now_ms = 0
    assert door.admit(tx(b"alice")).code == OVER_SHARE
    clock.now_ms = 100                           # 100 ms after the step back: one more
    assert door.admit(tx(b"alice")).admitted


def test_buckets_are_bounded_and_the_least_recently_used_goes_first():
    clock = Clock()
    names = [f"m{i}" for i in range(5)]
    door = admission(Members(**{n: ACTIVE for n in names}), clock, rate_per_s=1, burst=1,
                     buckets=3)
    for name in names[:3]:
        assert door.admit(tx(name.encode())).admitted
    assert door.admit(tx(b"m0")).code == OVER_SHARE   # m0 used again: now the most recent
    door.admit(tx(b"m3"))                              # pushes out m1, the least recent
    assert len(door) == 3
    assert door.admit(tx(b"m0")).code == OVER_SHARE   # still remembered: still empty
    assert door.admit(tx(b"m1")).admitted             # forgotten: back with a full bucket


def test_non_members_cannot_push_members_buckets_out():
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=1, burst=1, buckets=2)
    door.admit(tx(b"alice"))
    for i in range(1_000):
        assert door.admit(tx(b"fresh-%d" % i)).code == "unknown_member"
    assert door.admit(tx(b"alice")).code == OVER_SHARE and len(door) == 1


def test_an_active_answer_is_believed_for_its_ttl_only_and_others_never():
    clock = Clock()
    members = Members(alice=ACTIVE)
    door = admission(members, clock, member_ttl_ms=2_000)
    for _ in range(100):
        door.admit(tx(b"alice"))
        door.admit(tx(b"mallory"))
    assert members.reads == 1 + 100             # alice once; a non-member every time
    members.status[b"alice"] = REVOKED          # a block revokes her
    clock.now_ms += 1_999
    assert door.admit(tx(b"alice")).admitted        # stale: the block would reject it
    clock.now_ms += 1
    assert door.admit(tx(b"alice")).code == "revoked"
    members.status[b"mallory"] = ACTIVE         # registered a moment ago: in at once
    assert door.admit(tx(b"mallory")).admitted


def test_forget_drops_a_believed_answer_at_once():
    members = Members(alice=ACTIVE)
    door = admission(members, Clock())
    door.admit(tx(b"alice"))
    members.status[b"alice"] = FROZEN
    door.forget(b"alice")
    assert door.admit(tx(b"alice")).code == "frozen"


def test_the_membership_cache_is_bounded():
    clock = Clock()
    members = Members(**{f"m{i}": ACTIVE for i in range(10)})
    door = admission(members, clock, members_cached=4)
    for i in range(10):
        door.member(b"m%d" % i)
    assert door.cached_members == 4
    reads = members.reads
    door.member(b"m9")                           # kept
    door.member(b"m0")                           # dropped: read again
    assert members.reads == reads + 1


def test_member_answers_membership_alone_and_takes_no_token():
    door = admission(Members(alice=ACTIVE), Clock(), rate_per_s=1, burst=1)
    for _ in range(10):
        assert door.member(b"alice").admitted
    assert door.admit(tx(b"alice")).admitted and len(door) == 1
    assert door.member(b"bob").code == "unknown_member"


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3_000)), max_size=300),
       st.integers(1, 20), st.integers(1, 30))
@settings(max_examples=100, deadline=None)
def test_no_signer_gets_more_than_its_burst_plus_what_the_rate_refills(steps, rate, burst):
    clock = Clock(0)
    names = [b"s%d" % i for i in range(10)]
    door = Admission(Members(**{n.decode(): ACTIVE for n in names}), clock,
                     AdmissionLimits(rate_per_s=rate, burst=burst))
    admitted = {n: 0 for n in names}
    first: dict[bytes, int] = {}
    for who, advance_ms in steps:
        clock.now_ms += advance_ms
        name = names[who]
        first.setdefault(name, clock.now_ms)
        answer = door.admit(tx(name))
        if answer.admitted:
            admitted[name] += 1
        else:
            assert answer.code == OVER_SHARE and answer.retry_after_s == 1
        assert admitted[name] <= burst + (clock.now_ms - first[name]) * rate // 1000
    # and one that waits a second's worth between envelopes is never refused
    clock.now_ms += 10 ** 9
    for _ in range(50):
        clock.now_ms += -(-1000 // rate)
        assert door.admit(tx(names[0])).admitted


def test_member_status_follows_the_chaincode_order_of_checks():
    assert member_status(None) == NOT_MEMBER
    assert member_status({"active": False, "frozen": True}) == REVOKED
    assert member_status({"active": True, "frozen": True}) == FROZEN
    assert member_status({"active": True, "role": "citizen"}) == ACTIVE
    assert member_status({"active": True, "role": "merchant"}) == ACTIVE
    for role in ("admin", "reviewer", "auditor", "steward"):
        assert member_status({"active": True, "role": role}) == STAFF


def test_the_store_lookup_reads_the_chaincode_read_model(tmp_path, admin):
    executor = open_ledger(tmp_path, make_genesis(admin))
    citizen, shop, stranger = keypair("citizen"), keypair("shop"), keypair("stranger")
    blocks = [
        [sign_tx(admin, CHAIN, "member.register", {"key": citizen.public, "role": "citizen",
                                                   "age_band": "21plus", "area": "GMS"}),
         sign_tx(admin, CHAIN, "member.register", {"key": shop.public, "role": "merchant",
                                                   "name": "Bakkerij"})],
        [sign_tx(admin, CHAIN, "member.revoke", {"key": shop.public})],
    ]
    for height, envelopes in enumerate(blocks, 1):
        executor.execute(certified(executor, height, T0 + height * HOUR_MS, envelopes))
    lookup = store_lookup(executor.store)
    assert lookup(admin.public) == STAFF
    assert lookup(citizen.public) == ACTIVE
    assert lookup(shop.public) == REVOKED
    assert lookup(stranger.public) == NOT_MEMBER
    door = Admission(lookup, Clock())
    assert door.admit(tx(citizen.public)).code == ADMITTED
    assert door.admit(tx(stranger.public)).code == "unknown_member"


def test_a_forward_keeps_only_members_envelopes_that_pass_the_door_in_order():
    alice, bob, junk = keypair("alice"), keypair("bob"), keypair("throwaway")
    members = Members()
    members.status = {alice.public: ACTIVE, bob.public: REVOKED}
    door = Door(CHAIN)
    spend = {"to": bob.public, "amount": 1}
    good = [sign_tx(alice, CHAIN, "coin.spend", spend, nonce=n) for n in range(3)]
    payloads = (good[0], sign_tx(junk, CHAIN, "coin.spend", spend, nonce=1), good[1],
                sign_tx(bob, CHAIN, "coin.spend", spend, nonce=1), b"\x00not an envelope",
                sign_tx(alice, "another-chain", "coin.spend", spend, nonce=9), good[2])
    gate = Admission(members, Clock(), AdmissionLimits(rate_per_s=1, burst=1))
    assert forwarded(gate, door, payloads) == tuple(good)
    assert forwarded(gate, door, payloads) == tuple(good)   # no bucket: forwarded again
    checks = door.signature_checks
    assert door.inspect(good) is not None and door.signature_checks == checks


def test_staff_are_not_bucketed_so_a_batch_of_approvals_goes_through():
    door = admission(Members(admin=STAFF, alice=ACTIVE), Clock(), rate_per_s=1, burst=2)
    assert all(door.admit(tx(b"admin")).admitted for _ in range(5_000))
    assert [door.admit(tx(b"alice")).code for _ in range(3)] == [ADMITTED, ADMITTED,
                                                                 OVER_SHARE]
    assert len(door) == 1


def test_a_key_that_staff_register_is_let_in_before_its_block_for_a_while():
    clock = Clock()
    members = Members(admin=STAFF, alice=ACTIVE)
    door = admission(members, clock, expected_ms=60_000, rate_per_s=1, burst=1)
    fresh, other = b"n" * 32, b"o" * 32
    assert door.admit(tx(fresh)).code == "unknown_member"
    assert door.admit(tx(b"admin", "member.register", key=fresh, role="citizen")).admitted
    assert door.admit(tx(fresh)).admitted
    assert door.admit(tx(fresh)).code == OVER_SHARE      # bucketed like a citizen
    # a citizen naming a key makes nothing of it, nor does a wrong shape
    assert door.admit(tx(b"alice", "coin.spend", to=other, amount=1)).admitted
    assert door.admit(tx(b"admin", "member.register", key="not bytes")).admitted
    assert door.admit(tx(other)).code == "unknown_member"
    clock.now_ms += 60_000
    assert door.admit(tx(fresh)).code == "unknown_member"   # the block never came


def test_the_keys_a_transaction_makes_members_of():
    key, new = b"k" * 32, b"n" * 32
    assert named_members(tx(b"a", "member.register", key=key)) == (key,)
    assert named_members(tx(b"a", "member.recover", old=key, new=new)) == (new,)
    assert named_members(tx(b"a", "gov.propose", action="member.register",
                            args={"key": key})) == (key,)
    assert named_members(tx(b"a", "gov.propose", action="member.recover",
                            args={"old": key, "new": new})) == (new,)
    assert named_members(tx(b"a", "gov.propose", action="member.register",
                            args=[key])) == ()
    assert named_members(tx(b"a", "member.revoke", key=key)) == ()
    assert named_members(tx(b"a", "member.register", key=b"short")) == ()


def test_the_keys_being_registered_are_bounded():
    members = Members(admin=STAFF)
    door = admission(members, Clock(), expected_kept=3)
    keys = [bytes([i]) * 32 for i in range(5)]
    for key in keys:
        door.admit(tx(b"admin", "member.register", key=key))
    assert [door.admit(tx(k)).admitted for k in keys] == [False, False, True, True, True]
