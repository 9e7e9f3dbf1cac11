"""How fast `stadsmunt audit` replays a log, beside cores x the machine's bare Ed25519
verify rate measured in the same run.

The log is built once into a temporary folder: 200 citizens earn coins through a task,
then spend them in blocks of 1,000 coin.spend transactions, each block certified by 3 of
4 validators and a checkpoint every 64 blocks, executed by node.executor into a real
store. The audit is then timed from opening the folder to its summary: every envelope
signature, every certificate signature, re-execution and every comparison included.

    python ops/bench_audit.py [--txs 200000] [--batch 1000] [--jobs N] [--json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

from consensus.api import CommittedBatch, StableCheckpoint
from consensus.digest import batch_digest, checkpoint_bytes, commit_bytes
from node.audit import audit, open_source
from node.audit.verify import default_jobs
from node.envelope import Door, sign_tx
from node.executor import open_ledger
from node.genesis import Genesis, Validator
from node.keys import Keypair
from ops.bench_executor import verify_rate

CHAIN = "bench-audit"
T0 = 1_740_000_000_000      # 2025-02-19
CITIZENS = 200
REWARD = 1_000              # cents minted to each citizen: 1,000 spends of 1 cent
VALIDATORS = ("municipality", "cbs", "brightlands", "vng")


def key(name: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(b"bench-audit/" + name.encode()).digest())


def _spends(args: tuple[int, int]) -> list[bytes]:
    start, count = args
    merchant = key("merchant").public
    return [sign_tx(key(f"citizen{i % CITIZENS}"), CHAIN, "coin.spend",
                    {"to": merchant, "amount": 1}, nonce=10_000_000 + i)
            for i in range(start, start + count)]


def build(path: str, txs: int, batch: int, jobs: int) -> Genesis:
    admin, merchant = key("admin"), key("merchant")
    citizens = [key(f"citizen{i}") for i in range(CITIZENS)]
    genesis = Genesis(CHAIN, "Bench", "Bench coin", "BC",
                      tuple(Validator(n, key(n).public) for n in VALIDATORS),
                      (admin.public,), checkpoint_interval=64)
    executor = open_ledger(path, genesis, Door(CHAIN, capacity=batch + 1000))
    nonce = iter(range(1, 1 << 30))

    def tx(pair, kind, **args):
        return sign_tx(pair, CHAIN, kind, args, nonce=next(nonce))

    height, time_ms = 0, T0

    def block(envelopes):
        nonlocal height, time_ms
        height += 1
        time_ms += 1_000
        requests = executor.door.inspect(envelopes)
        assert requests is not None
        digest = batch_digest(CHAIN, height, time_ms, [r.digest for r in requests])
        message = commit_bytes(CHAIN, 0, height, digest)
        certificate = tuple((i, key(VALIDATORS[i]).sign(message)) for i in range(3))
        block_hash = executor.execute(CommittedBatch(height, 0, time_ms, digest,
                                                     tuple(requests), certificate))
        if height % genesis.checkpoint_interval == 0:
            message = checkpoint_bytes(CHAIN, height, block_hash)
            executor.keep_checkpoint(StableCheckpoint(
                height, block_hash, tuple((i, key(VALIDATORS[i]).sign(message))
                                          for i in range(1, 4))))

    block([tx(admin, "member.register", key=merchant.public, role="merchant", name="Shop")]
          + [tx(admin, "member.register", key=c.public, role="citizen", age_band="21plus",
                area="GMS") for c in citizens]
          + [tx(admin, "task.post", task="bench", title="Bench task", area="GMS",
                domain="public-space", reward=REWARD, minutes=120, slots=CITIZENS,
                deadline=T0 + 86_400_000)])
    block([tx(c, "task.claim", task="bench") for c in citizens])
    block([tx(c, "task.submit", task="bench", proof=b"p" * 32) for c in citizens])
    block([tx(admin, "task.approve", task="bench", citizen=c.public) for c in citizens])
    with ProcessPoolExecutor(jobs) as pool:     # signing is the clients' work: in parallel
        parts = [(at, min(batch, txs - at)) for at in range(0, txs, batch)]
        for envelopes in pool.map(_spends, parts, chunksize=4):
            block(envelopes)
    executor.store.close()
    return genesis


def run(txs: int, batch: int, jobs: int, directory: str | None) -> dict:
    with tempfile.TemporaryDirectory(dir=directory) as path:
        started = time.perf_counter()
        genesis = build(path, txs, batch, jobs)
        built = time.perf_counter() - started
        rate = verify_rate()
        started = time.perf_counter()
        source = open_source(path, None)
        report = audit([source], pin=genesis.hash(), jobs=jobs)
        seconds = time.perf_counter() - started
        source.close()
        rate = max(rate, verify_rate())
    assert report.failure is None, report.failure
    summary = report.summary
    bound = jobs * rate
    return {"transactions": summary["transactions"], "blocks": summary["blocks"],
            "signatures": summary["signatures"], "jobs": jobs,
            "build_seconds": round(built, 1), "audit_seconds": round(seconds, 2),
            "audit_tx_per_s": round(summary["transactions"] / seconds),
            "ed25519_verify_per_s_one_core": round(rate),
            "bound_cores_x_verify": round(bound),
            "share_of_bound": round(summary["transactions"] / seconds / bound, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="processes checking signatures (default: every core)")
    parser.add_argument("--dir", help="where to put the temporary log (default: /tmp)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.txs <= CITIZENS * REWARD or not 1 <= args.batch <= 1_000:
        parser.error(f"--txs is 1 to {CITIZENS * REWARD}, --batch 1 to 1000")
    figures = run(args.txs, args.batch, max(1, args.jobs), args.dir)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"audit: {figures['audit_tx_per_s']} tx/s ({figures['transactions']} "
              f"transactions in {figures['blocks']} blocks, {figures['signatures']} "
              f"signatures, {figures['audit_seconds']} s with {figures['jobs']} jobs)")
        print(f"bound: {figures['jobs']} cores x {figures['ed25519_verify_per_s_one_core']} "
              f"verifies/s = {figures['bound_cores_x_verify']}/s; the audit runs at "
              f"{figures['share_of_bound']:.0%} of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
