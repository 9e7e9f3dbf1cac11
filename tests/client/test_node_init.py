"""`stadsmunt node init` (ops/node_init_cmd.py): one partner's validator folder, made
from its key, the agreed genesis and the peers' addresses, is the folder `network init`
makes for it, and `node run` runs it with the other three; every wrong input is refused
with exit code 2 before anything is written."""
from __future__ import annotations

import dataclasses
import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

from node import config as node_config, keys
from ops import cli, network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from netharness import Load, Network, run_cli  # noqa: E402


def _peers_of(root: Path, name: str) -> str:
    info = json.loads((root / "network.json").read_text())
    return ",".join(f"{v['name']}={v['peer']}" for v in info["validators"]
                    if v["name"] != name)


def _own(root: Path, name: str) -> tuple[str, str]:
    info = json.loads((root / "network.json").read_text())
    [v] = [v for v in info["validators"] if v["name"] == name]
    return v["peer"], v["gateway"].removeprefix("http://")


def _settings(config: node_config.NodeConfig) -> dict:
    found = dataclasses.asdict(config)
    for path in ("folder", "key_file", "genesis_file", "data_dir"):
        found[path] = Path(found[path]).relative_to(config.folder)
    return found


def _rebuild(root: Path, name: str, target: Path) -> list[str]:
    listen, gateway = _own(root, name)
    return ["node", "init", str(target), "--name", name, "--genesis",
            str(root / "genesis.json"), "--key", str(root / f"{name}.orig" / "validator.key"),
            "--peers", _peers_of(root, name), "--listen", listen, "--gateway", gateway]


async def test_a_folder_made_by_node_init_runs_with_the_network(tmp_path):
    net = Network(tmp_path / "net", 4)
    name = "brightlands"
    original = net.root / f"{name}.orig"
    (net.root / name).rename(original)
    done = run_cli(*_rebuild(net.root, name, net.root / name))
    assert done.returncode == 0, done.stderr
    assert net.genesis_hash in done.stdout
    made = net.root / name
    assert sorted(p.name for p in made.iterdir()) == ["genesis.json", "node.toml",
                                                      "validator.key"]
    # the very file network init wrote, comments included, and the same settings
    assert (made / "node.toml").read_text() == (original / "node.toml").read_text()
    assert _settings(node_config.load(made)) == _settings(node_config.load(original))
    assert (made / "genesis.json").read_bytes() == (net.root / "genesis.json").read_bytes()
    assert keys.read_key_file(made / "validator.key") == \
        keys.read_key_file(original / "validator.key")
    assert stat.S_IMODE((made / "validator.key").stat().st_mode) == 0o600
    try:
        net.start_all()
        await net.wait_ready(timeout_s=60)
        load = Load(net, clients=4)
        load.start()
        await load.wait_committed(10, timeout_s=60)
        await load.stop()
        top = await net.wait_caught_up(timeout_s=60)
        assert top > 0
        await net.assert_same_blocks(net.names, top)
        assert (made / "data" / "data.mdb").is_file()
    finally:
        await net.close()


@pytest.fixture
def made(tmp_path):
    """A network's files (nothing runs), with brightlands's folder moved aside."""
    root = tmp_path / "net"
    network.init(root, 4, base_port=7100)
    (root / "brightlands").rename(root / "brightlands.orig")
    return root


def _refused(capsys, argv: list[str], *words: str) -> str:
    target = Path(argv[2])
    before = sorted(p.name for p in target.parent.iterdir())
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    for word in words:
        assert word in err, err
    assert sorted(p.name for p in target.parent.iterdir()) == before   # nothing written
    return err


def _with(argv: list[str], option: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(option) + 1] = value
    return argv


def test_node_init_in_process_makes_the_same_folder(made, capsys):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (made / "brightlands" / "node.toml").read_text() == \
        (made / "brightlands.orig" / "node.toml").read_text()
    # an empty folder may be there already
    shutil.rmtree(made / "brightlands")
    (made / "brightlands").mkdir()
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (made / "brightlands" / "validator.key").is_file()


def test_node_init_refuses_a_name_that_is_no_validator(made, capsys):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    _refused(capsys, _with(argv, "--name", "cotown"), "--name", "'cotown' is not a validator")


def test_node_init_refuses_another_validators_key(made, capsys):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    _refused(capsys, _with(argv, "--key", str(made / "cbs" / "validator.key")),
             "not the key of validator 'brightlands'", "key of validator 'cbs'")
    _refused(capsys, _with(argv, "--key", str(made / "keys" / "admin.key")),
             "key of no validator")


def test_node_init_refuses_a_key_file_that_is_not_one_or_too_open(made, capsys, tmp_path):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    _refused(capsys, _with(argv, "--key", str(tmp_path / "missing.key")), "--key",
             "no such key file")
    loose = tmp_path / "loose.key"
    shutil.copyfile(made / "brightlands.orig" / "validator.key", loose)
    loose.chmod(0o644)
    _refused(capsys, _with(argv, "--key", str(loose)), "readable by others")


def test_node_init_refuses_a_genesis_that_is_not_one(made, capsys, tmp_path):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    bad = tmp_path / "genesis.json"
    bad.write_text("{}")
    _refused(capsys, _with(argv, "--genesis", str(bad)), "--genesis")
    _refused(capsys, _with(argv, "--genesis", str(tmp_path / "none.json")), "--genesis")


def test_node_init_refuses_peers_that_are_not_exactly_the_others(made, capsys):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    peers = argv[argv.index("--peers") + 1].split(",")
    _refused(capsys, _with(argv, "--peers", ",".join(peers[:-1])), "vng", "missing")
    _refused(capsys, _with(argv, "--peers", ",".join(peers + ["cotown=10.0.0.9:7100"])),
             "cotown is not a validator")
    _refused(capsys, _with(argv, "--peers", ",".join(peers + ["brightlands=10.0.0.9:7100"])),
             "brightlands is this validator itself")
    _refused(capsys, _with(argv, "--peers", ",".join(peers + [peers[0]])), "given twice")
    _refused(capsys, _with(argv, "--peers", ",".join(peers[:-1] + ["vng=nowhere"])),
             "--peers vng", "host:port")
    _refused(capsys, _with(argv, "--peers", ",".join(peers[:-1] + ["vng"])),
             "NAME=HOST:PORT")


def test_node_init_refuses_bad_listen_addresses(made, capsys):
    argv = _rebuild(made, "brightlands", made / "brightlands")
    _refused(capsys, _with(argv, "--listen", "7100"), "--listen")
    _refused(capsys, _with(argv, "--gateway", "host:99999"), "--gateway")


def test_node_init_refuses_an_existing_folder_that_is_not_empty(made, capsys):
    argv = _rebuild(made, "brightlands", made / "cbs")
    _refused(capsys, _with(argv, "--name", "brightlands"), "is not an empty folder")
    assert sorted(p.name for p in (made / "cbs").iterdir()) == ["genesis.json", "node.toml",
                                                                "validator.key"]
    (made / "file").write_text("x")
    _refused(capsys, _rebuild(made, "brightlands", made / "file"), "is not an empty folder")
