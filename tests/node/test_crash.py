"""A validator killed with SIGKILL while it writes blocks leaves a store that opens and holds
whole blocks only: every block with its results, events, state and accumulator, or none
of it (one LMDB write transaction per block)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaincode.root import acc_of
from ledger_kit import keypair, make_genesis
from node.executor import open_ledger, replay
from node.store import Store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_and_kill(path: Path, after_height: int) -> int:
    """Start the writer, wait until it reports `after_height` committed, kill it with
    SIGKILL while it goes on writing; return the last height it reported."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    child = subprocess.Popen([sys.executable, str(HERE / "crash_child.py"), str(path)],
                             stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    last = 0
    try:
        for line in child.stdout:
            last = int(line)
            if last >= after_height:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return last


def check_whole_blocks(store: Store) -> int:
    height, head_hash = store.head()
    assert store.block(height + 1) is None
    positions, prev_hash = 0, None
    for h in range(1, height + 1):
        record = store.block(h)
        assert record is not None and record.check_hash()
        assert len(store.results(h)) == len(record.envelopes)
        assert record.first_position == positions + 1
        assert prev_hash is None or record.prev_hash == prev_hash
        positions += record.event_count
        prev_hash = record.hash
    assert height >= 1 and prev_hash == head_hash
    assert store.last_position() == positions
    assert store.events(positions, 10) == []          # no event beyond the last block
    assert len(store.events(0, 1000)) == min(positions, 1000)
    assert store.state_acc() == acc_of(store.scan(b""))
    return height


@pytest.mark.parametrize("kill_after", [2, 5])
def test_a_killed_writer_leaves_whole_blocks_only(tmp_path, kill_after):
    reported = run_and_kill(tmp_path / "a", kill_after)
    store = Store(tmp_path / "a")
    height = check_whole_blocks(store)
    assert height >= reported          # what was reported committed is on disk
    fresh = open_ledger(tmp_path / "b", make_genesis(keypair("admin")))
    assert replay(store, fresh) == store.head()[1]
    store.close()
    # and the killed store accepts more blocks where it stopped
    reported_again = run_and_kill(tmp_path / "a", height + 1)
    assert reported_again == height + 1
    store = Store(tmp_path / "a")
    assert check_whole_blocks(store) >= height + 1
