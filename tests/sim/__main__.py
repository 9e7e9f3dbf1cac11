"""python -m tests.sim --seeds N --replicas R --byzantine B [--first S] [--ed25519]
                     [--storage-faults P] [--keep-going]

Runs N seeded simulations and prints seeds run, blocks committed, view changes, the
catch-up and storage-fault tallies, seeds per minute and violations. Exits 1 on a
violation, naming the failing seed."""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.sim.world import Settings, run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--byzantine", type=int, default=1)
    parser.add_argument("--ed25519", action="store_true", help="real signatures")
    parser.add_argument("--storage-faults", type=float, default=Settings.storage_faults,
                        help="chance per correct replica of each storage fault (0: none)")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at a violation")
    args = parser.parse_args(argv)
    started = time.monotonic()
    blocks = views = duplicates = run = fetches = refused = faults = 0
    caught_up = stale = served = refused_fetches = lost = fetch_requests = 0
    flood_served = flood_refused = 0
    lies: Counter = Counter()
    storage: Counter = Counter()
    failed: list[int] = []
    for seed in range(args.first, args.first + args.seeds):
        result = run_seed(Settings(seed=seed, replicas=args.replicas,
                                   byzantine=args.byzantine, ed25519=args.ed25519,
                                   storage_faults=args.storage_faults))
        run += 1
        blocks += result.blocks
        views += result.view_changes
        duplicates += result.duplicates
        fetches += result.batch_fetches
        refused += result.refused_batches
        faults += result.faults_seen
        fetch_requests += result.fetch_requests
        caught_up += result.catch_up_blocks
        lies.update(result.catch_up_refused)
        stale += result.stale_answers
        served += result.fetch_served
        refused_fetches += result.fetch_refused
        flood_served += result.flood_served
        flood_refused += result.flood_refused
        storage.update(result.storage_faults)
        lost += result.blocks_lost
        if result.violations:
            failed.append(seed)
            print(f"VIOLATION seed={seed}: {result.violations[0]}", flush=True)
            if not args.keep_going:
                break
    minutes = max(time.monotonic() - started, 1e-9) / 60
    print(f"seeds run: {run}  replicas: {args.replicas}  byzantine: {args.byzantine}")
    print(f"blocks committed: {blocks}  view changes: {views}  duplicate executions: "
          f"{duplicates}")
    print(f"batch fetches: {fetches}  wrong answers refused: {refused}  "
          f"faults recorded (all Byzantine): {faults}")
    print(f"catch-up: {fetch_requests} requests, {served} served, {refused_fetches} refused, "
          f"{caught_up} blocks applied, {stale} stale answers; flood requests: "
          f"{flood_served} served, {flood_refused} refused")
    print(f"Byzantine catch-up blocks refused: {sum(lies.values())} ({_counts(lies)})")
    print(f"storage faults: {sum(storage.values())} ({_counts(storage)}), "
          f"ledger transactions lost: {lost}")
    print(f"seeds per minute: {run / minutes:.0f}  violations: {len(failed)}"
          + (f"  failing seeds: {failed}" if failed else ""))
    return 1 if failed else 0


def _counts(counter: Counter) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counter.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
