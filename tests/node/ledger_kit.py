"""Helpers of the ledger's tests: deterministic keys, a genesis, certified batches and a
small story of signed transactions that touches every index of the store."""
from __future__ import annotations

import hashlib

import msgpack

from consensus.api import CommittedBatch
from consensus.digest import batch_digest, commit_bytes
from node.envelope import sign_tx
from node.executor import Executor
from node.genesis import Genesis, GenesisValidator, Organisation
from node.keys import Keypair

CHAIN = "heerlen-test"
VALIDATOR_NAMES = ("municipality", "cbs", "brightlands", "vng")
T0 = 1_740_000_000_000          # 2025-02-19, a year with a cap policy
HOUR_MS = 3_600_000


def keypair(name: str) -> Keypair:
    """A key derived from a name, so tests are reproducible without randomness."""
    return Keypair.from_seed(hashlib.sha256(b"test-key/" + name.encode()).digest())


def make_genesis(admin: Keypair) -> Genesis:
    validators = tuple(GenesisValidator(n, keypair(n).public) for n in VALIDATOR_NAMES)
    organisations = tuple(Organisation(n, (keypair("steward-" + n).public,))
                          for n in VALIDATOR_NAMES)
    return Genesis(chain=CHAIN, city="Heerlen", coin_name="Heerlens Heitje",
                   coin_symbol="HHT", validators=validators, admins=(admin.public,),
                   organisations=organisations, checkpoint_interval=4)


def certified(ledger: Executor, height: int, time_ms: int, envelopes: list[bytes],
              view: int = 0) -> CommittedBatch:
    """The committed batch of `envelopes` for `ledger`'s network (its door opens them,
    its genesis is signed for), with commits of a quorum (3 of 4)."""
    requests = ledger.door.inspect(envelopes)
    assert requests is not None
    digest = batch_digest(ledger.domain, height, time_ms, [r.digest for r in requests])
    message = commit_bytes(ledger.domain, view, height, digest)
    certificate = tuple((i, keypair(VALIDATOR_NAMES[i]).sign(message)) for i in range(3))
    return CommittedBatch(height, view, time_ms, digest, tuple(requests), certificate)


def numbered():
    """tx(pair, kind, **args): an envelope signed by `pair` on CHAIN, with the nonces 1, 2,
    ... in the order of the calls (a log's transactions, reproducibly)."""
    n = iter(range(1, 1_000_000))

    def tx(pair: Keypair, kind: str, **args) -> bytes:
        return sign_tx(pair, CHAIN, kind, args, nonce=next(n))
    return tx


def earning(tx, admin: Keypair, citizen: Keypair, shop: Keypair) -> list[list[bytes]]:
    """Five blocks: a citizen and a merchant registered, a task of 10.00 posted, claimed,
    submitted and approved: the citizen holds 10.00."""
    return [
        [tx(admin, "member.register", key=citizen.public, role="citizen",
            age_band="21plus", area="GMS"),
         tx(admin, "member.register", key=shop.public, role="merchant", name="Bakkerij")],
        [tx(admin, "task.post", task="litter-1", title="Pick up litter", area="GMS",
            domain="public-space", reward=1_000, minutes=120, slots=2,
            deadline=T0 + 100 * HOUR_MS)],
        [tx(citizen, "task.claim", task="litter-1")],
        [tx(citizen, "task.submit", task="litter-1", proof=b"p" * 32)],
        [tx(admin, "task.approve", task="litter-1", citizen=citizen.public)],
    ]


def story(admin: Keypair, spends: int = 3) -> list[tuple[int, list[bytes]]]:
    """(block time, envelopes) of each block: members, a task claimed, submitted and
    approved, spends, a refund, a redemption and its payout, a rejected and a duplicate
    transaction, and an empty block."""
    citizen, shop = keypair("citizen"), keypair("shop")
    tx = numbered()
    spend = tx(citizen, "coin.spend", to=shop.public, amount=100, memo="coffee")
    redeem = tx(shop, "coin.redeem", amount=50)
    redeem_id = hashlib.sha256(msgpack.unpackb(redeem)[0]).hexdigest()
    spend_id = hashlib.sha256(msgpack.unpackb(spend)[0]).hexdigest()
    blocks = earning(tx, admin, citizen, shop) + [
        [spend] + [tx(citizen, "coin.spend", to=shop.public, amount=10)
                   for _ in range(spends)],
        [tx(shop, "coin.refund", spend=spend_id, amount=30), redeem,
         tx(citizen, "coin.spend", to=citizen.public, amount=1)],   # invalid_args
        [],
        [tx(admin, "payout.confirm", payout=redeem_id, reference="SEPA-1"), spend],
    ]
    return [(T0 + (i + 1) * HOUR_MS, envelopes) for i, envelopes in enumerate(blocks)]
