"""Rules version 1: the dispatch of every kind and the execution of a block.

A transaction goes through the contract's checks in its order: duplicate, unknown_kind,
invalid_args, unknown_member, revoked, frozen, unauthorized, then the kind's own checks
(not_found ... insufficient_funds, in that order inside each handler). A kind that the
constitution may govern goes through governance.direct, which refuses an admin's
signature (`unauthorized`) while the action's class needs governance. A refused
transaction's buffered writes are dropped; only its id is recorded, so it is used up.
"""
from __future__ import annotations

from .api import BlockContext, BlockOutcome, Result, StateReader, Tx
from . import coins, constitution, governance, members, recoveries, tasks, upgrades
from . import validators as validator_sets
from . import state as st
from .args import invalid_info, valid
from .context import Context
from .errors import Reject
from .periods import periods
from .root import acc_of, apply_writes, state_root

VERSION = 1
MAX_TXS_PER_BLOCK = 100_000

ADMIN = frozenset({"admin"})
STAFF = frozenset({"admin", "reviewer"})
STEWARD = frozenset({"steward"})
GUARDIANS = frozenset({"steward", "admin"})
NOBODY = frozenset()           # governance only: no member signs it directly
CITIZEN = frozenset({"citizen"})
MERCHANT = frozenset({"merchant"})
PAYERS = frozenset({"citizen", "merchant"})

# kind -> (handler, roles that may sign it)
KINDS = {
    "member.register": (members.register, ADMIN),
    "member.update": (members.update, ADMIN),
    "member.revoke": (members.revoke, ADMIN),
    "member.recover": (recoveries.recover_now, ADMIN),
    "policy.set": (members.set_policy, ADMIN),
    "constitution.set": (governance.set_constitution, NOBODY),
    "rules.activate": (upgrades.activate, NOBODY),
    "validators.set": (validator_sets.set_validators, NOBODY),
    "recovery.cancel": (recoveries.cancel, GUARDIANS),
    "recovery.complete": (recoveries.complete, ADMIN),
    "gov.propose": (governance.propose, STEWARD),
    "gov.approve": (governance.approve, STEWARD),
    "gov.withdraw": (governance.withdraw, STEWARD),
    "task.post": (tasks.post, ADMIN),
    "task.claim": (tasks.claim, CITIZEN),
    "task.withdraw": (tasks.withdraw, CITIZEN),
    "task.submit": (tasks.submit, CITIZEN),
    "task.approve": (tasks.approve, STAFF),
    "task.reject": (tasks.reject, STAFF),
    "task.cancel": (tasks.cancel, ADMIN),
    "coin.spend": (coins.spend, PAYERS),
    "coin.refund": (coins.refund, MERCHANT),
    "coin.redeem": (coins.redeem, MERCHANT),
    "payout.confirm": (coins.confirm, ADMIN),
}


def execute_block(state: StateReader, ctx: BlockContext, txs: list[Tx],
                  state_acc: int) -> BlockOutcome:
    return run(state, ctx, txs, state_acc, KINDS, VERSION)


def run(state: StateReader, ctx: BlockContext, txs: list[Tx], state_acc: int,
        kinds: dict, version: int) -> BlockOutcome:
    """A block under the dispatch table `kinds` as rules version `version`: version 1
    itself, and a later version that changes only some kinds' handlers."""
    assert len(txs) <= MAX_TXS_PER_BLOCK, "block larger than any batch may be"
    view = st.Overlay(state)
    year, month_period, year_period = periods(ctx.time_ms)
    c = Context(view, ctx.height, ctx.time_ms, year, month_period, year_period, version,
                ctx.switch_margin, ctx.checkpoint_interval)
    results = [_execute(c, tx, kinds) for tx in txs]
    old, new = view.net_writes()
    acc = apply_writes(state_acc, old, new)
    return BlockOutcome(results=results, writes=new, state_acc=acc, state_root=state_root(acc))


def _execute(c: Context, tx: Tx, kinds: dict) -> Result:
    view = c.view
    assert len(tx.tx_id) == 64, "a transaction id is 64 hex digits"
    tx_key = st.EXECUTED + bytes.fromhex(tx.tx_id)
    if view.get(tx_key) is not None:
        return Result(tx.tx_id, "duplicate")
    try:
        events = _run(c, tx, tx_key, kinds)
    except Reject as refusal:
        view.discard()
        view.put(tx_key, b"")
        view.commit()
        return Result(tx.tx_id, refusal.code, refusal.info)
    if tx_key not in view.tx:
        view.put(tx_key, b"")
    view.commit()
    return Result(tx.tx_id, "ok", {}, events)


def _run(c: Context, tx: Tx, tx_key: bytes, kinds: dict) -> list:
    entry = kinds.get(tx.kind)
    if entry is None:
        raise Reject("unknown_kind")
    handler, roles = entry
    args, signer = tx.args, tx.signer
    if not valid(tx.kind, signer, args):
        raise Reject("invalid_args", invalid_info(tx.kind, signer, args))
    if tx.kind == "gov.propose" or tx.kind == "validators.set":
        # the args that only the state can judge: a validator's organisation
        why = validator_sets.organisation_reason(c.view, tx.kind, args)
        if why is not None:
            raise Reject("invalid_args", {"argument": why[0], "problem": why[1]})
    member = st.get_member(c.view, signer)
    if member is None:
        raise Reject("unknown_member")
    if not member["active"]:
        raise Reject("revoked")
    if tx.kind == "task.approve":
        citizen = st.get_member(c.view, args["citizen"])
        if citizen is not None and not citizen["active"]:
            raise Reject("revoked")
    if "frozen" in member:
        raise Reject("frozen")
    if member["role"] not in roles:
        raise Reject("unauthorized")
    if tx.kind in governance.ACTIONS:
        return governance.direct(c, tx.kind, signer, args, member, tx_key, handler)
    return handler(c, signer, args, member, tx_key)


def genesis_state(admins: list[bytes], policies: list[dict], organisations: list[dict],
                  validators: list[dict], law: dict | None = None) -> tuple[dict, int]:
    """The writes and accumulator of the state before block 1.

    organisations: [{"id", "stewards": [key, ...]}]; validators: [{"name", "key",
    "organisation"}]; law: the constitution, by default the table's for these
    organisations. Every problem is a ValueError that names it."""
    if not admins:
        raise ValueError("genesis needs at least one admin")
    if not organisations:
        raise ValueError("genesis needs at least one organisation")
    writes: dict[bytes, bytes] = {}
    view = _DictView(writes)
    ids = [o.get("id") if type(o) is dict else None for o in organisations]
    if law is None and len(ids) <= constitution.MAX_ORGANISATIONS:
        law = constitution.make(ids)
    problem = "constitution missing" if law is None else constitution.problem(law)
    if problem is not None:
        raise ValueError(f"constitution: {problem}")
    if law["organisations"] != ids:
        raise ValueError("the constitution's organisations are not genesis's")
    members_by_key = {}
    for key in admins:
        members_by_key.setdefault(key, []).append({"role": "admin", "active": True,
                                                  "balance": 0})
    for organisation in organisations:
        if set(organisation) != {"id", "stewards"} or not organisation["stewards"]:
            raise ValueError(f"organisation {organisation.get('id')!r} needs one steward "
                             "key or more")
        for key in organisation["stewards"]:
            members_by_key.setdefault(key, []).append(
                {"role": "steward", "active": True, "balance": 0,
                 "organisation": organisation["id"]})
    for key, records in members_by_key.items():
        if type(key) is not bytes or len(key) != 32:
            raise ValueError("admin and steward keys are 32 bytes")
        if len(records) > 1:
            raise ValueError(f"key {key.hex()} appears twice among admins and stewards")
        st.put_member(view, key, records[0])
        if records[0]["role"] == "steward":
            view.put(st.steward_key(records[0]["organisation"], key), b"")
    view.put(st.ADMINS, st.pack(len(admins)))
    constitution.put(view, law)
    for validator in validators:
        if validator.get("organisation") not in ids:
            raise ValueError(f"validator {validator.get('name')!r}: its organisation is "
                             "not one of genesis's")
    view.put(st.VALIDATORS, st.pack([{"key": v["key"], "name": v["name"],
                                      "organisation": v["organisation"]}
                                     for v in validators]))
    for policy in policies:
        if not valid("policy.set", b"", dict(policy)):
            raise ValueError(f"invalid cap policy: {policy!r}")
        members.write_policy(view, {k: policy[k] for k in members.POLICY_FIELDS if k in policy})
    return writes, acc_of(writes.items())


class _DictView:
    """The smallest state a genesis is written into."""

    def __init__(self, data: dict):
        self.data = data

    def get(self, key: bytes):
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        assert value is not None
        self.data[key] = value

    def scan(self, prefix: bytes):
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))
