"""Who the validators are, for one validator process: every validator of every set the
chain has named (genesis's and each `validators.set`'s), by key, with its name; and the
set this validator's replica serves now, with the pending one.

Two numberings meet here. The peer transport numbers every validator it has ever known
in this process (`roster` order: genesis's list, then each later set's newcomers, then
this validator's own key if no set names it yet), so its indices never change while it
runs. Consensus numbers the members of the set in force (their place in its list). A
frame from a peer is handed to the replica under the peer's place in the set the replica
serves, or not at all; what the replica sends to place i goes to that key's link.
"""
from __future__ import annotations

from node import sets
from node.genesis import Genesis
from node.handshake import MAX_ROSTER


class Membership:
    def __init__(self, genesis: Genesis, own_key: bytes):
        self.genesis, self.own_key = genesis, own_key
        self.names: dict[bytes, str] = {}       # every validator key known -> its name
        self.order: list[bytes] = []            # the same keys, in roster order

    def learn(self, state, height: int) -> list[bytes]:
        """Takes in every set the state after block `height` names; returns the keys it
        did not know before, in roster order."""
        named = sets.every(self.genesis, state)
        pending = sets.pending(state, height)
        fresh = []
        for one in named + ([pending] if pending is not None else []):
            for member in one.members:
                if self.add(member.key, member.name):
                    fresh.append(member.key)
        return fresh

    def add(self, key: bytes, name: str) -> bool:
        """Names a validator (a known one's name is updated); True when it is new, and
        so last in the roster now."""
        new = key not in self.names
        if new:
            assert len(self.order) < MAX_ROSTER, "more validators than a node knows"
            self.order.append(key)
        self.names[key] = name
        return new

    def roster(self) -> list[tuple[bytes, str]]:
        """(key, name) of every validator known, this one's own key included (last, named
        by the caller, when no set names it yet)."""
        return [(key, self.names[key]) for key in self.order]

    def name(self, key: bytes) -> str:
        return self.names.get(key, key.hex()[:16])
