"""rules.activate at the chaincode level: who may enact it, the version and height it
accepts, the schedule it writes, and blocks run under the version in force at their
height (the harness asks chaincode.rules_in_force before each block, as the node does).
The second version is tests/chaincode/rules_v2.py: spends under 5 cents refused."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as hs

import chaincode
import rules_v2
from chaincode import v1
from chaincode_harness import ADMIN, STEWARD, SWITCH_MARGIN, Chain

from test_governance import A0, B0, C0, FOUR, kinds


@pytest.fixture
def with_v2(monkeypatch):
    """This process runs rules version 2 for the test only (chaincode's table restored)."""
    monkeypatch.setitem(chaincode._RULES, 2, rules_v2)


def spender(chain: Chain):
    anna, shop = chain.citizen("anna"), chain.merchant("shop")
    chain.earn(anna, "t1")
    return anna, shop


def test_nobody_signs_rules_activate_directly():
    chain = Chain()
    for signer in (ADMIN, STEWARD):
        assert chain.do(signer, "rules.activate", version=2, height=500).code == "unauthorized"


def test_enacted_it_schedules_the_version_from_the_height_and_emits_its_event():
    chain = Chain()
    due = chain.height + 1 + SWITCH_MARGIN
    result = chain.governed_ok("rules.activate", version=2, height=due)
    assert result.events == [{"kind": "rules.activate", "version": 2, "height": due}]
    assert chaincode.pending_rules(chain.state, chain.height) == (2, due)
    assert chaincode.rules_in_force(chain.state, due - 1, 1) == (1, 1)
    assert chaincode.rules_in_force(chain.state, due, 1) == (2, due)
    assert chaincode.pending_rules(chain.state, due) is None


def test_the_height_must_be_at_least_the_switch_margin_above_the_enacting_block():
    chain = Chain()
    soon = chain.height + 1 + SWITCH_MARGIN - 1
    assert chain.governed("rules.activate", version=2, height=soon).code == "invalid_state"
    assert chaincode.pending_rules(chain.state, chain.height) is None
    enacting = chain.height + 1
    chain.governed_ok("rules.activate", version=2, height=enacting + SWITCH_MARGIN)


def test_the_version_must_be_above_the_one_in_force(with_v2):
    chain = Chain()
    assert chain.governed("rules.activate", version=1, height=10_000).code == "invalid_args"
    due = chain.height + 1 + SWITCH_MARGIN
    chain.governed_ok("rules.activate", version=2, height=due)
    while chain.height < due:
        chain.run([])
    # version 2 runs now: activating 2 again is no move
    assert chain.governed("rules.activate", version=2, height=chain.height + 1000).code \
        == "invalid_state"
    chain.governed_ok("rules.activate", version=3, height=chain.height + 1000)


def test_a_later_activation_replaces_the_pending_one():
    chain = Chain()
    chain.governed_ok("rules.activate", version=3, height=1000)
    chain.governed_ok("rules.activate", version=2, height=2000)
    assert chaincode.pending_rules(chain.state, chain.height) == (2, 2000)
    assert chaincode.rules_in_force(chain.state, 1500, 1) == (1, 1)


def test_under_four_organisations_it_takes_the_majority():
    chain = Chain(organisations=FOUR)
    proposed = chain.propose(A0, "rules.activate", version=2, height=1000)
    assert kinds(proposed) == ["gov.proposed"]
    second = chain.ok(B0, "gov.approve", proposal=proposed.tx_id)
    assert kinds(second) == ["gov.approved"]
    assert chaincode.pending_rules(chain.state, chain.height) is None
    third = chain.ok(C0, "gov.approve", proposal=proposed.tx_id)
    assert kinds(third) == ["gov.approved", "gov.enacted", "rules.activate"]
    assert chaincode.pending_rules(chain.state, chain.height) == (2, 1000)


def test_blocks_from_the_height_run_under_the_new_version(with_v2):
    chain = Chain()
    anna, shop = spender(chain)
    due = chain.height + 1 + SWITCH_MARGIN
    chain.governed_ok("rules.activate", version=2, height=due)
    while chain.height < due - 2:
        chain.run([])
    assert chain.do(anna, "coin.spend", to=shop, amount=1).code == "ok"   # height due - 1
    refused = chain.do(anna, "coin.spend", to=shop, amount=1)             # height due
    assert (refused.code, refused.info) == ("invalid_args",
                                            {"argument": "amount", "problem": "range"})
    assert chain.do(anna, "coin.spend", to=shop, amount=5).code == "ok"


def test_without_the_version_the_chaincode_refuses_to_run_it():
    chain = Chain()
    due = chain.height + 1 + SWITCH_MARGIN
    chain.governed_ok("rules.activate", version=2, height=due)
    while chain.height < due - 1:
        chain.run([])
    with pytest.raises(ValueError, match="unknown rules version 2"):
        chain.run([])


# ---- the schedule's invariants, over random histories of activations ------------------

@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 80), hs.integers(2, 6), hs.integers(0, 160)),
                max_size=6))
def test_the_version_in_force_never_goes_back_and_no_switch_comes_sooner_than_the_margin(
        attempts):
    """Attempts (blocks to wait, version, distance): each enacted or refused. Invariants
    (docs/chaincode.md, "Rules versions"): an activation is accepted exactly when its
    version is above the one in force and its height at least the margin ahead; the
    version in force at each height never decreases, and a pending one is replaced."""
    with pytest.MonkeyPatch.context() as patch:
        for n in range(2, 7):       # versions 2 to 6: version 1's kinds, numbered n
            patch.setitem(chaincode._RULES, n, _numbered(n))
        _random_activations(attempts)


def _numbered(n: int):
    class Rules:
        @staticmethod
        def execute_block(state, ctx, txs, acc):
            return v1.run(state, ctx, txs, acc, v1.KINDS, n)
    return Rules


def _random_activations(attempts) -> None:
    chain = Chain(check_root=False)     # the root's own checks are elsewhere; speed here
    accepted = []                   # (enacting height, version, first height)
    for wait, version, distance in attempts:
        for _ in range(wait):
            chain.run([])
        in_force, _ = chaincode.rules_in_force(chain.state, chain.height + 1, 1)
        enacting = chain.height + 1
        result = chain.governed("rules.activate", version=version, height=enacting + distance)
        ok = version > in_force and distance >= SWITCH_MARGIN
        assert (result.code == "ok") == ok, (version, in_force, distance, result.code)
        if ok:
            accepted = [a for a in accepted if a[2] <= enacting] + [
                (enacting, version, enacting + distance)]
    schedule = chaincode.upgrades.schedule(chain.state)
    assert schedule == [(first, version) for _, version, first in accepted]
    versions = [chaincode.rules_in_force(chain.state, h, 1)[0]
                for h in range(1, chain.height + 200)]
    assert versions == sorted(versions)
    for enacting, _, first in accepted:
        assert first - enacting >= SWITCH_MARGIN
