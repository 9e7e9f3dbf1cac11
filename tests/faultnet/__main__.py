"""python -m tests.faultnet [--scenario NAME ...] [--seconds N] [--clients C] [--seed S]
[--keep] [--json FILE]

Runs the scenarios (all by default, in the order of tests/faultnet/scenarios.py), each on
a fresh network of four validator processes, and prints one row per scenario: committed
tx/s and p99 latency during the fault, view changes, seconds from the heal to the first
commit of a fresh transaction, bytes between validators per acknowledged transaction,
the machine's load average at the start and end of the fault, and the checks passed.
Every failed check is printed in full after the table, with the folder kept for its
logs. Exit 1 when any check failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from tests.faultnet.scenarios import CLIENTS, SCENARIOS, Outcome, run_scenario


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "tx/s", "p99 ms", "p50 ms", "view changes", "heal to commit s",
             "peer B/tx", "load", "checks")]
    for o in outcomes:
        passed = sum(c.ok for c in o.checks)
        rows.append((o.scenario, f"{o.tx_per_s:,.0f}", _ms(o.p99_ms), _ms(o.p50_ms),
                     "-" if o.view_changes is None else str(o.view_changes),
                     "-" if o.heal_to_commit_s is None else f"{o.heal_to_commit_s:.2f}",
                     "-" if o.peer_bytes_per_tx is None else f"{o.peer_bytes_per_tx:,.0f}",
                     "-" if "load" not in o.notes else
                     "{:.1f}-{:.1f}".format(*o.notes["load"]),
                     f"{passed}/{len(o.checks)}" + ("" if o.ok else " FAILED")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faultnet",
        description="Runs fault scenarios on four real validator processes and prints a "
                    "table of their outcomes (docs/faults.md).")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run this one (repeat); default: all")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="how long each fault lasts (default 15)")
    parser.add_argument("--clients", type=int, default=CLIENTS,
                        help=f"clients submitting at once (default {CLIENTS})")
    parser.add_argument("--seed", type=int, default=None, help="the proxy's and the "
                        "scenarios' random seed (default: a new one each run, printed)")
    parser.add_argument("--keep", action="store_true",
                        help="keep every network's folder (failed ones are always kept)")
    parser.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    args = parser.parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    outcomes = []
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    for name in names:
        outcome = asyncio.run(run_scenario(SCENARIOS[name], args.seconds, args.seed,
                                           args.clients, args.keep, log=log))
        outcomes.append(outcome)
        log(f"{name}: {'ok' if outcome.ok else 'FAILED'}, {outcome.tx_per_s:.0f} tx/s, "
            f"seed {outcome.notes.get('seed')}, {json.dumps(outcome.notes, default=str)}")
        for check in outcome.checks:
            log(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail[:300]}")
    print(table(outcomes))
    print(f"\n{len(outcomes)} scenarios, {args.seconds:g} s of fault each, {args.clients} "
          f"clients, {time.monotonic() - started:.0f} s in all")
    for o in outcomes:
        for check in o.failed:
            print(f"\nFAILED {o.scenario} (seed {o.notes.get('seed')}, folder {o.folder}): "
                  f"{check.name}\n  {check.detail}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump([{"scenario": o.scenario, "seconds": o.seconds,
                        "committed": o.committed, "tx_per_s": o.tx_per_s,
                        "p50_ms": o.p50_ms, "p99_ms": o.p99_ms,
                        "view_changes": o.view_changes,
                        "heal_to_commit_s": o.heal_to_commit_s,
                        "peer_bytes_per_tx": o.peer_bytes_per_tx, "ok": o.ok,
                        "checks": [c.__dict__ for c in o.checks], "notes": o.notes,
                        "folder": o.folder} for o in outcomes], out, indent=2, default=str)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
