"""Fair admission at the door (node/admission.py): non-members refused with the
chaincode's code before ordering, a token bucket per signer, bounded memory, a cheap and
bounded membership cache. A fake clock and a dict of members stand in for the node."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ledger_kit import CHAIN, T0, HOUR_MS, certified, keypair, make_genesis
from node.admission import (ACTIVE, ADMITTED, FROZEN, NOT_MEMBER, OVER_SHARE, REVOKED,
                            Admission, AdmissionLimits, forwarded, member_status,
                            store_lookup)
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


def admission(members: Members, clock: Clock, **limits) -> Admission:
    return Admission(members, clock, AdmissionLimits(**limits))


def test_only_active_members_are_admitted_and_others_get_the_chaincode_code():
    members = Members(alice=ACTIVE, bob=REVOKED, carol=FROZEN)
    door = admission(members, Clock())
    assert door.admit(b"alice").admitted
    answers = {name: door.admit(name.encode()) for name in ("bob", "carol", "mallory")}
    assert {n: a.code for n, a in answers.items()} == {
        "bob": "revoked", "carol": "frozen", "mallory": "unknown_member"}
    assert not any(a.admitted or a.retry_after_s for a in answers.values())
    assert len(door) == 1               # refused keys get no bucket


def test_a_lookup_answer_outside_the_vocabulary_is_an_error_not_an_admission():
    door = Admission(lambda key: "maybe", Clock())
    with pytest.raises(ValueError):
        door.admit(b"alice")


def test_the_bucket_refuses_past_the_burst_and_says_when_to_retry():
    clock = Clock()
    door = admission(Members(alice=ACTIVE, bob=ACTIVE), clock, rate_per_s=2, burst=5)
    assert all(door.admit(b"alice").admitted for _ in range(5))
    refused = door.admit(b"alice")
    assert refused.code == OVER_SHARE and refused.retry_after_s == 1
    assert door.admit(b"bob").admitted          # one signer's share is its own


def test_the_bucket_refills_with_time_up_to_the_burst():
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=2, burst=5)
    for _ in range(5):
        door.admit(b"alice")
    clock.now_ms += 499                          # 0.998 of an envelope
    assert door.admit(b"alice").code == OVER_SHARE
    clock.now_ms += 1                            # one
    assert door.admit(b"alice").admitted
    assert door.admit(b"alice").code == OVER_SHARE
    clock.now_ms += 3_600_000                    # an hour: only the burst, not 7,200
    assert sum(door.admit(b"alice").admitted for _ in range(10)) == 5


def test_retry_after_is_whole_seconds_rounded_up():
    """At a rate of at least one a second, one more envelope is due within a second."""
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=1, burst=1)
    door.admit(b"alice")
    assert door.admit(b"alice").retry_after_s == 1       # 1,000 ms to go
    clock.now_ms += 999
    assert door.admit(b"alice").retry_after_s == 1       # 1 ms to go


def test_a_clock_that_steps_back_refills_nothing():
    clock = Clock(10_000)
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=10, burst=1)
    door.admit(b"alice")
    clock.now_ms = 0
    assert door.admit(b"alice").code == OVER_SHARE
    clock.now_ms = 100                           # 100 ms after the step back: one more
    assert door.admit(b"alice").admitted


def test_buckets_are_bounded_and_the_least_recently_used_goes_first():
    clock = Clock()
    names = [f"m{i}" for i in range(5)]
    door = admission(Members(**{n: ACTIVE for n in names}), clock, rate_per_s=1, burst=1,
                     buckets=3)
    for name in names[:3]:
        assert door.admit(name.encode()).admitted
    assert door.admit(b"m0").code == OVER_SHARE   # m0 used again: now the most recent
    door.admit(b"m3")                              # pushes out m1, the least recent
    assert len(door) == 3
    assert door.admit(b"m0").code == OVER_SHARE   # still remembered: still empty
    assert door.admit(b"m1").admitted             # forgotten: back with a full bucket


def test_non_members_cannot_push_members_buckets_out():
    clock = Clock()
    door = admission(Members(alice=ACTIVE), clock, rate_per_s=1, burst=1, buckets=2)
    door.admit(b"alice")
    for i in range(1_000):
        assert door.admit(b"fresh-%d" % i).code == "unknown_member"
    assert door.admit(b"alice").code == OVER_SHARE and len(door) == 1


def test_an_active_answer_is_believed_for_its_ttl_only_and_others_never():
    clock = Clock()
    members = Members(alice=ACTIVE)
    door = admission(members, clock, member_ttl_ms=2_000)
    for _ in range(100):
        door.admit(b"alice")
        door.admit(b"mallory")
    assert members.reads == 1 + 100             # alice once; a non-member every time
    members.status[b"alice"] = REVOKED          # a block revokes her
    clock.now_ms += 1_999
    assert door.admit(b"alice").admitted        # stale: the block would reject it
    clock.now_ms += 1
    assert door.admit(b"alice").code == "revoked"
    members.status[b"mallory"] = ACTIVE         # registered a moment ago: in at once
    assert door.admit(b"mallory").admitted


def test_forget_drops_a_believed_answer_at_once():
    members = Members(alice=ACTIVE)
    door = admission(members, Clock())
    door.admit(b"alice")
    members.status[b"alice"] = FROZEN
    door.forget(b"alice")
    assert door.admit(b"alice").code == "frozen"


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
    assert door.admit(b"alice").admitted and len(door) == 1
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
        answer = door.admit(name)
        if answer.admitted:
            admitted[name] += 1
        else:
            assert answer.code == OVER_SHARE and answer.retry_after_s == 1
        assert admitted[name] <= burst + (clock.now_ms - first[name]) * rate // 1000
    # and one that waits a second's worth between envelopes is never refused
    clock.now_ms += 10 ** 9
    for _ in range(50):
        clock.now_ms += -(-1000 // rate)
        assert door.admit(names[0]).admitted


def test_member_status_follows_the_chaincode_order_of_checks():
    assert member_status(None) == NOT_MEMBER
    assert member_status({"active": False, "frozen": True}) == REVOKED
    assert member_status({"active": True, "frozen": True}) == FROZEN
    assert member_status({"active": True, "role": "citizen"}) == ACTIVE


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
        executor.execute(certified(executor.door, height, T0 + height * HOUR_MS, envelopes))
    lookup = store_lookup(executor.store)
    assert lookup(admin.public) == ACTIVE
    assert lookup(citizen.public) == ACTIVE
    assert lookup(shop.public) == REVOKED
    assert lookup(stranger.public) == NOT_MEMBER
    door = Admission(lookup, Clock())
    assert door.admit(citizen.public).code == ADMITTED
    assert door.admit(stranger.public).code == "unknown_member"


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
