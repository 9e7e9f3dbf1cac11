"""How fast `stadsmunt audit` replays a log, beside cores x the machine's bare Ed25519
verify rate measured in the same run.

The log is built once into a temporary folder: 200 citizens earn coins through a task,
then spend them in blocks of 1,000 coin.spend transactions, each block certified by 3 of
4 validators and a checkpoint every 64 blocks, executed by node.executor into a real
store. The audit is then timed from opening the folder to its summary: every envelope
signature, every certificate signature, re-execution and every comparison included.

    python -m bench.audit_replay [--txs 200000] [--batch 1000] [--jobs N] [--log DIR] [--json]

Besides wall-clock figures it reports CPU time: the audit's CPU-seconds per transaction
(main process and pool together) beside the CPU-seconds of one bare verify. On a machine
that other work shares, wall-clock rates depend on what else runs; the CPU figures show
what the audit would do with the cores to itself. `--log DIR` keeps the built log in DIR
and reuses it on the next run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from consensus.api import CommittedBatch, StableCheckpoint
from consensus.digest import batch_digest, checkpoint_bytes, commit_bytes
from node.audit import audit, open_source
from node.audit.verify import default_jobs
from node.envelope import Door, sign_tx
from node.executor import open_ledger
from node.genesis import GENESIS_TAG, Genesis, GenesisValidator, Organisation
from node.keys import Keypair, verify
from bench.proc import best_verify_rate as verify_rate

CHAIN = "bench-audit"
T0 = 1_740_000_000_000      # 2025-02-19
CITIZENS = 200
REWARD = 5_000              # cents minted to each citizen: 5,000 spends of 1 cent
VALIDATORS = ("municipality", "cbs", "brightlands", "vng")


def key(name: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(b"bench-audit/" + name.encode()).digest())


def _spends(args: tuple[int, int]) -> list[bytes]:
    start, count = args
    merchant = key("merchant").public
    return [sign_tx(key(f"citizen{i % CITIZENS}"), CHAIN, "coin.spend",
                    {"to": merchant, "amount": 1}, nonce=10_000_000 + i)
            for i in range(start, start + count)]


def build(path: str, txs: int, batch: int, jobs: int, block_ms: int = 1_000) -> Genesis:
    """The log at `path`; blocks `block_ms` apart (the research bench spreads them over
    months)."""
    admin, merchant = key("admin"), key("merchant")
    citizens = [key(f"citizen{i}") for i in range(CITIZENS)]
    genesis = Genesis(CHAIN, "Bench", "Bench coin", "BC",
                      tuple(GenesisValidator(n, key(n).public) for n in VALIDATORS),
                      (admin.public,),
                      tuple(Organisation(n, (key("steward-" + n).public,)) for n in VALIDATORS),
                      checkpoint_interval=64)
    executor = open_ledger(path, genesis, Door(CHAIN, capacity=batch + 1000))
    nonce = iter(range(1, 1 << 30))

    def tx(pair, kind, **args):
        return sign_tx(pair, CHAIN, kind, args, nonce=next(nonce))

    height, time_ms = 0, T0

    def block(envelopes):
        nonlocal height, time_ms
        height += 1
        time_ms += block_ms
        requests = executor.door.inspect(envelopes)
        assert requests is not None
        digest = batch_digest(executor.domain, height, time_ms, [r.digest for r in requests])
        message = commit_bytes(executor.domain, 0, height, digest)
        certificate = tuple((i, key(VALIDATORS[i]).sign(message)) for i in range(3))
        block_hash = executor.execute(CommittedBatch(height, 0, time_ms, digest,
                                                     tuple(requests), certificate))
        if height % genesis.checkpoint_interval == 0:
            set_hash = executor.newest_set_hash()
            message = checkpoint_bytes(executor.domain, height, block_hash, set_hash)
            executor.keep_checkpoint(StableCheckpoint(
                height, block_hash, set_hash, tuple((i, key(VALIDATORS[i]).sign(message))
                                                    for i in range(1, 4))))

    block([tx(admin, "member.register", key=merchant.public, role="merchant", name="Shop")]
          + [tx(admin, "member.register", key=c.public, role="citizen", age_band="21plus",
                area="GMS") for c in citizens]
          + [tx(admin, "task.post", task="bench", title="Bench task", area="GMS",
                domain="public-space", reward=REWARD, minutes=600, slots=CITIZENS,
                deadline=T0 + 86_400_000 + 10 * block_ms)])
    block([tx(c, "task.claim", task="bench") for c in citizens])
    block([tx(c, "task.submit", task="bench", proof=b"p" * 32) for c in citizens])
    block([tx(admin, "task.approve", task="bench", citizen=c.public) for c in citizens])
    with ProcessPoolExecutor(jobs) as pool:     # signing is the clients' work: in parallel
        parts = [(at, min(batch, txs - at)) for at in range(0, txs, batch)]
        for envelopes in pool.map(_spends, parts, chunksize=4):
            block(envelopes)
    executor.store.close()
    return genesis


def verify_cpu_seconds(count: int = 20_000) -> float:
    """CPU-seconds of one bare verify, by this process's CPU clock (load does not count)."""
    pair = key("verify")
    message = b"stadsmunt/tx/v1" + bytes(120)
    signature = pair.sign(message)
    started = time.process_time()
    for _ in range(count):
        verify(pair.public, message, signature)
    return (time.process_time() - started) / count


def cpu_seconds() -> float:
    """This process's CPU time and that of its children that have ended (the pool)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed_audit(path: str, genesis_hash: bytes, jobs: int) -> tuple[dict, float, float]:
    cpu, started = cpu_seconds(), time.perf_counter()
    source = open_source(path, None)
    report = audit([source], pin=genesis_hash, jobs=jobs)
    source.close()
    seconds = time.perf_counter() - started
    assert report.failure is None, report.failure
    return report.summary, seconds, cpu_seconds() - cpu


def run(txs: int, batch: int, jobs: int, log: str | None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        path = log or scratch
        started = time.perf_counter()
        if Path(path, "data.mdb").is_file():
            genesis_hash = genesis_hash_of(path)
        else:
            genesis_hash = build(path, txs, batch, jobs).hash()
        built = time.perf_counter() - started
        rate = verify_rate()
        summary, seconds, cpu = timed_audit(path, genesis_hash, jobs)
        rate = max(rate, verify_rate())
        per_verify = verify_cpu_seconds()
    count = summary["transactions"]
    bound = jobs * rate
    return {"transactions": count, "blocks": summary["blocks"],
            "signatures": summary["signatures"], "jobs": jobs,
            "build_seconds": round(built, 1), "audit_seconds": round(seconds, 2),
            "audit_tx_per_s": round(count / seconds),
            "ed25519_verify_per_s_one_core": round(rate),
            "bound_cores_x_verify": round(bound),
            "share_of_bound": round(count / seconds / bound, 3),
            "audit_cpu_us_per_tx": round(cpu / count * 1e6, 1),
            "verify_cpu_us": round(per_verify * 1e6, 1),
            "cpu_share_of_bound": round(per_verify / (cpu / count), 3)}


def genesis_hash_of(path: str) -> bytes:
    source = open_source(path, None)
    try:
        return hashlib.sha256(GENESIS_TAG + source.genesis_bytes).digest()
    finally:
        source.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="processes checking signatures (default: every core)")
    parser.add_argument("--log", help="a folder to build the log in once and reuse")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.txs <= CITIZENS * REWARD or not 1 <= args.batch <= 1_000:
        parser.error(f"--txs is 1 to {CITIZENS * REWARD}, --batch 1 to 1000")
    figures = run(args.txs, args.batch, max(1, args.jobs), args.log)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"audit: {figures['audit_tx_per_s']} tx/s ({figures['transactions']} "
              f"transactions in {figures['blocks']} blocks, {figures['signatures']} "
              f"signatures, {figures['audit_seconds']} s with {figures['jobs']} jobs)")
        print(f"bound: {figures['jobs']} cores x {figures['ed25519_verify_per_s_one_core']} "
              f"verifies/s = {figures['bound_cores_x_verify']}/s; the audit runs at "
              f"{figures['share_of_bound']:.0%} of it")
        print(f"cpu: {figures['audit_cpu_us_per_tx']} us per transaction (all processes) "
              f"beside {figures['verify_cpu_us']} us per bare verify: with the cores to "
              f"itself the audit runs at {figures['cpu_share_of_bound']:.0%} of the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
