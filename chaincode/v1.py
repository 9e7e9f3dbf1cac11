"""Rules version 1: the dispatch of every kind and the execution of a block.

A transaction goes through the contract's checks in its order: duplicate, unknown_kind,
invalid_args, unknown_member, revoked, unauthorized, then the kind's own checks
(not_found ... insufficient_funds, in that order inside each handler). A refused
transaction's buffered writes are dropped; only its id is recorded, so it is used up.
"""
from __future__ import annotations

from .api import BlockContext, BlockOutcome, Result, StateReader, Tx
from . import coins, members, tasks
from . import state as st
from .args import valid
from .context import Context
from .errors import Reject
from .periods import periods
from .root import acc_of, apply_writes, state_root

MAX_TXS_PER_BLOCK = 100_000

ADMIN = frozenset({"admin"})
STAFF = frozenset({"admin", "reviewer"})
CITIZEN = frozenset({"citizen"})
MERCHANT = frozenset({"merchant"})
PAYERS = frozenset({"citizen", "merchant"})

# kind -> (handler, roles that may sign it)
KINDS = {
    "member.register": (members.register, ADMIN),
    "member.update": (members.update, ADMIN),
    "member.revoke": (members.revoke, ADMIN),
    "member.recover": (members.recover, ADMIN),
    "policy.set": (members.set_policy, ADMIN),
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
    assert len(txs) <= MAX_TXS_PER_BLOCK, "block larger than any batch may be"
    view = st.Overlay(state)
    year, month_period, year_period = periods(ctx.time_ms)
    c = Context(view, ctx.height, ctx.time_ms, year, month_period, year_period)
    results = [_execute(c, tx) for tx in txs]
    old, new = view.net_writes()
    acc = apply_writes(state_acc, old, new)
    return BlockOutcome(results=results, writes=new, state_acc=acc, state_root=state_root(acc))


def _execute(c: Context, tx: Tx) -> Result:
    view = c.view
    assert len(tx.tx_id) == 64, "a transaction id is 64 hex digits"
    tx_key = st.EXECUTED + bytes.fromhex(tx.tx_id)
    if view.get(tx_key) is not None:
        return Result(tx.tx_id, "duplicate")
    try:
        events = _run(c, tx, tx_key)
    except Reject as refusal:
        view.discard()
        view.put(tx_key, b"")
        view.commit()
        return Result(tx.tx_id, refusal.code, refusal.info)
    if tx_key not in view.tx:
        view.put(tx_key, b"")
    view.commit()
    return Result(tx.tx_id, "ok", {}, events)


def _run(c: Context, tx: Tx, tx_key: bytes) -> list:
    entry = KINDS.get(tx.kind)
    if entry is None:
        raise Reject("unknown_kind")
    handler, roles = entry
    args, signer = tx.args, tx.signer
    if not valid(tx.kind, signer, args):
        raise Reject("invalid_args")
    member = st.get_member(c.view, signer)
    if member is None:
        raise Reject("unknown_member")
    if not member["active"]:
        raise Reject("revoked")
    if tx.kind == "task.approve":
        citizen = st.get_member(c.view, args["citizen"])
        if citizen is not None and not citizen["active"]:
            raise Reject("revoked")
    if member["role"] not in roles:
        raise Reject("unauthorized")
    return handler(c, signer, args, member, tx_key)


def genesis_state(admins: list[bytes], policies: list[dict]) -> tuple[dict, int]:
    """The writes and accumulator of the state before block 1."""
    if not admins:
        raise ValueError("genesis needs at least one admin")
    if len(set(admins)) != len(admins):
        raise ValueError("an admin key appears twice")
    writes: dict[bytes, bytes] = {}
    view = _DictView(writes)
    for key in admins:
        if type(key) is not bytes or len(key) != 32:
            raise ValueError("an admin key is 32 bytes")
        st.put_member(view, key, {"role": "admin", "active": True, "balance": 0})
    view.put(st.ADMINS, st.pack(len(admins)))
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
