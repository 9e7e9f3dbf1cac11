"""The rules of Stadsmunt: pure functions from (state, block, transactions) to outcomes.

Entry points for the node, the auditor and the gateway:

    execute_block(rules_version, state, ctx, txs, state_acc) -> BlockOutcome
    rules_in_force(state, height, genesis_version) -> (version, first height)
    validators_in_force(state, height, genesis_validators) -> (from, entries)
    genesis_state(rules_version, admins, policies, organisations, validators, law)
        -> (writes, state_acc)
    describe(code, info) -> str
    encode_result(result) -> bytes
    state_root(acc) -> bytes

Execution dispatches on a rules version: genesis names the first, `rules.activate`
schedules later ones from a height, and the node runs each block under the version in
force at its height (rules_in_force). An unknown version is a ValueError. Likewise
`validators.set` schedules a new validator set from a height (validators_in_force,
pending_validators, validator_schedule). See docs/chaincode.md for the state layout and
the state root's bytes.
"""
from __future__ import annotations

# Invariants here are assertions, checked after every step: under `python -O` they would
# vanish and a broken ledger would limp on. Crash rather than limp: refuse to run.
if not __debug__:
    raise SystemExit("stadsmunt: chaincode refuses to run under python -O or PYTHONOPTIMIZE: "
                     "its invariant checks are assertions")

from . import root as _root
from . import upgrades, v1
from . import validators as _validators
from .constitution import MAX_ORGANISATIONS
from .constitution import make as default_constitution
from .constitution import problem as constitution_problem
from .api import BlockContext, BlockOutcome, Result, StateReader, Tx
from .describe import describe
from .errors import CODES
from .policies import DEFAULT_POLICIES
from .results import encode_result
from .root import state_root

_RULES = {1: v1}


def rules_versions() -> tuple[int, ...]:
    """The rules versions this build runs, ascending."""
    return tuple(sorted(_RULES))


def add_rules(version: int, rules) -> None:
    """Makes this process run `rules` (a module with execute_block and genesis_state, as
    v1) as version `version`: for a build that ships a version as a plug-in, and for the
    tests' second version (tests/rules/). Never replaces a version."""
    assert type(version) is int and 2 <= version <= upgrades.MAX_VERSION, version
    assert version not in _RULES, f"rules version {version} is there already"
    _RULES[version] = rules


def _rules(rules_version: int):
    rules = _RULES.get(rules_version) if type(rules_version) is int else None
    if rules is None:
        raise ValueError(f"unknown rules version {rules_version!r}")
    return rules


def rules_in_force(state: StateReader, height: int, genesis_version: int) -> tuple[int, int]:
    """(version, first height) of the rules that run block `height` (chaincode/upgrades.py):
    the node calls it before running a block, to run it under that version."""
    return upgrades.in_force(state, height, genesis_version)


def pending_rules(state: StateReader, height: int) -> tuple[int, int] | None:
    """(version, first height) of the activation due after block `height`, if any."""
    return upgrades.pending(state, height)


# a validator set: (name, key, organisation) of each validator, in replica order
_Entries = tuple[tuple[str, bytes, str], ...]


def validator_schedule(state: StateReader) -> list[tuple[int, _Entries]]:
    """Every validator set change, as (from, ((name, key, organisation), ...)), in
    ascending `from`: the first height each set orders. Empty when never changed."""
    return _validators.schedule(state)


def validators_in_force(state: StateReader, height: int,
                        genesis_validators: _Entries) -> tuple[int, _Entries]:
    """(from, entries) of the validator set that orders height `height`: the last change
    whose `from` is at or below it, else (1, genesis_validators), the genesis's
    (name, key, organisation) triples in replica order."""
    return _validators.in_force(state, height, genesis_validators)


def state_acc_with(acc: int, entries) -> int:
    """The state accumulator `acc` with the (key, value) entries added: a whole state's
    from 0, a chunk at a time (state sync, docs/statesync.md)."""
    return _root.add_entries(acc, entries)


def validator_sets_changed(writes: dict[bytes, bytes | None]) -> bool:
    """Whether a block's state writes touch the schedule of validator set changes (only a
    `validators.set` does): the sets read before the block still hold otherwise."""
    return _validators.changed(writes)


def pending_validators(state: StateReader, height: int) -> tuple[int, _Entries] | None:
    """(from, entries) of the validator set scheduled to order from a height above
    `height`, if any (at most one)."""
    return _validators.pending(state, height)


def execute_block(rules_version: int, state: StateReader, ctx: BlockContext,
                  txs: list[Tx], state_acc: int) -> BlockOutcome:
    return _rules(rules_version).execute_block(state, ctx, txs, state_acc)


def genesis_state(rules_version: int, admins: list[bytes], policies: list[dict],
                  organisations: list[dict], validators: list[dict],
                  law: dict | None = None) -> tuple[dict[bytes, bytes], int]:
    """organisations [{"id", "stewards": [key]}], validators [{"name", "key",
    "organisation"}], law: the constitution (None: the defaults for the organisations)."""
    return _rules(rules_version).genesis_state(admins, policies, organisations, validators,
                                               law)


__all__ = ["BlockContext", "BlockOutcome", "CODES", "DEFAULT_POLICIES", "MAX_ORGANISATIONS",
           "add_rules", "constitution_problem", "default_constitution", "pending_rules",
           "pending_validators", "rules_in_force", "rules_versions", "state_acc_with",
           "validator_schedule",
           "validator_sets_changed", "validators_in_force",
           "Result", "StateReader", "Tx", "describe", "encode_result", "execute_block",
           "genesis_state", "state_root"]
