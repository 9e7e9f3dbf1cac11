"""`stadsmunt backup` and `stadsmunt restore` (ops/backup_cmd.py): a hot copy of a ledger
that is being written holds the ledger as one commit left it; restore refuses what it
must; and, with real processes, a validator restored from a running partner's backup
catches up and agrees block for block."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from pathlib import Path

from consensus import durable
from ledger_kit import T0, certified, keypair, make_genesis, story
from node import config as node_config, keys
from node.envelope import sign_tx
from node.executor import open_ledger
from node.store import ConsensusStorage, Store
from ops import backup_cmd, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from netharness import Load, Network, run_cli  # noqa: E402


def _folder(root: Path, name: str = "municipality", genesis=None) -> Path:
    """A validator folder of ledger_kit's genesis (data/ not made yet)."""
    genesis = genesis or make_genesis(keypair("admin"))
    folder = root / name
    folder.mkdir(parents=True)
    keys.write_key_file(folder / "validator.key", keypair(name))
    genesis.save(folder / "genesis.json")
    others = {v.name: f"127.0.0.1:{7200 + i}" for i, v in enumerate(genesis.validators)
              if v.name != name}
    (folder / "node.toml").write_text(node_config.render(name, "127.0.0.1:1", "127.0.0.1:2",
                                                         others))
    return folder


def _ledger_with_story(folder: Path):
    ledger = open_ledger(folder / "data", make_genesis(keypair("admin")))
    for height, (time_ms, envelopes) in enumerate(story(keypair("admin")), start=1):
        ledger.execute(certified(ledger, height, time_ms, envelopes))
    return ledger


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_backup_taken_while_blocks_are_written_is_one_commit_of_the_ledger(tmp_path):
    folder = _folder(tmp_path)
    ledger = _ledger_with_story(folder)
    admin = keypair("admin")
    written: dict[int, bytes] = {}
    stop = threading.Event()

    def writer():       # blocks of 50 registrations each, until the backups are done
        height, nonce = ledger.store.head()[0], 0
        while not stop.is_set():
            envelopes = []
            for _ in range(50):
                nonce += 1
                envelopes.append(sign_tx(admin, ledger.genesis.chain, "member.register",
                                         {"key": keys.Keypair.generate().public,
                                          "role": "citizen", "age_band": "21plus",
                                          "area": "GMS"}, nonce=10_000 + nonce))
            height += 1
            written[height] = ledger.execute(certified(ledger, height, T0 + 10 * 3_600_000
                                                       + height, envelopes))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        made = []
        for i in range(3):      # each in its own process, as an operator runs it
            done = run_cli("backup", str(folder), str(tmp_path / f"backup-{i}"))
            assert done.returncode == 0, done.stderr
            made.append(tmp_path / f"backup-{i}")
    finally:
        stop.set()
        thread.join()
    heights = []
    for out in made:
        manifest, snapshot = backup_cmd.read_backup(out)
        assert _mode(out) == 0o700
        assert sorted(p.name for p in out.iterdir()) == ["backup.json", "data.mdb"]
        assert all(_mode(p) == 0o600 for p in out.iterdir())
        assert manifest["genesis"] == ledger.genesis.hash().hex()
        assert manifest["validator"] == "municipality"
        assert manifest["tool"].startswith("stadsmunt ") and manifest["time"]
        height = manifest["height"]
        heights.append(height)
        assert height >= len(story(admin))
        # the copy's head is a block the writer committed, and every block up to it is
        # the source's, byte for byte; nothing after it is in the copy
        assert height <= len(story(admin)) or written[height].hex() == manifest["head"]
        copy = Store(out)
        try:
            assert copy.head() == (height, bytes.fromhex(manifest["head"]))
            assert copy.block(height + 1) is None
            for record in copy.blocks(1, height):
                assert record.encode() == ledger.store.block(record.height).encode()
            assert copy.last_position() == copy.block(height).first_position - 1 \
                + copy.block(height).event_count
        finally:
            copy.close()
    assert heights == sorted(heights) and heights[-1] > len(story(admin))
    ledger.store.close()


def test_backup_refuses_an_existing_out_and_a_folder_without_a_ledger(tmp_path, capsys):
    folder = _folder(tmp_path)
    code, _, err = _cli(capsys, "backup", str(folder), str(tmp_path / "out"))
    assert code == 2 and "holds no ledger" in err
    assert not (tmp_path / "out").exists()
    _ledger_with_story(folder).store.close()
    (tmp_path / "out").mkdir()
    code, _, err = _cli(capsys, "backup", str(folder), str(tmp_path / "out"))
    assert code == 2 and "exists" in err
    code, _, err = _cli(capsys, "backup", str(tmp_path / "nothing"), str(tmp_path / "o2"))
    assert code == 2 and "node.toml" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["municipality", "out"]


def test_restore_puts_the_backup_in_data_and_refuses_what_it_must(tmp_path, capsys):
    source = _folder(tmp_path / "a")
    ledger = _ledger_with_story(source)
    head, acc = ledger.store.head(), ledger.store.state_acc()
    # the source's own consensus state: its view, as the replica keeps it
    ConsensusStorage(ledger.store).write([(durable.VIEW_KEY, durable.view_value(3, True))])
    ledger.store.close()
    code, _, err = _cli(capsys, "backup", str(source), str(tmp_path / "backup"))
    assert code == 0, err
    target = _folder(tmp_path / "b", name="cbs")

    # a backup of another chain (another genesis) is refused
    other_genesis = make_genesis(keypair("another admin"))
    other = _folder(tmp_path / "c", genesis=other_genesis)
    code, _, err = _cli(capsys, "restore", str(tmp_path / "backup"), str(other))
    assert code == 2 and "another chain" in err and not (other / "data").exists()

    # a damaged backup is refused
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "backup.json").write_text((tmp_path / "backup" / "backup.json").read_text())
    (damaged / "data.mdb").write_bytes((tmp_path / "backup" / "data.mdb").read_bytes()[:-1]
                                       + b"x")
    code, _, err = _cli(capsys, "restore", str(damaged), str(target))
    assert code == 1 and "damaged" in err and not (target / "data").exists()
    code, _, err = _cli(capsys, "restore", str(tmp_path / "a"), str(target))
    assert code == 2 and "not a backup" in err

    # into another validator's empty folder: its consensus table is left out
    (target / "data").mkdir(mode=0o700)
    code, out, err = _cli(capsys, "restore", str(tmp_path / "backup"), str(target))
    assert code == 0, err
    assert "fetches the blocks after it from its peers" in out
    assert _mode(target / "data") == 0o700
    assert all(_mode(p) == 0o600 for p in (target / "data").iterdir())
    restored = open_ledger(target / "data", make_genesis(keypair("admin")))
    assert restored.store.head() == head
    assert restored.store.state_acc() == acc
    assert ConsensusStorage(restored.store).items() == []
    restored.store.close()
    leftovers = [p.name for p in target.iterdir() if p.name.startswith(".")]
    assert leftovers == []

    # a data/ that is not empty: only with --force, which moves it aside
    code, _, err = _cli(capsys, "restore", str(tmp_path / "backup"), str(target))
    assert code == 2 and "--force" in err
    code, out, err = _cli(capsys, "restore", "--force", str(tmp_path / "backup"),
                          str(target))
    assert code == 0, err
    aside = [p for p in target.iterdir() if p.name.startswith("data.before-restore-")]
    assert len(aside) == 1 and (aside[0] / "data.mdb").is_file()

    # into the backed-up validator's own folder: its consensus table is kept
    code, out, err = _cli(capsys, "restore", "--force", str(tmp_path / "backup"),
                          str(source))
    assert code == 0, err
    mine = Store(source / "data")
    try:
        assert ConsensusStorage(mine).items() == [(durable.VIEW_KEY,
                                                   durable.view_value(3, True))]
        assert mine.head() == head
    finally:
        mine.close()


async def test_a_validator_restored_from_a_hot_backup_catches_up_and_agrees(tmp_path):
    net = Network(tmp_path / "net", 4)
    try:
        net.start_all()
        await net.wait_ready()
        load = Load(net, clients=8)
        load.start()
        await load.wait_committed(40, timeout_s=60)
        down = "vng"
        # taken while vng runs and the others commit
        done = run_cli("backup", str(net.root / down), str(tmp_path / "backup"))
        assert done.returncode == 0, done.stderr
        manifest = json.loads((tmp_path / "backup" / "backup.json").read_text())
        assert manifest["height"] > 0 and manifest["genesis"] == net.genesis_hash
        refused = run_cli("restore", str(tmp_path / "backup"), str(net.root / down),
                          "--force")
        assert refused.returncode == 2 and "stop the validator" in refused.stderr

        net.kill(down)
        await load.wait_committed(len(load.committed) + 60, timeout_s=60)
        await load.stop()
        top = await net.wait_caught_up(net.running(), timeout_s=60)
        assert top > manifest["height"]
        subprocess.run(["rm", "-rf", str(net.root / down / "data")], check=True)
        done = run_cli("restore", str(tmp_path / "backup"), str(net.root / down))
        assert done.returncode == 0, done.stderr

        net.start(down)
        await net.wait_height(top, [down], timeout_s=60)
        assert await net.wait_caught_up(net.names, timeout_s=60) >= top
        await net.assert_same_blocks(net.names, top)
        started = net.log_events(down, "validator_started")
        assert started[-1]["height"] == manifest["height"]     # resumed from the backup
    finally:
        await net.close()
