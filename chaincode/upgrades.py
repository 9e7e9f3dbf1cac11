"""Which rules version runs each height: genesis's, then each `rules.activate` from its
height (docs/chaincode.md, "Rules versions").

The schedule is one state entry, `g/rules`: a list of [height, version] pairs in
ascending height, each the first height at which its version runs; absent until the
first activation. Every rules version reads and writes it the same way, and the node
reads it to choose the version of a block before running the block, so its encoding
never changes with a version.
"""
from __future__ import annotations

from . import state as st
from .context import Context
from .errors import Reject

MAX_VERSION = 65_535
MAX_HEIGHT = (1 << 63) - 1


def schedule(state) -> list[tuple[int, int]]:
    """Every activation, as (first height, version), in ascending height."""
    raw = state.get(st.RULES)
    return [] if raw is None else [(h, v) for h, v in st.unpack(raw)]


def in_force(state, height: int, genesis_version: int) -> tuple[int, int]:
    """(version, first height it runs) of the rules that run block `height`: the latest
    activation at or below it, else genesis's from height 1."""
    found = (genesis_version, 1)
    for first, version in schedule(state):
        if first > height:
            break
        found = (version, first)
    return found


def pending(state, height: int) -> tuple[int, int] | None:
    """(version, first height) of the activation due after block `height`, if any."""
    for first, version in schedule(state):
        if first > height:
            return version, first
    return None


def activate(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    """rules.activate (governance only): `version` runs from `height`. The version must
    be above the one running this block and the height at least the switch margin above
    it, so that every validator has executed the enacting block, and agreed on it, long
    before the switch. A pending activation is replaced; those already in force stay."""
    version, height = args["version"], args["height"]
    if version <= c.rules_version or height < c.height + c.switch_margin:
        raise Reject("invalid_state")
    kept = [[h, v] for h, v in schedule(c.view) if h <= c.height]
    c.view.put(st.RULES, st.pack(kept + [[height, version]]))
    return [{"kind": "rules.activate", "version": version, "height": height}]
