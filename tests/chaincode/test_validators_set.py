"""validators.set at the chaincode level: who may enact it, the args it takes, the height
`from` which the new set orders, the schedule it writes (`g/validator-sets`), its event,
and the public reads chaincode.validator_schedule, validators_in_force and
pending_validators (docs/chaincode.md, "Validator sets").

The chains here have checkpoint interval K = 16 and switch margin M = 64 (the harness's;
what node/genesis.py gives for K = 16) unless a test says otherwise."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as hs

import chaincode
from chaincode import events, queries
from chaincode import state as st
from chaincode_harness import ADMIN, DAY_MS, STEWARD, Chain, key

from test_governance import A0, B0, C0, D0, FOUR, enact, kinds, thresholds

K, M = 16, 64
GENESIS_SET = (("v0", key("validator"), "city"),)     # the harness's genesis validator


def validator(name: str, organisation: str = "city", seed: str | None = None) -> dict:
    return {"name": name, "key": key(seed or "validator-" + name),
            "organisation": organisation}


def entries(validators: list[dict]) -> tuple:
    return tuple((v["name"], v["key"], v["organisation"]) for v in validators)


ONE = [validator("v1")]
FOUR_VALIDATORS = [validator(f"v{i}") for i in range(1, 5)]


def advance_to(chain: Chain, height: int) -> None:
    """Empty blocks until the next block is at `height`."""
    while chain.height < height - 1:
        chain.run([])
    assert chain.height == height - 1


def schedule(chain: Chain) -> list:
    return chaincode.validator_schedule(chain.state)


# ---- who enacts it ----------------------------------------------------------------------

def test_nobody_signs_validators_set_directly():
    chain = Chain()
    for signer in (ADMIN, STEWARD):
        assert chain.do(signer, "validators.set", validators=ONE).code == "unauthorized"
    assert schedule(chain) == []


def test_enacted_by_a_real_proposal_of_four_organisations_it_takes_the_majority():
    chain = Chain(organisations=FOUR)
    new = [validator(n, org) for n, org in (("a1", "a"), ("b1", "b"), ("c1", "c"),
                                            ("d1", "d"))]
    proposed = chain.propose(A0, "validators.set", validators=new)
    assert kinds(proposed) == ["gov.proposed"]
    assert proposed.events[0]["args"] == {"validators": new}
    assert kinds(chain.ok(B0, "gov.approve", proposal=proposed.tx_id)) == ["gov.approved"]
    assert chaincode.pending_validators(chain.state, chain.height) is None
    third = chain.ok(C0, "gov.approve", proposal=proposed.tx_id)
    assert kinds(third) == ["gov.approved", "gov.enacted", "validators.set"]
    assert chain.height == 3                     # c = 16: from 16 + 64 + 1
    assert third.events[2] == {"kind": "validators.set", "validators": new, "from": 81}
    assert schedule(chain) == [(81, entries(new))]
    assert chaincode.pending_validators(chain.state, 3) == (81, entries(new))
    genesis = (("v0", key("validator"), "a"),)
    assert chaincode.validators_in_force(chain.state, 80, genesis) == (1, genesis)
    assert chaincode.validators_in_force(chain.state, 81, genesis) == (81, entries(new))
    assert chaincode.pending_validators(chain.state, 81) is None
    # a fourth organisation approving afterwards: the proposal is closed
    assert chain.do(D0, "gov.approve", proposal=proposed.tx_id).code == "invalid_state"


def test_the_event_carries_every_validator_with_its_key_as_bytes_and_the_from():
    chain = Chain()
    result = chain.governed_ok("validators.set", validators=FOUR_VALIDATORS)
    event, = result.events
    assert event == {"kind": "validators.set", "from": 81,
                     "validators": [{"name": v["name"], "key": v["key"],
                                     "organisation": "city"} for v in FOUR_VALIDATORS]}
    assert all(type(v["key"]) is bytes and len(v["key"]) == 32 for v in event["validators"])
    assert set(events.FIELDS["validators.set"][0]) == set(event) - {"kind"}


def test_the_schedule_is_one_state_entry_of_arrays():
    chain = Chain()
    assert chain.state.get(st.VALIDATOR_SETS) is None
    before = chain.state.get(st.VALIDATORS)
    chain.governed_ok("validators.set", validators=ONE)
    assert st.unpack(chain.state.get(st.VALIDATOR_SETS)) == [
        [81, [["v1", key("validator-v1"), "city"]]]]
    assert chain.state.get(st.VALIDATORS) == before      # the genesis set is kept as it was


# ---- the height it orders from ---------------------------------------------------------

@pytest.mark.parametrize("interval,margin,enacting,first", [
    (16, 64, 1, 81), (16, 64, 15, 81), (16, 64, 16, 81),     # 16 is a multiple of K
    (16, 64, 17, 97), (16, 64, 32, 97), (16, 64, 33, 113),
    (64, 256, 1, 321), (64, 256, 64, 321), (64, 256, 65, 385), (64, 256, 128, 385),
    (1, 64, 1, 66), (1, 64, 7, 72),                         # every height a checkpoint
])
def test_the_set_orders_from_the_margin_after_the_first_checkpoint_at_or_above(
        interval, margin, enacting, first):
    chain = Chain(checkpoint_interval=interval, switch_margin=margin, check_root=False)
    advance_to(chain, enacting)
    result = chain.governed_ok("validators.set", validators=ONE)
    assert chain.height == enacting
    assert result.events[0]["from"] == first
    assert chaincode.pending_validators(chain.state, enacting) == (first, entries(ONE))
    assert chaincode.validators_in_force(chain.state, first - 1, GENESIS_SET) == \
        (1, GENESIS_SET)
    assert chaincode.validators_in_force(chain.state, first, GENESIS_SET) == \
        (first, entries(ONE))


# ---- replacing, keeping ----------------------------------------------------------------

def test_a_later_set_replaces_the_pending_one():
    chain = Chain()
    chain.governed_ok("validators.set", validators=ONE)              # height 1: from 81
    advance_to(chain, 40)
    replaced = chain.governed_ok("validators.set", validators=FOUR_VALIDATORS)
    assert replaced.events[0]["from"] == 48 + M + 1                  # height 40: c = 48
    assert schedule(chain) == [(113, entries(FOUR_VALIDATORS))]
    assert chaincode.pending_validators(chain.state, 40) == (113, entries(FOUR_VALIDATORS))
    # the replaced set never orders: genesis's until 112
    for height in (81, 100, 112):
        assert chaincode.validators_in_force(chain.state, height, GENESIS_SET) == \
            (1, GENESIS_SET)


def test_a_set_in_force_stays_in_the_schedule_when_the_next_one_comes():
    chain = Chain()
    chain.governed_ok("validators.set", validators=ONE)              # from 81
    advance_to(chain, 81)
    assert chaincode.validators_in_force(chain.state, 81, GENESIS_SET) == (81, entries(ONE))
    assert chaincode.pending_validators(chain.state, 81) is None
    chain.governed_ok("validators.set", validators=FOUR_VALIDATORS)  # height 81: c = 96
    assert schedule(chain) == [(81, entries(ONE)), (161, entries(FOUR_VALIDATORS))]
    at = chaincode.validators_in_force
    assert at(chain.state, 80, GENESIS_SET) == (1, GENESIS_SET)
    assert at(chain.state, 81, GENESIS_SET) == at(chain.state, 160, GENESIS_SET) == \
        (81, entries(ONE))
    assert at(chain.state, 161, GENESIS_SET) == (161, entries(FOUR_VALIDATORS))
    assert chaincode.pending_validators(chain.state, 81) == (161, entries(FOUR_VALIDATORS))


def test_the_constitution_shows_the_validators_of_the_set_in_force_at_a_height():
    chain = Chain(organisations=FOUR)
    new = [validator("b1", "b"), validator("c1", "c"), validator("c2", "c"),
           validator("d1", "d")]
    proposed = chain.propose(A0, "validators.set", validators=new)
    chain.ok(B0, "gov.approve", proposal=proposed.tx_id)
    chain.ok(C0, "gov.approve", proposal=proposed.tx_id)

    def running(height):
        return {o["id"]: o["validators"]
                for o in queries.constitution(chain.state, height)["organisations"]}
    assert running(80) == running(0) == {"a": ["v0"], "b": [], "c": [], "d": []}
    assert running(81) == {"a": [], "b": ["b1"], "c": ["c1", "c2"], "d": ["d1"]}


# ---- refusals ----------------------------------------------------------------------------

def test_a_set_identical_to_the_newest_scheduled_one_changes_nothing():
    chain = Chain()
    genesis_again = [{"name": "v0", "key": key("validator"), "organisation": "city"}]
    assert chain.governed("validators.set", validators=genesis_again).code == "invalid_state"
    chain.governed_ok("validators.set", validators=ONE)
    assert chain.governed("validators.set", validators=ONE).code == "invalid_state"
    # back to genesis's while ONE is pending: a change of the newest scheduled set
    back = chain.governed_ok("validators.set", validators=genesis_again)
    assert back.events[0]["from"] == 81
    advance_to(chain, 81)
    assert chain.governed("validators.set", validators=genesis_again).code == "invalid_state"


def test_the_same_validators_in_another_order_or_organisation_are_a_change():
    chain = Chain(organisations=FOUR, validators=[
        {"name": f"v{i}", "key": key(f"v{i}"), "organisation": "a"} for i in range(4)])
    same = [{"name": f"v{i}", "key": key(f"v{i}"), "organisation": "a"} for i in range(4)]

    def governed(validators):
        proposal = chain.propose(A0, "validators.set", validators=validators).tx_id
        chain.ok(B0, "gov.approve", proposal=proposal)
        return chain.ok(C0, "gov.approve", proposal=proposal).events[-1]
    assert governed(same)["code"] == "invalid_state"
    assert governed(same[::-1])["kind"] == "validators.set"
    moved = [dict(v, organisation="b") if v["name"] == "v0" else v for v in same[::-1]]
    assert governed(moved)["kind"] == "validators.set"
    assert governed(moved)["code"] == "invalid_state"


def _many(n: int) -> list[dict]:
    return [validator(f"v{i}") for i in range(n)]


@pytest.mark.parametrize("validators,problem", [
    ([], "length"),
    (_many(2), "length"),
    (_many(3), "length"),
    (_many(65), "length"),
    ({"v1": ONE[0]}, "type"),                                        # a map, not a list
    ("v1", "type"),
    (["v1"], "type"),                                                # an entry not a map
    ([{"name": "v1", "key": key("k")}], "format"),                   # a field missing
    ([dict(ONE[0], port=7101)], "format"),                           # a field it does not take
    ([dict(ONE[0], name=5)], "type"),
    ([dict(ONE[0], key=key("k").hex())], "type"),                    # hex text, not bytes
    ([dict(ONE[0], organisation=None)], "type"),
    ([dict(ONE[0], key=key("k")[:31])], "length"),
    ([dict(ONE[0], key=key("k") + b"\0")], "length"),
    ([dict(ONE[0], name="")], "format"),
    ([dict(ONE[0], name="v 1")], "format"),                          # not an id
    ([dict(ONE[0], name="x" * 65)], "format"),
    ([dict(ONE[0], organisation="city/hall")], "format"),
    (_many(3) + [validator("v0", seed="other")], "format"),           # a name twice
    (_many(3) + [dict(validator("v9"), key=key("validator-v0"))], "format"),  # a key twice
    ([dict(ONE[0], organisation="library")], "choice"),              # not an organisation
])
def test_every_invalid_set_is_invalid_args_at_the_proposal_and_signed(validators, problem):
    chain = Chain()
    proposed = chain.propose(STEWARD, "validators.set", validators=validators)
    assert (proposed.code, proposed.info) == (
        "invalid_args", {"argument": "args.validators", "problem": problem})
    signed = chain.do(ADMIN, "validators.set", validators=validators)
    assert (signed.code, signed.info) == (
        "invalid_args", {"argument": "validators", "problem": problem})
    assert schedule(chain) == []


def test_the_args_are_exactly_validators():
    chain = Chain()
    for args in ({}, {"validators": ONE, "from": 100}):
        proposed = chain.propose(STEWARD, "validators.set", **args)
        assert proposed.code == "invalid_args"
    assert chain.governed_ok("validators.set", validators=_many(64)).code == "ok"
    assert chain.governed_ok("validators.set", validators=_many(4)).code == "ok"


def test_an_organisation_removed_before_the_enactment_makes_it_fail_with_invalid_args():
    chain = Chain(organisations=FOUR)
    proposed = chain.propose(A0, "validators.set", validators=[validator("d1", "d")])
    law = chain.propose(A0, "constitution.set", organisations=["a", "b", "c"],
                        thresholds=thresholds(constitution_set=3))
    for steward in (B0, C0, D0):
        chain.ok(steward, "gov.approve", proposal=law.tx_id)
    chain.ok(B0, "gov.approve", proposal=proposed.tx_id)
    failed = chain.ok(C0, "gov.approve", proposal=proposed.tx_id)
    assert failed.events[-1] == {"kind": "gov.failed", "proposal": proposed.tx_id,
                                 "code": "invalid_args",
                                 "info": {"argument": "validators", "problem": "choice"}}
    assert schedule(chain) == []


def test_an_organisation_running_a_validator_in_force_or_pending_cannot_be_removed():
    chain = Chain(organisations=FOUR)                  # genesis: v0 of a
    proposed = chain.propose(A0, "validators.set", validators=[validator("d1", "d")])
    for steward in (B0, C0):
        chain.ok(steward, "gov.approve", proposal=proposed.tx_id)     # from 81

    def remove(organisation):
        kept = [o for o in ("a", "b", "c", "d") if o != organisation]
        return enact(chain, "constitution.set", organisations=kept,
                     thresholds=thresholds(constitution_set=3)).events[-1]
    failed = remove("d")                                                  # pending
    assert (failed["kind"], failed["code"], failed["info"]) == ("gov.failed", "invalid_state", {})
    assert remove("a")["code"] == "invalid_state"                        # in force
    advance_to(chain, 81)
    assert remove("a")["kind"] == "constitution.set"                    # runs none now


# ---- the schedule's invariants, over random histories -----------------------------------

POOL = (GENESIS_SET,
        (("v1", key("validator-v1"), "city"),),
        tuple((f"v{i}", key(f"validator-v{i}"), "city") for i in range(1, 5)),
        tuple((f"v{i}", key(f"validator-v{i}"), "city") for i in (2, 1, 3, 4)))


@settings(max_examples=60, deadline=None)
@given(hs.sampled_from([(16, 64), (64, 256), (1, 64), (4, 64)]),
       hs.lists(hs.tuples(hs.integers(0, 90), hs.integers(0, len(POOL) - 1)), max_size=6))
def test_the_schedule_keeps_its_invariants_over_random_changes(chain_constants, attempts):
    """Attempts (blocks to wait, a set of POOL), each enacted or refused. Invariants
    (docs/chaincode.md, "Validator sets"): a change is refused exactly when it is the
    newest set scheduled (pending, else in force); `from` ascends; at most one entry is
    above the current height; the set in force at any height is the last entry with
    `from` at or below it, else genesis's; from - h >= M + 1 and from - 1 is a multiple
    of K for the enacting height h."""
    interval, margin = chain_constants
    chain = Chain(check_root=False, checkpoint_interval=interval, switch_margin=margin)
    model = []                          # (from, set): what the schedule must hold
    for wait, choice in attempts:
        for _ in range(wait):
            chain.run([])
        h = chain.height + 1
        wanted = POOL[choice]
        pending = [s for f, s in model if f > h]
        in_force = [s for f, s in model if f <= h] or [GENESIS_SET]
        newest = (pending or in_force)[-1]
        result = chain.governed("validators.set", validators=[
            {"name": n, "key": k, "organisation": o} for n, k, o in wanted])
        assert chain.height == h
        if newest == wanted:
            assert result.code == "invalid_state"
        else:
            assert result.code == "ok", result
            first = result.events[0]["from"]
            assert first - h >= margin + 1 and (first - 1) % interval == 0
            assert first - h <= margin + interval   # the first checkpoint, no later one
            model = [(f, s) for f, s in model if f <= h] + [(first, wanted)]
        found = chaincode.validator_schedule(chain.state)
        assert found == model
        froms = [f for f, _ in found]
        assert froms == sorted(set(froms))
        assert sum(1 for f in froms if f > h) <= 1
        for height in range(1, (froms[-1] if froms else 1) + 2):
            earlier = [(f, s) for f, s in found if f <= height]
            expected = earlier[-1] if earlier else (1, GENESIS_SET)
            assert chaincode.validators_in_force(chain.state, height, GENESIS_SET) == expected
        later = [(f, s) for f, s in found if f > h]
        assert chaincode.pending_validators(chain.state, h) == (later[0] if later else None)
