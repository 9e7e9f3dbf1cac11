"""python -m tests.sim --seeds N --replicas R --byzantine B [--first S] [--ed25519]
                     [--storage-faults P] [--keep-going]
python -m tests.sim --reconfig --seeds N [--pool P] [--replicas R] [--byzantine B]
                     [--switches S] [--replace-in-interval] [--first S] [--keep-going]

Runs N seeded simulations and prints seeds run, blocks committed, view changes, the
catch-up and storage-fault tallies, seeds per minute and violations. Exits 1 on a
violation, naming the failing seed.

With --reconfig the runs change validator sets (tests/sim/reconfig.py): a pool of P
identities (8), genesis R of them (4), B Byzantine (2, at most f of every set), S planned
changes (4); it prints the set changes, replacements and handovers too. With --keep-going
every violation is printed."""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.sim.reconfig import reconfig_settings
from tests.sim.world import Settings, run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--byzantine", type=int, default=None,
                        help="Byzantine replicas (default 1; with --reconfig, 2 identities)")
    parser.add_argument("--ed25519", action="store_true", help="real signatures")
    parser.add_argument("--storage-faults", type=float, default=Settings.storage_faults,
                        help="chance per correct replica of each storage fault (0: none)")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at a violation")
    parser.add_argument("--reconfig", action="store_true",
                        help="validator set changes (tests/sim/reconfig.py)")
    parser.add_argument("--pool", type=int, default=8, help="identities, with --reconfig")
    parser.add_argument("--switches", type=int, default=4,
                        help="planned set changes, with --reconfig")
    parser.add_argument("--replace-in-interval", action="store_true",
                        help="with --reconfig: decoys a planned change may replace from "
                             "the same first height (one checkpoint interval)")
    args = parser.parse_args(argv)
    if args.reconfig:
        return reconfig_main(args)
    if args.byzantine is None:
        args.byzantine = 1
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


def reconfig_main(args) -> int:
    replicas = args.replicas
    byzantine = 2 if args.byzantine is None else args.byzantine
    started = time.monotonic()
    run = blocks = switches = planned = plan = replaced = handovers = views = 0
    stale = caught_up = faults = 0
    sizes: Counter = Counter()
    storage: Counter = Counter()
    failed: list[int] = []
    for seed in range(args.first, args.first + args.seeds):
        result = run_seed(reconfig_settings(
            seed, pool=args.pool, replicas=replicas, byzantine=byzantine,
            switches=args.switches, ed25519=args.ed25519, storage_faults=args.storage_faults,
            replace_in_interval=args.replace_in_interval))
        run += 1
        blocks += result.blocks
        switches += result.switches
        planned += result.planned
        plan += result.plan
        replaced += result.replaced
        handovers += result.handovers
        views += result.view_changes
        stale += result.stale_faults
        caught_up += result.catch_up_blocks
        faults += result.faults_seen
        sizes.update(result.sizes)
        storage.update(result.storage_faults)
        if result.violations:
            failed.append(seed)
            print(f"VIOLATION seed={seed}: {result.violations[0]}", flush=True)
            if not args.keep_going:
                break
    minutes = max(time.monotonic() - started, 1e-9) / 60
    print(f"seeds run: {run}  pool: {args.pool}  genesis: {replicas}  byzantine: "
          f"{byzantine}  planned changes per seed: {args.switches}")
    print(f"blocks committed: {blocks}  view changes: {views}  catch-up blocks applied: "
          f"{caught_up}  faults recorded (all Byzantine): {faults}")
    print(f"set changes in force: {switches} (planned ones: {planned} of {plan})  pending sets "
          f"replaced: {replaced}  replica handovers: {handovers}  set sizes: "
          f"{_counts(sizes)}")
    print(f"faults recorded on a removed validator's stale place: {stale}  storage "
          f"faults: {sum(storage.values())}")
    print(f"seeds per minute: {run / minutes:.0f}  violations: {len(failed)}"
          + (f"  failing seeds: {failed}" if failed else ""))
    return 1 if failed else 0


def _counts(counter: Counter) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counter.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
