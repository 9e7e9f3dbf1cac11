"""Each part bench (bench/: the executor, the chaincode, the audit's replay, one link, the research
export)
runs end to end on a tiny load and prints its figures, so a change elsewhere cannot leave
one broken until someone needs it. Timings are never asserted."""
from __future__ import annotations

import subprocess
import sys

import pytest

PARTS = {
    "executor_blocks": (["--txs", "400", "--batch", "200", "--rounds", "1"],
                        "coin.spend/s on one core"),
    "chaincode_blocks": (["--blocks", "2", "--block-size", "100", "--citizens", "20"],
                         "spends/s"),
    "audit_replay": (["--txs", "400", "--batch", "200"], "the audit runs at"),
    "transport_link": (["--seconds", "0.3", "--sizes", "100"], "100"),
    "research_export": (["--txs", "2000", "--months", "2", "--jobs", "1"],
                        "export_seconds"),
}


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_bench_runs_and_reports(part):
    args, expected = PARTS[part]
    done = subprocess.run([sys.executable, "-m", f"bench.{part}", *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout, done.stdout[-2000:]
