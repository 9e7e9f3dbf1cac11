"""The validator sets of a chain, read from its state: genesis's from height 1, then
each `validators.set` from the height it names (docs/consensus.md, "Validator sets").
The executor hands the pending one to consensus after every block; the audit checks
each checkpoint's set hash and each certificate against the set in force at its height.
"""
from __future__ import annotations

from dataclasses import dataclass

import chaincode
from consensus.api import ValidatorSet
from consensus.digest import validator_set_hash
from node.genesis import Genesis


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    key: bytes
    organisation: str


@dataclass(frozen=True, slots=True)
class Named:
    """A validator set with its members' names and organisations."""
    first_height: int
    members: tuple[Member, ...]

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(m.key for m in self.members)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def plain(self) -> ValidatorSet:
        return ValidatorSet(self.first_height, self.keys)

    def hash(self, genesis: Genesis) -> bytes:
        return validator_set_hash(genesis.domain(), self.first_height, self.keys)


def changed(writes: dict) -> bool:
    """Whether a block's state writes touch the schedule of set changes (only a
    `validators.set` does): the sets read before it still hold otherwise."""
    return chaincode.validator_sets_changed(writes)


def _genesis_entries(genesis: Genesis) -> tuple[tuple[str, bytes, str], ...]:
    return tuple((v.name, v.key, v.organisation) for v in genesis.validators)


def _named(found) -> Named:
    first, entries = found
    return Named(first, tuple(Member(*e) for e in entries))


def in_force(genesis: Genesis, state, height: int) -> Named:
    """The set that orders `height`, over the state after any block before it that is
    at or after the enacting block of that set."""
    return _named(chaincode.validators_in_force(state, height, _genesis_entries(genesis)))


def pending(state, height: int) -> Named | None:
    """The set scheduled to take over after block `height`, if any."""
    found = chaincode.pending_validators(state, height)
    return None if found is None else _named(found)


def newest(genesis: Genesis, state, height: int) -> Named:
    """The set a checkpoint at `height` names: the pending one, else the one in force
    after it."""
    return pending(state, height) or in_force(genesis, state, height + 1)


def every(genesis: Genesis, state) -> list[Named]:
    """Genesis's set and every change kept in state, in ascending first height."""
    return [_named((1, _genesis_entries(genesis)))] + \
        [_named(e) for e in chaincode.validator_schedule(state)]
