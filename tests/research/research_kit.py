"""A certified log over three local months for the research tests: February 2025 (a
citizen earns 10.00 and spends with a memo), March (a spend, a refund, a redemption and
its payout, a second citizen registered) and April (a spend: the open month)."""
from __future__ import annotations

import hashlib

import msgpack

from audit_kit import build_blocks
from ledger_kit import HOUR_MS, T0, earning, keypair, make_genesis, numbered

ADMIN = keypair("admin")
CITIZEN, SHOP, OTHER = keypair("citizen"), keypair("shop"), keypair("citizen-2")
DAY_MS = 24 * HOUR_MS
MEMO = "koffie bij Anna op de Markt"
PROOF = b"p" * 32                       # earning()'s proof
MONTHS = ("2025-02", "2025-03")         # closed at the end of the log; April is open


def _id(envelope: bytes) -> str:
    return hashlib.sha256(msgpack.unpackb(envelope)[0]).hexdigest()


def blocks() -> list[tuple[int, list[bytes]]]:
    tx = numbered()
    february = earning(tx, ADMIN, CITIZEN, SHOP) + [
        [tx(CITIZEN, "coin.spend", to=SHOP.public, amount=250, memo=MEMO)]]
    spend = tx(CITIZEN, "coin.spend", to=SHOP.public, amount=300)
    redeem = tx(SHOP, "coin.redeem", amount=200)
    march = [
        [tx(ADMIN, "member.register", key=OTHER.public, role="citizen", age_band="under21",
            area="HRL-Noord")],
        [spend],
        [tx(SHOP, "coin.refund", spend=_id(spend), amount=100), redeem],
        [tx(ADMIN, "payout.confirm", payout=_id(redeem), reference="SEPA-2025-03")]]
    april = [[tx(CITIZEN, "coin.spend", to=SHOP.public, amount=50)]]
    timed = [(T0 + i * HOUR_MS, b) for i, b in enumerate(february, 1)]      # 19 Feb on
    timed += [(T0 + 20 * DAY_MS + i * HOUR_MS, b) for i, b in enumerate(march, 1)]
    timed += [(T0 + 45 * DAY_MS + i * HOUR_MS, b) for i, b in enumerate(april, 1)]
    return timed


def build(path, upto: int | None = None):
    """The log (its first `upto` blocks) in a validator's data folder at `path`."""
    return build_blocks(path, make_genesis(ADMIN), blocks()[:upto])
