"""Which validators order each height: genesis's, then each `validators.set` from its
`from` height (docs/chaincode.md, "Validator sets").

The schedule is one state entry, `g/validator-sets`: a list of [from, [[name, key,
organisation], ...]] in ascending `from`, each set ordering every height from its `from`
on; absent until the first change. Every rules version reads and writes it the same way,
and the node reads it to know which validators order a height, so its encoding never
changes with a version. (`g/validators`, written at genesis, keeps the genesis set.)

A set enacted in the block at height h orders from c + M + 1, where c is the first
multiple of the checkpoint interval K at or above h and M the switch margin: the set in
force changes right after a checkpoint, once every validator has executed the enacting
block and a quorum has certified a checkpoint past it.
"""
from __future__ import annotations

from . import constitution
from . import state as st
from .context import Context
from .errors import Reject

Entry = tuple[str, bytes, str]          # (name, key, organisation)
Set = tuple[Entry, ...]


def changed(writes) -> bool:
    """Whether a block's writes touch the schedule."""
    return st.VALIDATOR_SETS in writes


def schedule(state) -> list[tuple[int, Set]]:
    """Every change, as (from, entries), in ascending `from`; empty when never changed."""
    raw = state.get(st.VALIDATOR_SETS)
    if raw is None:
        return []
    return [(first, tuple((name, key, organisation) for name, key, organisation in entries))
            for first, entries in st.unpack(raw)]


def in_force(state, height: int, genesis_validators) -> tuple[int, Set]:
    """(from, entries) of the set that orders height `height`: the last change whose
    `from` is at or below it, else genesis's (`genesis_validators`, (name, key,
    organisation) triples) from height 1."""
    found = (1, tuple(tuple(v) for v in genesis_validators))
    for first, entries in schedule(state):
        if first > height:
            break
        found = (first, entries)
    return found


def pending(state, height: int) -> tuple[int, Set] | None:
    """(from, entries) of the change that orders from a height above `height`, if any."""
    for first, entries in schedule(state):
        if first > height:
            return first, entries
    return None


def first_height(height: int, interval: int, margin: int) -> int:
    """`from` of a set enacted in the block at `height`: c + M + 1, c the first multiple
    of the checkpoint interval at or above the height, M the switch margin."""
    assert interval >= 1 and margin >= 0 and height >= 1
    checkpoint = -(-height // interval) * interval
    return checkpoint + margin + 1


def genesis_set(view) -> Set:
    """The genesis validators, as genesis_state wrote them (`g/validators`)."""
    return tuple((v["name"], v["key"], v["organisation"])
                 for v in st.unpack(view.get(st.VALIDATORS)))


def organisations_running(view, height: int) -> set[str]:
    """The organisations of the set in force at `height` and of a pending one: those an
    organisation removal must leave alone."""
    owners = {o for _, _, o in in_force(view, height, genesis_set(view))[1]}
    scheduled = pending(view, height)
    if scheduled is not None:
        owners.update(o for _, _, o in scheduled[1])
    return owners


def organisation_reason(view, kind: str, args: dict) -> tuple[str, str] | None:
    """The invalid_args of valid args that name an organisation the chain does not have
    (the constitution's organisations): validators.set's own, or a proposal's of it.
    (argument, problem), as args.reason names them, or None."""
    if kind == "gov.propose":
        if args["action"] != "validators.set":
            return None
        inner = organisation_reason(view, "validators.set", args["args"])
        return None if inner is None else ("args." + inner[0], inner[1])
    if kind != "validators.set":
        return None
    known = constitution.get(view)["organisations"]
    if any(v["organisation"] not in known for v in args["validators"]):
        return "validators", "choice"
    return None


def set_validators(c: Context, signer: bytes, args: dict, member: dict,
                   tx_key: bytes) -> list:
    """validators.set (governance only): the set orders from first_height on. Its
    organisations must be the chain's (invalid_args); a set identical to the newest one
    scheduled, pending or else in force, changes nothing (invalid_state). A pending set
    is replaced; those already in force stay."""
    view = c.view
    why = organisation_reason(view, "validators.set", args)
    if why is not None:
        raise Reject("invalid_args", {"argument": why[0], "problem": why[1]})
    entries = tuple((v["name"], v["key"], v["organisation"]) for v in args["validators"])
    scheduled = pending(view, c.height)
    newest = scheduled if scheduled is not None else in_force(view, c.height,
                                                              genesis_set(view))
    if newest[1] == entries:
        raise Reject("invalid_state")
    first = first_height(c.height, c.checkpoint_interval, c.switch_margin)
    kept = [[f, [list(e) for e in s]] for f, s in schedule(view) if f <= c.height]
    view.put(st.VALIDATOR_SETS, st.pack(kept + [[first, [list(e) for e in entries]]]))
    return [{"kind": "validators.set",
             "validators": [{"name": n, "key": k, "organisation": o} for n, k, o in entries],
             "from": first}]
