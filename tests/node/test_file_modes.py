"""Files that hold personal data or secrets are the owner's only, whatever the umask:
the store's folder 0700 and its LMDB files 0600; `node run` tightens a data folder made
before that rule and says so; key files from `keygen` and `network init` 0600."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from node.store import Store
from ops.network import free_base_port

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_cli(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.umask(umask))


def test_a_new_store_is_the_owners_only_even_with_umask_0(tmp_path):
    old = os.umask(0)
    try:
        store = Store(tmp_path / "data")
    finally:
        os.umask(old)
    store.env.close()
    assert mode(tmp_path / "data") == 0o700
    files = sorted((tmp_path / "data").iterdir())
    assert [f.name for f in files] == ["data.mdb", "lock.mdb"]
    assert all(mode(f) == 0o600 for f in files), {f.name: oct(mode(f)) for f in files}


def test_keygen_and_network_init_write_key_files_0600_even_with_umask_0(tmp_path):
    done = run_cli("keygen", "--out", str(tmp_path / "partner.key"), umask=0)
    assert done.returncode == 0, done.stderr
    done = run_cli("network", "init", str(tmp_path / "net"), "--validators", "4",
                   "--base-port", str(free_base_port(8, preferred=None)), umask=0)
    assert done.returncode == 0, done.stderr
    found = [tmp_path / "partner.key", *tmp_path.glob("net/*/*.key")]
    assert len(found) == 1 + 5 + 4
    assert all(mode(f) == 0o600 for f in found), {str(f): oct(mode(f)) for f in found}


def run_until_started(folder: Path, log: Path) -> list[dict]:
    """`node run folder` until its validator has started, then SIGTERM; its log lines."""
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ops.cli", "node", "run",
                                    str(folder)], cwd=REPO, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while '"validator_started"' not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()
    return [json.loads(line) for line in log.read_text().splitlines()
            if line.startswith("{")]


def test_node_run_makes_its_data_folder_the_owners_only_and_tightens_an_old_one(tmp_path):
    done = run_cli("network", "init", str(tmp_path / "net"), "--validators", "1",
                   "--base-port", str(free_base_port(2, preferred=None)))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "net" / "municipality"
    data = folder / "data"
    lines = run_until_started(folder, tmp_path / "first.log")
    assert mode(data) == 0o700
    assert mode(data / "data.mdb") == mode(data / "lock.mdb") == 0o600
    assert not [e for e in lines if e["event"] == "data_permissions_tightened"]
    # a folder as an earlier version left it: world-readable
    data.chmod(0o755)
    (data / "data.mdb").chmod(0o644)
    (data / "lock.mdb").chmod(0o664)
    lines = run_until_started(folder, tmp_path / "second.log")
    assert mode(data) == 0o700
    assert mode(data / "data.mdb") == mode(data / "lock.mdb") == 0o600
    [said] = [e for e in lines if e["event"] == "data_permissions_tightened"]
    assert said["modes"] == {str(data): "0755 -> 0700",
                             str(data / "data.mdb"): "0644 -> 0600",
                             str(data / "lock.mdb"): "0664 -> 0600"}
