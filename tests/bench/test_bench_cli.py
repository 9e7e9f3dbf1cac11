"""`stadsmunt bench --json` with a tiny load: it runs a real network end to end and reports
every figure the contract names. Timings are never asserted (the machine is shared);
only that each figure is there, of the right kind, and consistent with the load sent."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

FIGURES = ("validators", "cores", "load_average", "committed_tps", "latency_p50_ms",
           "latency_p95_ms", "latency_p99_ms", "offered_tps", "cpu_ms_per_tx",
           "peak_memory_mb", "disk_bytes_per_tx", "verify_per_s", "bound_tps",
           "ratio_to_bound")


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", "bench", *args],
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def tiny_run() -> dict:
    done = _bench("--txs", "400", "--duration", "1", "--rate", "100", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints one JSON object and nothing else"
    return json.loads(lines[0])


def test_bench_json_reports_every_figure_as_a_number(tiny_run):
    for name in FIGURES:
        value = tiny_run[name]
        assert isinstance(value, (int, float)) and math.isfinite(value), name
        assert value >= 0, name


def test_bench_commits_all_of_a_counted_burst_and_sees_every_rated_transaction(tiny_run):
    assert tiny_run["validators"] == 4
    assert tiny_run["burst"]["txs"] == 400
    assert tiny_run["burst"]["committed"] == 400
    assert tiny_run["burst"]["rejected"] == 0
    assert tiny_run["rate"]["txs"] == 100
    assert tiny_run["rate"]["seen"] == 100


def test_bench_figures_are_consistent_with_each_other(tiny_run):
    r = tiny_run
    assert r["latency_p50_ms"] <= r["latency_p95_ms"] <= r["latency_p99_ms"]
    assert r["bound_tps"] == pytest.approx(r["cores"] * r["verify_per_s"] / 4, rel=0.01)
    low, high = r["verify_per_s_range"]
    assert low <= r["verify_per_s"] <= high
    assert r["view_at_end"] >= 0
    assert r["ratio_to_bound"] == pytest.approx(r["committed_tps"] / r["bound_tps"],
                                                rel=0.01, abs=0.002)
    per = r["per_validator"]
    assert len(per["peak_memory_mb"]) == len(per["disk_bytes_per_tx"]) == 4
    assert r["peak_memory_mb"] == max(per["peak_memory_mb"]) > 0
    assert r["disk_bytes_per_tx"] == max(per["disk_bytes_per_tx"]) > 0
    # the heap at the end of the burst is one of the samples, and part of the peak
    assert 1 <= len(r["heap_mb_by_tenth"]) <= 10
    assert r["heap_mb_by_tenth"][-1] == max(per["heap_mb_at_end"])
    assert 0 < max(per["heap_mb_at_end"]) <= max(per["rss_mb_at_end"]) <= r["peak_memory_mb"]


def test_bench_refuses_a_network_pbft_cannot_run_as_usage():
    done = _bench("--validators", "2", "--json")
    assert done.returncode == 2
    assert "--validators" in done.stderr
