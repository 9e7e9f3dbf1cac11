"""`python -m bench.state_join --json` on a tiny chain (one checkpoint interval of blocks
of 10 spends): every part runs in its own process and reports its figures, and the
synced store ends at the source's head. Timings are never asserted."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.state_join import SETUP_BLOCKS, spend_blocks


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    log = tmp_path_factory.mktemp("chain")
    args = [sys.executable, "-m", "bench.state_join", "--txs", "600", "--batch", "10",
            "--jobs", "1", "--log", str(log), "--json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints one JSON object and nothing else"
    first = json.loads(lines[0])
    again = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    return {"first": first, "again": json.loads(again.stdout)}


def test_the_head_is_a_checkpoint_height_and_the_count_is_said():
    for txs, batch in ((1_000_000, 1_000), (20_000, 300), (600, 10), (1, 1_000)):
        blocks = spend_blocks(txs, batch)
        assert (SETUP_BLOCKS + blocks) % 64 == 0 and blocks * batch <= 1_000_000
    assert spend_blocks(1_000_000, 1_000) == 956      # 1,020 would need 1,020,000 coins


def test_every_part_reports_its_figures(tiny_run):
    r = tiny_run["first"]
    assert r["blocks"] == 64 and r["spend_blocks"] == 60
    assert r["spend_transactions"] == 600 and not r["reused_log"]
    assert r["network_transfer_included"] is False
    assert r["ed25519_verify_per_s_one_core"] > 0
    for part in ("sync", "history", "replay"):
        f = r[part]
        for name in ("seconds", "cpu_seconds", "peak_rss_mb", "anon_peak_mb", "ru_maxrss_mb", "rss_start_mb",
                     "heap_end_mb", "disk_mb"):
            assert isinstance(f[name], (int, float)) and f[name] >= 0, (part, name)
        assert f["peak_rss_mb"] >= f["rss_start_mb"] > 0
    sync = r["sync"]
    assert sync["entries"] > 600 and sync["chunks"] >= 1 and sync["chunk_bytes"] > 0
    # every height, the head's too: the sync brings its record but not its results
    assert r["history"]["blocks"] == 64 and r["history"]["complete"]
    for ratio in ("sync_over_replay", "sync_cpu_over_replay_cpu",
                  "sync_and_history_over_replay"):
        assert r[ratio] > 0


def test_the_synced_store_ends_at_the_source_head(tiny_run):
    r = tiny_run["first"]
    assert r["sync"]["synced_head"] == r["sync"]["source_head"]
    assert r["sync"]["source_head"][0] == 64
    assert r["synced_head_equals_source"] and r["sync"]["state_acc_equal"]
    assert r["history"]["synced_head"] == r["sync"]["source_head"]
    assert r["replay"]["replayed_head"] == r["sync"]["source_head"]


def test_a_kept_log_is_reused(tiny_run):
    again = tiny_run["again"]
    assert again["reused_log"] and again["blocks"] == 64
    assert again["sync"]["source_head"] == tiny_run["first"]["sync"]["source_head"]
