"""Planted bugs: the governance state machine must find each of them.

Each test builds a mutated copy of chaincode/governance.py at test time (a string
replacement on its source, asserted to apply exactly once, so that a change of the
code's shape breaks the test instead of silently testing nothing), executes it as a
module, and runs the chain on it: v1's dispatch reaches governance through the module
(`governance.direct`, `governance.ACTIONS`) and through the handlers in `v1.KINDS`, and
both are pointed at the mutant. Then the state machine of test_governance_properties.py
runs with a fixed budget and seed, and must fail with the invariant that the bug breaks.

1. Count keys instead of organisations. On its own, replacing the organisation by the
   key in `counting_organisations` changes nothing a test can see: gov.approve keeps one
   approval per organisation (a second counting one is `exists`, a stale one replaced),
   so keys and organisations are one to one. The mutant therefore also lets approve tell
   approvals apart by key, as code that counts keys would: two stewards of one
   organisation then count twice.
2. Skip the expiry check: `status()` never reports "expired".
"""
from __future__ import annotations

import pathlib
import types

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from chaincode import governance, v1
from chaincode_harness import HOUR_MS, Chain, key
from test_governance_properties import Broken, Governance

COUNT_KEYS = [
    # counting_organisations: the set of approving keys instead of organisations
    ('return {org for org, key, _ in record["approvals"] if counts(view, key, org, law)}',
     'return {key for org, key, _ in record["approvals"] if counts(view, key, org, law)}'),
    # approve: an earlier approval is "the same" only when it is the same key
    ("        if entry[0] == organisation:\n            if counts(view, entry[1], entry[0], law):",
     "        if entry[1] == signer:\n            if counts(view, entry[1], entry[0], law):"),
]
SKIP_EXPIRY = [
    ('if record["status"] == "open" and time_ms >= record["expires"]:',
     'if False and record["status"] == "open" and time_ms >= record["expires"]:'),
]
# The budget of every hunt, and of the control that the real code passes in it. The
# mutants are found in a few examples; no shrinking, so a failure costs only those.
EXAMPLES = 60
HUNT = settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
                derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
                report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def mutant(replacements: list[tuple[str, str]]) -> types.ModuleType:
    path = pathlib.Path(governance.__file__)
    source = path.read_text()
    for old, new in replacements:
        assert source.count(old) == 1, f"the mutation no longer applies: {old!r}"
        source = source.replace(old, new)
    module = types.ModuleType("chaincode.governance_mutant")
    module.__package__ = "chaincode"          # for its relative imports
    module.__file__ = str(path)
    exec(compile(source, f"{path} (mutant)", "exec"), module.__dict__)
    return module


def plant(monkeypatch, module: types.ModuleType) -> None:
    """Make execute_block run `module` as governance."""
    monkeypatch.setattr(v1, "governance", module)
    for kind, (handler, roles) in list(v1.KINDS.items()):
        if getattr(handler, "__module__", None) == governance.__name__:
            monkeypatch.setitem(v1.KINDS, kind, (getattr(module, handler.__name__), roles))
    assert v1.KINDS["gov.approve"][0] is module.approve


ORGS = [{"id": "a", "stewards": [key("mut-a0"), key("mut-a1")]},
        {"id": "b", "stewards": [key("mut-b0")]},
        {"id": "c", "stewards": [key("mut-c0")]}]
A0, A1, B0 = key("mut-a0"), key("mut-a1"), key("mut-b0")
POLICY = dict(year=2025, hourly_cap_21plus=600, hourly_cap_under21=400, monthly_cap=3000,
              yearly_cap=9000)


def second_steward_approves() -> str:
    """a proposes a policy (threshold 2 of 3); a's other steward approves: the code."""
    chain = Chain(organisations=ORGS)
    proposal = chain.propose(A0, "policy.set", **POLICY).tx_id
    return chain.do(A1, "gov.approve", proposal=proposal).code


def approve_after_expiry() -> str:
    chain = Chain(organisations=ORGS)
    proposal = chain.propose(A0, "policy.set", expires=chain.time_ms + HOUR_MS, **POLICY).tx_id
    chain.run([], time_ms=chain.time_ms + HOUR_MS)
    return chain.do(B0, "gov.approve", proposal=proposal).code


def test_the_unmutated_governance_gives_the_codes_the_mutants_change():
    assert second_steward_approves() == "exists"
    assert approve_after_expiry() == "invalid_state"


class Invariants(Governance):
    """The machine without the model's predictions (invariant 0): the model follows the
    results, and only invariants 1-7 judge them."""
    STRICT = False


def hunt(machine) -> Broken:
    with pytest.raises(Broken) as found:
        run_state_machine_as_test(machine, settings=HUNT)
    return found.value


def test_the_invariants_alone_pass_on_the_unmutated_code():
    """The control: in the hunts' budget the real code passes the machine without the
    model's predictions (the full machine's own test, test_governance_properties.py,
    runs as many examples)."""
    run_state_machine_as_test(Invariants, settings=HUNT)


def test_counting_keys_instead_of_organisations_is_found(monkeypatch):
    plant(monkeypatch, mutant(COUNT_KEYS))
    assert second_steward_approves() == "ok"               # the bug is live
    # The full machine: the model's prediction disagrees first (for instance a steward
    # change is never enacted: the owner organisation is never among the keys counted).
    assert hunt(Governance).number in (0, 1, 2)
    # The invariants alone: an organisation counted twice (2), or a decision short of
    # distinct organisations (1).
    found = hunt(Invariants)
    assert found.number in (1, 2), found


def test_skipping_the_expiry_check_is_found(monkeypatch):
    plant(monkeypatch, mutant(SKIP_EXPIRY))
    assert approve_after_expiry() == "ok"                  # the bug is live
    assert hunt(Governance).number in (0, 3)
    found = hunt(Invariants)
    assert found.number == 3, found                        # an expired proposal acted on
