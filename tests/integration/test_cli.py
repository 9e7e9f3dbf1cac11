"""The operator's commands, run as child processes the way an operator runs them:
exit 0 on success, 1 when a check fails, 2 for bad usage."""
from __future__ import annotations

import json
import stat

from netharness import free_base_port, run_cli
from node import genesis as genesis_file, keys


def test_keygen_writes_the_seed_with_mode_0600_and_prints_the_public_key(tmp_path):
    out = tmp_path / "partner.key"
    done = run_cli("keygen", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert keys.read_key_file(out).public.hex() == done.stdout.strip()


def test_keygen_refuses_to_overwrite_an_existing_file(tmp_path):
    out = tmp_path / "partner.key"
    assert run_cli("keygen", "--out", str(out)).returncode == 0
    before = out.read_bytes()
    done = run_cli("keygen", "--out", str(out))
    assert done.returncode == 1
    assert "refusing to overwrite" in done.stderr
    assert out.read_bytes() == before


def _genesis_args(out, validator_keys, admin_key, stewards=None):
    """One organisation per validator, named as it, each with a steward."""
    stewards = stewards or [keys.Keypair.generate().public.hex() for _ in validator_keys]
    args = ["genesis", "--chain", "heerlen-test", "--city", "Heerlen",
            "--coin", "Heerlens Heitje", "--symbol", "HHT", "--admin", admin_key,
            "--out", str(out)]
    for i, (key, steward) in enumerate(zip(validator_keys, stewards)):
        args += ["--validator", f"partner-{i}={key}", "--organisation", f"partner-{i}={steward}"]
    return args


def test_genesis_from_public_keys_prints_the_hash_of_the_file_it_writes(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(5)]
    out = tmp_path / "genesis.json"
    done = run_cli(*_genesis_args(out, publics[:4], publics[4]))
    assert done.returncode == 0, done.stderr
    written = genesis_file.load(out)
    assert done.stdout.strip() == written.hash().hex()
    assert [v.key.hex() for v in written.validators] == publics[:4]
    assert [(o.id, len(o.stewards)) for o in written.organisations] == \
        [(f"partner-{i}", 1) for i in range(4)]
    assert written.constitution["thresholds"]["constitution.set"] == 4


def test_genesis_takes_several_stewards_a_shared_organisation_and_thresholds(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(8)]
    out = tmp_path / "genesis.json"
    args = ["genesis", "--chain", "heerlen-test", "--city", "Heerlen", "--coin", "Munt",
            "--symbol", "M", "--admin", publics[0], "--out", str(out),
            "--organisation", f"city={publics[1]},{publics[2]}",
            "--organisation", f"cbs={publics[3]}",
            "--threshold", "member.merchant=2", "--recovery-delay-hours", "24"]
    for i in range(4):
        args += ["--validator", f"v{i}={publics[4 + i]}@{'city' if i < 3 else 'cbs'}"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    written = genesis_file.load(out)
    assert [v.organisation for v in written.validators] == ["city", "city", "city", "cbs"]
    assert written.organisations[0].stewards == (bytes.fromhex(publics[1]),
                                                 bytes.fromhex(publics[2]))
    assert written.constitution["thresholds"]["member.merchant"] == 2
    assert written.constitution["recovery_delay_ms"] == 24 * 3_600_000


def test_genesis_refuses_a_threshold_above_the_organisations_with_exit_1(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(5)]
    out = tmp_path / "genesis.json"
    done = run_cli(*_genesis_args(out, publics[:4], publics[4]), "--threshold", "policy.set=5")
    assert done.returncode == 1
    assert "policy.set" in done.stderr and "genesis refused" in done.stderr
    assert not out.exists()


def test_genesis_without_organisations_is_bad_usage(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(5)]
    out = tmp_path / "genesis.json"
    args = [a for a in _genesis_args(out, publics[:4], publics[4])]
    while "--organisation" in args:
        i = args.index("--organisation")
        del args[i:i + 2]
    done = run_cli(*args)
    assert done.returncode == 2 and "--organisation" in done.stderr
    assert not out.exists()


def test_genesis_refuses_a_key_that_is_not_64_hex_characters_with_exit_2(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(4)]
    publics[2] = publics[2][:-2]
    out = tmp_path / "genesis.json"
    done = run_cli(*_genesis_args(out, publics, publics[0]))
    assert done.returncode == 2
    assert "partner-2" in done.stderr
    assert not out.exists()


def test_genesis_refuses_a_validator_set_of_two_with_exit_1(tmp_path):
    publics = [keys.Keypair.generate().public.hex() for _ in range(3)]
    out = tmp_path / "genesis.json"
    done = run_cli(*_genesis_args(out, publics[:2], publics[2]))
    assert done.returncode == 1
    assert "genesis refused" in done.stderr
    assert not out.exists()


def test_network_init_makes_the_folders_of_the_contract(tmp_path):
    base = free_base_port(8)
    done = run_cli("network", "init", str(tmp_path / "net"), "--base-port", str(base))
    assert done.returncode == 0, done.stderr
    network = json.loads((tmp_path / "net" / "network.json").read_text())
    assert [v["name"] for v in network["validators"]] == \
        ["municipality", "cbs", "brightlands", "vng"]
    assert [v["peer"] for v in network["validators"]] == \
        [f"127.0.0.1:{base + 2 * i}" for i in range(4)]
    assert [v["gateway"] for v in network["validators"]] == \
        [f"http://127.0.0.1:{base + 2 * i + 1}" for i in range(4)]
    assert network["genesis"] == genesis_file.load(tmp_path / "net" / "genesis.json").hash().hex()
    assert stat.S_IMODE((tmp_path / "net" / "keys" / "admin.key").stat().st_mode) == 0o600
    written = genesis_file.load(tmp_path / "net" / "genesis.json")
    for name, organisation in zip(["municipality", "cbs", "brightlands", "vng"],
                                  written.organisations):
        steward = tmp_path / "net" / "keys" / f"steward-{name}.key"
        assert stat.S_IMODE(steward.stat().st_mode) == 0o600
        assert organisation.id == name
        assert organisation.stewards == (keys.read_key_file(steward).public,)


def test_network_init_refuses_a_folder_that_is_not_empty(tmp_path):
    target = tmp_path / "net"
    target.mkdir()
    (target / "notes.txt").write_text("someone's work")
    done = run_cli("network", "init", str(target), "--base-port", str(free_base_port(8)))
    assert done.returncode == 2
    assert "not an empty folder" in done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_network_init_refuses_two_or_three_validators(tmp_path):
    for n in (2, 3):
        target = tmp_path / f"net{n}"
        done = run_cli("network", "init", str(target), "--validators", str(n))
        assert done.returncode == 2, (n, done.stderr)
        assert "--validators" in done.stderr
        assert not target.exists()


def test_node_run_on_a_folder_without_node_toml_exits_2_naming_the_file(tmp_path):
    done = run_cli("node", "run", str(tmp_path))
    assert done.returncode == 2
    assert "node.toml does not exist" in done.stderr
    assert "Traceback" not in done.stderr
