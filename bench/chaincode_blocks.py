"""Measure the chaincode alone on the hot kind: blocks of coin.spend, state root included.

    python -m bench.chaincode_blocks [--blocks N] [--block-size N] [--citizens N]

Builds a state with citizens who earned coins through approved tasks and merchants, then
times execute_block over blocks of spends (execution, net writes and the state root; not
applying the writes to the store, which is the node's cost).
"""
from __future__ import annotations

import argparse
import hashlib
import time

import chaincode
from chaincode.api import BlockContext, Tx
from chaincode.queries import InMemoryState

T0_MS = 1_748_736_000_000       # 2025-06-01T00:00:00Z
RULES = 1
# the block context's chain constants: a checkpoint interval K of 16 and its switch
# margin M (max(4K, 64) rounded up to a multiple of K, node/genesis.py)
INTERVAL, MARGIN = 16, 64


def _key(tag: str, i: int) -> bytes:
    return hashlib.sha256(f"{tag}/{i}".encode()).digest()


class _Chain:
    def __init__(self, admin: bytes):
        writes, self.acc = chaincode.genesis_state(
            RULES, [admin], chaincode.DEFAULT_POLICIES,
            [{"id": "city", "stewards": [_key("steward", 0)]}],
            [{"name": "v0", "key": _key("validator", 0), "organisation": "city"}])
        self.state = InMemoryState(writes)
        self.height = 0
        self.count = 0

    def tx(self, signer: bytes, kind: str, **args) -> Tx:
        self.count += 1
        return Tx(hashlib.sha256(b"bench/%d" % self.count).hexdigest(), signer, kind, args)

    def run(self, txs: list[Tx], time_ms: int):
        self.height += 1
        context = BlockContext(self.height, time_ms, MARGIN, INTERVAL)
        outcome = chaincode.execute_block(RULES, self.state, context, txs, self.acc)
        bad = [r for r in outcome.results if r.code != "ok"]
        assert not bad, bad[:3]
        self.state.apply(outcome.writes)
        self.acc = outcome.state_acc
        return outcome


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--merchants", type=int, default=20)
    opts = parser.parse_args(argv)

    admin = _key("admin", 0)
    chain = _Chain(admin)
    citizens = [_key("citizen", i) for i in range(opts.citizens)]
    merchants = [_key("merchant", i) for i in range(opts.merchants)]
    setup = [chain.tx(admin, "member.register", key=k, role="citizen", age_band="21plus",
                      area="GMS") for k in citizens]
    setup += [chain.tx(admin, "member.register", key=k, role="merchant", name=f"shop {i}")
              for i, k in enumerate(merchants)]
    setup.append(chain.tx(admin, "task.post", task="bench", title="Bench", area="GMS",
                          domain="care", reward=20_000, minutes=10_080,
                          slots=opts.citizens, deadline=T0_MS + 10**9))
    setup += [chain.tx(k, "task.claim", task="bench") for k in citizens]
    setup += [chain.tx(k, "task.submit", task="bench", proof=bytes(32)) for k in citizens]
    setup += [chain.tx(admin, "task.approve", task="bench", citizen=k) for k in citizens]
    chain.run(setup, T0_MS)

    blocks = []
    for b in range(opts.blocks):
        txs = []
        for i in range(opts.block_size):
            n = b * opts.block_size + i
            txs.append(chain.tx(citizens[n % len(citizens)], "coin.spend",
                                to=merchants[n % len(merchants)], amount=1))
        blocks.append(txs)

    elapsed = cpu = 0.0
    for b, txs in enumerate(blocks):
        start, start_cpu = time.perf_counter(), time.process_time()
        outcome = chaincode.execute_block(RULES, chain.state,
                                          BlockContext(chain.height + 1, T0_MS + b + 1, MARGIN,
                                                       INTERVAL),
                                          txs, chain.acc)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        assert all(r.code == "ok" for r in outcome.results)
        chain.height += 1
        chain.state.apply(outcome.writes)
        chain.acc = outcome.state_acc
    total = opts.blocks * opts.block_size
    # CPU time is the fair figure on a busy machine; wall time is what a caller waits.
    print(f"coin.spend: {total} in {cpu:.3f} s of CPU = {total / cpu:,.0f} spends/s "
          f"(wall {elapsed:.3f} s = {total / elapsed:,.0f}/s; blocks of {opts.block_size}, "
          f"{opts.citizens} citizens, {opts.merchants} merchants, one core)")


if __name__ == "__main__":
    main()
