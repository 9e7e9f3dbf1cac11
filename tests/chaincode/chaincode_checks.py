"""The invariants of tests/chaincode/test_chaincode_properties.py that are judged from the
model and from the state's bytes: which rules a transaction would break (and so the check
that must refuse it), and the state read back with plain msgpack at the keys the state
layout of docs/chaincode.md names, compared with the model.
"""
from __future__ import annotations

import hashlib

import msgpack

from chaincode.api import Tx
from chaincode_model import Model, Payout, Spend, check, diff, name, periods

# ----------------------------------------------------------------------- the state, read back
def unpack(raw: bytes):
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def entries(state, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """(rest of the key after the prefix, value) of the live entries under a prefix."""
    return [(k[len(prefix):], v) for k, v in state.data.items() if k.startswith(prefix)]


def split_id(rest: bytes) -> tuple[str, bytes]:
    """A task id written as u8 length + ASCII, and what follows it."""
    return rest[1:1 + rest[0]].decode("ascii"), rest[1 + rest[0]:]


def adhash(state) -> int:
    """docs/chaincode.md, "State root": the sum of the entries' SHAKE-256 elements."""
    acc = 0
    for k, v in state.data.items():
        digest = hashlib.shake_256(b"stadsmunt/state/v1" + len(k).to_bytes(4, "big") + k
                                   + v).digest(512)
        acc += int.from_bytes(digest, "big")
    return acc % (1 << 4096)


def total(state, k: bytes) -> int:
    raw = state.data.get(k)
    return 0 if raw is None else unpack(raw)



def rules_broken(m: Model, now: int, tx: Tx) -> list[tuple[str, str, str]]:
    """(invariant, the code of the check that refuses it, why) for each rule of
    docs/chaincode.md that the transaction would break, judged by the model."""
    kind, args = tx.kind, tx.args
    broken = []
    policy = m.policy(periods(now)[0])
    if kind == "coin.spend":
        payee = m.members.get(args["to"])
        if payee is None or payee.role != "merchant" or not payee.active:
            broken.append(("only merchants receive spends", "not_a_merchant",
                           f"{name(args['to'])} is "
                           f"{'no member' if payee is None else payee.role}"
                           f"{'' if payee is None or payee.active else ', revoked'}"))
    if kind == "coin.refund":
        spend = m.spends.get(args["spend"])
        if spend is None or m.current(spend.payee) != tx.signer:
            broken.append(("refunds only by the payee", "not_found",
                           "no spend" if spend is None else
                           f"the spend paid {name(spend.payee)}, now "
                           f"{name(m.current(spend.payee))}"))
        elif args["amount"] > spend.amount - spend.refunded:
            broken.append(("refunds never above the spend", "invalid_state",
                           f"{spend.amount - spend.refunded} of the spend is left"))
    if kind == "task.post":
        if args["reward"] * 60 > policy["hourly_cap_21plus"] * args["minutes"]:
            broken.append(("hourly rate by age band", "hourly_rate_exceeded",
                           f"the 21plus cap is {policy['hourly_cap_21plus']}/h"))
        if args["deadline"] <= now:
            broken.append(("deadlines", "deadline_passed", "the deadline is not ahead"))
    task = m.tasks.get(args.get("task")) if kind.startswith("task.") else None
    me = m.members.get(tx.signer)
    if kind == "task.claim" and task is not None and me is not None \
            and "age_band" in me.attrs:
        band = me.attrs["age_band"]
        if task.reward * 60 > policy["hourly_cap_" + band] * task.minutes:
            broken.append(("hourly rate by age band", "hourly_rate_exceeded",
                           f"it pays {task.reward} for {task.minutes} minutes to a "
                           f"citizen {band}, cap {policy['hourly_cap_' + band]}/h"))
        if now >= task.deadline:
            broken.append(("deadlines", "deadline_passed",
                           f"the deadline was {task.deadline}"))
        reserved = m.reserved(tx.signer, now)
        for cap_name, period, cap, earned in m.caps(policy, tx.signer, now):
            if earned + reserved + task.reward > cap:
                broken.append(("caps at a claim", "cap_exceeded",
                               f"{cap_name} {period}: earned {earned} + reserved "
                               f"{reserved} + {task.reward} > {cap}"))
    if kind == "task.submit" and task is not None and now >= task.deadline:
        broken.append(("deadlines", "deadline_passed", f"the deadline was {task.deadline}"))
    if (kind == "task.withdraw" and task is not None and now >= task.deadline
            and m.claims.get((args["task"], tx.signer)) == "open"):
        broken.append(("deadlines", "not_found",
                       f"the claim expired at {task.deadline}"))
    if kind == "task.approve" and task is not None:
        for cap_name, period, cap, earned in m.caps(policy, args["citizen"], now):
            if earned + task.reward > cap:
                broken.append(("caps at an approval", "cap_exceeded",
                               f"{cap_name} {period}: earned {earned} + {task.reward} "
                               f"> {cap}"))
    if kind == "recovery.complete" and args["old"] in m.recoveries \
            and now < m.recoveries[args["old"]].effective:
        broken.append(("recoveries complete on time", "invalid_state",
                       f"it is effective at {m.recoveries[args['old']].effective}"))
    return broken



def check_state(state, acc: int, m: Model, now: int) -> None:
    """The state's invariants, read back from its bytes, against the model."""
    check("state root", adhash(state) == acc,
          "the accumulator is not the sum of the live entries' elements")
    records = {k: unpack(v) for k, v in entries(state, b"m/")}
    balances = {k: r["balance"] for k, r in records.items()}
    minted, redeemed = total(state, b"g/minted"), total(state, b"g/redeemed")
    check("supply", min(balances.values()) >= 0
          and sum(balances.values()) == minted - redeemed,
          lambda: f"balances {sum(balances.values())}, minted {minted}, "
                  f"redeemed {redeemed}")
    check("supply", (minted, redeemed) == (m.minted, m.redeemed)
          and balances == {k: x.balance for k, x in m.members.items()},
          lambda: f"balances {diff(balances, {k: x.balance for k, x in m.members.items()})}")
    for k, r in records.items():
        want = m.members[k]
        got = (r["role"], r["active"], r.get("frozen", False), r.get("recovered_to"),
               {n: r[n] for n in ("age_band", "area", "name", "organisation") if n in r},
               r.get("steward_cancelled", False))
        expected = (want.role, want.active, want.frozen, want.recovered_to, want.attrs,
                    want.steward_cancelled)
        check("members", got == expected, lambda: f"{name(k)}: {got}, expected {expected}")
    check("members", total(state, b"g/admins") == sum(
        1 for x in m.members.values() if x.role == "admin" and x.active), "g/admins")
    opened = {old: unpack(v) for old, v in entries(state, b"y/")}
    check("recoveries", {o: (r["new"], r["effective"]) for o, r in opened.items()}
          == {o: (r.new, r.effective) for o, r in m.recoveries.items()}
          and dict(entries(state, b"z/")) == {r.new: o for o, r in m.recoveries.items()},
          "open recoveries")
    # Earnings: as the model's, and within the caps in force when they were minted.
    earned = {(k[:32], k[32:].decode("ascii")): unpack(v) for k, v in entries(state, b"e/")}
    check("earnings within the caps", earned == m.earned,
          lambda: f"earnings {diff(earned, m.earned)}")
    for (k, period), cents in earned.items():
        check("earnings within the caps", cents <= m.cap_at_mint[(k, period)],
              lambda: f"{name(k)} earned {cents} in {period}, cap "
                      f"{m.cap_at_mint[(k, period)]}")
    # Reservations: the r/ record, summed here, is what the claims reserve.
    reserved = {}
    for k, v in entries(state, b"r/"):
        record = unpack(v)
        reserved[k] = record["submitted"] + sum(c for d, c in record["open"] if d > now)
    for k, x in m.members.items():
        want = m.reserved(k, now) if x.role == "citizen" else 0
        check("reservations", reserved.get(k, 0) == want,
              lambda: f"{name(k)} reserves {reserved.get(k, 0)}, expected {want}")
    # Slots and claims.
    claims = {}
    for rest, v in entries(state, b"k/"):
        task_id, citizen = split_id(rest)
        claims[(task_id, citizen)] = unpack(v)["state"]
    check("claims", claims == m.claims, lambda: f"claims {diff(claims, m.claims)}")
    for rest, v in entries(state, b"t/"):
        task_id, _ = split_id(rest)
        record = unpack(v)
        check("slots", record["taken"] == m.taken(task_id) <= record["slots"]
              and record["cancelled"] == m.tasks[task_id].cancelled,
              lambda: f"task {task_id}: taken {record['taken']} of {record['slots']}, "
                      f"expected {m.taken(task_id)}")
    # Spends: every payee a merchant, refunds within the spend, as the model's.
    spends = {}
    for tx_id, v in entries(state, b"x/"):
        if v:
            payer, payee, amount, refunded = unpack(v)
            role = records.get(payee, {}).get("role")
            check("only merchants receive spends", role == "merchant",
                  lambda: f"spend {tx_id.hex()} paid {name(payee)}, a {role}")
            check("refunds never above the spend", 0 <= refunded <= amount,
                  lambda: f"spend {tx_id.hex()}: {refunded} refunded of {amount}")
            spends[tx_id.hex()] = Spend(payer, payee, amount, refunded)
    check("model", spends == m.spends, lambda: f"spends {diff(spends, m.spends)}")
    # Payouts: redeemed coins, pending ones indexed by their merchant's key.
    payouts = {p.hex(): unpack(v) for p, v in entries(state, b"o/")}
    check("payouts", {p: Payout(r["merchant"], r["amount"], r["status"])
                      for p, r in payouts.items()} == m.payouts
          and sum(r["amount"] for r in payouts.values()) == redeemed, "payouts")
    index = {(k[:32], k[32:].hex()) for k, _ in entries(state, b"q/")}
    check("payouts", index == {(p.merchant, i) for i, p in m.payouts.items()
                               if p.status == "pending"}, "the pending payouts' index")
