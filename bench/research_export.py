"""How long `stadsmunt research export` and `research report` take on a long log, and
how large the dataset is (docs/research.md, "Performance").

The log is bench/audit_replay.py's (200 citizens earn through a task, then spend in
blocks of 1,000 one-cent spends, every block certified), its blocks spread evenly over
`--months` months so that all but the last are closed. Export and report run as the
command line runs them, in processes of their own, timed from start to exit.

    python -m bench.research_export [--txs 1000000] [--months 6] [--log DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.audit_replay import CITIZENS, REWARD, build
from node.audit.verify import default_jobs

DAY_MS = 86_400_000


def _timed(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ops.cli", *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run(txs: int, months: int, jobs: int, log: str | None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(log or Path(scratch) / "log")
        blocks = txs // 1_000 + 4
        block_ms = max(1_000, months * 30 * DAY_MS // blocks)
        started = time.perf_counter()
        if not (path / "data.mdb").is_file():
            path.mkdir(parents=True, exist_ok=True)
            build(str(path), txs, 1_000, jobs, block_ms)
        built = time.perf_counter() - started
        key = Path(scratch) / "pseudonym.key"
        key.write_text(os.urandom(32).hex())
        out = Path(scratch) / "dataset"
        exported = _timed("research", "export", str(path), "--out", str(out),
                          "--pseudonym-key", str(key), "--jobs", str(jobs))
        manifest = json.loads((out / "dataset.json").read_text())
        reported = _timed("research", "report", str(out), "--out", str(Path(scratch) /
                                                                        "report.html"))
        size = _bytes(out)
        parts = sorted((out / "events").rglob("*.parquet"))
        events = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    return {"transactions": txs, "months_written": len(manifest["months"]),
            "through_height": manifest["through_height"], "build_seconds": round(built, 1),
            "export_seconds": round(exported, 1),
            "export_tx_per_s": round(txs / exported),
            "report_seconds": round(reported, 1), "dataset_bytes": size,
            "event_rows": events, "dataset_bytes_per_event": round(size / max(events, 1), 1),
            "event_part_files": len(parts), "jobs": jobs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="processes checking signatures (default: every core)")
    parser.add_argument("--log", help="a folder to build the log in once and reuse")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1_000 <= args.txs <= CITIZENS * REWARD or args.months < 2:
        parser.error(f"--txs is 1,000 to {CITIZENS * REWARD:,}, --months 2 or more")
    figures = run(args.txs, args.months, max(1, args.jobs), args.log)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}"
                                                          for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
