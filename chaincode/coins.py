"""Money after minting: coin.spend/refund/redeem and payout.confirm.

Rules:
- a spend goes to an active merchant other than the payer; citizens never pay each other;
- a merchant refunds a spend paid to it (or to a key it was recovered from), to the
  payer's current key, and the refunds of one spend never exceed it;
- a redemption burns coins and opens a payout whose id is the transaction id; the admin
  confirms it once, also after the merchant has left;
- supply: the sum of balances is always minted - redeemed.

The spend itself is kept in its executed-id entry (x/ + id: [from, to, amount,
refunded]) so the hot kind writes one key for the replay guard and the refund record.
"""
from __future__ import annotations

from . import state as st
from .context import Context
from .errors import Reject


def spend(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, to, amount = c.view, args["to"], args["amount"]
    merchant = st.get_member(view, to)
    if merchant is None or merchant["role"] != "merchant" or not merchant["active"]:
        raise Reject("not_a_merchant")
    if member["balance"] < amount:
        raise Reject("insufficient_funds")
    member["balance"] -= amount
    merchant["balance"] += amount
    st.put_member(view, signer, member, ordered=True)
    st.put_member(view, to, merchant, ordered=True)
    view.put(tx_key, st.pack_scalars([signer, to, amount, 0]))
    return [{"kind": "coin.spent", "from": signer, "to": to, "amount": amount,
             "memo": args.get("memo", "")}]


def refund(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, amount = c.view, args["amount"]
    spend_key = st.EXECUTED + bytes.fromhex(args["spend"])
    raw = view.get(spend_key)
    if not raw:                                  # unknown id, or not a spend
        raise Reject("not_found")
    payer, payee, paid, refunded = st.unpack(raw)
    if st.current_key(view, payee) != signer:
        raise Reject("not_found")
    if amount > paid - refunded:
        raise Reject("invalid_state")
    if member["balance"] < amount:
        raise Reject("insufficient_funds")
    to = st.current_key(view, payer)
    assert to != signer, "a merchant refunding itself"
    receiver = st.get_member(view, to)
    member["balance"] -= amount
    receiver["balance"] += amount
    st.put_member(view, signer, member)
    st.put_member(view, to, receiver)
    view.put(spend_key, st.pack_scalars([payer, payee, paid, refunded + amount]))
    return [{"kind": "coin.refunded", "from": signer, "to": to, "amount": amount,
             "spend": args["spend"]}]


def redeem(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, amount = c.view, args["amount"]
    if member["balance"] < amount:
        raise Reject("insufficient_funds")
    member["balance"] -= amount
    st.put_member(view, signer, member)
    view.put(st.REDEEMED, st.pack(st.get_int(view, st.REDEEMED) + amount))
    payout_id = tx_key[len(st.EXECUTED):]
    view.put(st.PAYOUT + payout_id,
             st.pack({"merchant": signer, "amount": amount, "status": "pending"}))
    view.put(st.PAYOUT_INDEX + signer + payout_id, b"")
    return [{"kind": "coin.redeemed", "merchant": signer, "amount": amount,
             "payout": payout_id.hex()}]


def confirm(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view = c.view
    payout_id = bytes.fromhex(args["payout"])
    raw = view.get(st.PAYOUT + payout_id)
    if raw is None:
        raise Reject("not_found")
    payout = st.unpack(raw)
    if payout["status"] != "pending":
        raise Reject("invalid_state")
    payout.update(status="paid", reference=args["reference"])
    view.put(st.PAYOUT + payout_id, st.pack(payout))
    view.put(st.PAYOUT_INDEX + payout["merchant"] + payout_id, None)
    return [{"kind": "payout.confirmed", "payout": args["payout"],
             "reference": args["reference"]}]
