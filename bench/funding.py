"""Money for the bench's load, made the only way coins exist: approved claims within the
caps. Under the genesis cap policies (cap policies and reviewers are governed, so the
admin alone sets neither), the municipality registers merchants and enough citizens,
posts one task with a slot for each citizen, and approves every citizen's work itself;
each citizen then holds one reward, spent one cent at a time in pre-signed coin.spend
envelopes.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from client import Client, now_ms
from node.keys import Keypair
from protocol.envelope import make_body, seal

REWARD = 15_000            # cents each citizen earns once: 150.00
MINUTES = 1_620            # 27 hours: 5.56 an hour, under the genesis 2026 cap of 5.75
MERCHANTS = 4
DAY_MS = 24 * 3600 * 1000
SIGN_CHUNK = 20_000        # envelopes one signing process makes per call
# spends per citizen: each citizen key stays within its share at the validators' door
# ([limits] signer_burst 1,000 at once, signer_rate_per_s 100), as many real citizens
# would, so the bench measures the network, not one key's limit
SPENDS_EACH = 500


class SetupFailed(Exception):
    pass


@dataclass(frozen=True)
class Funded:
    chain: str
    citizens: tuple[bytes, ...]     # seeds; each holds REWARD cents
    merchants: tuple[bytes, ...]    # public keys


def citizens_for(spends: int) -> int:
    return max(2, -(-spends // SPENDS_EACH))


async def _all_committed(client: Client, signed: list[tuple[Keypair, str, dict]],
                         what: str) -> None:
    envelopes = [await client.sign(kind, args, signer) for signer, kind, args in signed]
    for start in range(0, len(envelopes), 1000):
        answers = await client.submit_many(envelopes[start:start + 1000], wait=True,
                                           timeout_s=120.0)
        wrong = [a for a in answers if a["status"] != "committed"]
        if wrong:
            raise SetupFailed(f"{what}: {len(wrong)} not committed, e.g. "
                              f"{wrong[0].get('code')}: {wrong[0].get('detail')}")


async def fund(client: Client, citizens: int) -> Funded:
    """`client` speaks as the admin. Returns the funded citizens and the merchants."""
    chain = await client.chain_id()
    people = [Keypair.generate() for _ in range(citizens)]
    shops = [Keypair.generate() for _ in range(MERCHANTS)]
    admin = client.key
    regs = [(admin, "member.register", {"key": p.public, "role": "citizen",
                                         "age_band": "21plus", "area": "Centrum"})
             for p in people]
    regs += [(admin, "member.register", {"key": s.public, "role": "merchant",
                                         "name": f"Bench shop {i + 1}"})
             for i, s in enumerate(shops)]
    await _all_committed(client, regs, "registrations")
    for start in range(0, citizens, 10_000):      # a task has at most 10,000 slots
        task = f"bench-{start // 10_000}"
        group = people[start:start + 10_000]
        await _all_committed(client, [(admin, "task.post", {
            "task": task, "title": "Bench work", "area": "Centrum",
            "domain": "public-space", "reward": REWARD, "minutes": MINUTES,
            "slots": len(group), "deadline": now_ms() + 14 * DAY_MS})], "task")
        await _all_committed(client, [(p, "task.claim", {"task": task}) for p in group],
                             "claims")
        await _all_committed(client, [(p, "task.submit", {
            "task": task, "proof": hashlib.sha256(p.public).digest()}) for p in group],
            "submissions")
        await _all_committed(client, [(admin, "task.approve", {
            "task": task, "citizen": p.public}) for p in group], "approvals")
    return Funded(chain, tuple(p.seed for p in people), tuple(s.public for s in shops))


def _sign_range(chain: str, seeds: tuple[bytes, ...], merchants: tuple[bytes, ...],
                salt: int, start: int, end: int) -> list[bytes]:
    pairs = [Keypair.from_seed(s) for s in seeds]
    out = []
    for i in range(start, end):
        payer = pairs[i % len(pairs)]
        body = make_body(chain, "coin.spend", payer.public, salt + i,
                         {"to": merchants[i % len(merchants)], "amount": 1})
        out.append(seal(payer, body))
    return out


def presign(funded: Funded, start: int, count: int, workers: int = 0) -> list[bytes]:
    """`count` one-cent spends, numbered from `start` (so the two phases never share an
    envelope), signed in `workers` processes (default: one per core)."""
    assert start + count <= len(funded.citizens) * SPENDS_EACH, "more spends than planned"
    salt = int.from_bytes(os.urandom(4), "big") << 32   # fresh tx ids on every run
    ranges = [(s, min(s + SIGN_CHUNK, start + count))
              for s in range(start, start + count, SIGN_CHUNK)]
    if len(ranges) <= 1:
        return [e for a, b in ranges
                for e in _sign_range(funded.chain, funded.citizens, funded.merchants, salt,
                                     a, b)]
    with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
        parts = pool.map(_sign_range, *zip(*[(funded.chain, funded.citizens,
                                              funded.merchants, salt, a, b)
                                             for a, b in ranges]))
        return [e for part in parts for e in part]
