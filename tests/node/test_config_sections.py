"""node.toml, every section: an unknown or ill-typed setting anywhere, a validator
missing from [peers] (a name no set names yet is a partner about to join), a CORS origin
that is not one, and a `name` or `key_file` that the genesis contradicts all stop
`stadsmunt node run` with exit code 2 and a message naming the file and the setting.
The folders are made by `stadsmunt network init`, as an operator's are, and `node run`
runs as its own process. Also: the peer transport's log lines name validators, not
numbers."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from structlog.testing import capture_logs

from node import config as node_config
from node.transport import PeerInputError, Transport, TransportLimits
from ops.network import free_base_port

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sections") / "net"
    done = run_cli("network", "init", str(root), "--validators", "4",
                   "--base-port", str(free_base_port(8, preferred=None)))
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def cbs(net):
    """cbs's node.toml, to edit; put back as `network init` wrote it afterwards."""
    path = net / "cbs" / node_config.CONFIG_NAME
    original = path.read_text()
    yield path
    path.write_text(original)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert re.search(old, text, flags=re.M), old
    path.write_text(re.sub(old, new, text, count=1, flags=re.M))


def refused(path: Path, setting: str) -> str:
    """load() refuses the file, naming it and the setting; the message."""
    with pytest.raises(node_config.ConfigError) as error:
        node_config.load(path.parent)
    message = str(error.value)
    assert message.startswith(f"{path}: {setting}"), message
    return message


def node_run_refuses(path: Path, setting: str) -> str:
    done = run_cli("node", "run", str(path.parent))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stadsmunt: {path}: {setting}"), done.stderr
    return last


# ---- unknown and ill-typed settings, every section ----------------------------------------

@pytest.mark.parametrize("section, setting", [
    ("", "bogus"), ("[peer]", "bogus"), ("[gateway]", "bogus"), ("[limits]", "bogus"),
    ("[timing]", "bogus")])
def test_an_unknown_setting_in_any_section_is_refused_naming_it(cbs, section, setting):
    if section:
        edit(cbs, rf"^\{section[:-1]}\]$", f"{section}\nbogus = 1")
    else:
        edit(cbs, r"^name = ", "bogus = 1\nname = ")
    where = f"{section} {setting}" if section else setting
    assert refused(cbs, where).endswith(f"{where}: unknown setting")


@pytest.mark.parametrize("old, new, setting", [
    (r'^listen = "127', 'listen = 7 #', "[peer] listen"),
    (r"^workers = 1 ", "workers = true ", "[gateway] workers"),
    (r"^header_timeout_s = 10 ", 'header_timeout_s = "10" ', "[gateway] header_timeout_s"),
    (r"^cors_origins = \[\]", 'cors_origins = "https://a.example"', "[gateway] cors_origins"),
    (r"^pending_requests = \d+", "pending_requests = 1.5", "[limits] pending_requests"),
    (r"^tick_ms = \d+", "tick_ms = -1", "[timing] tick_ms"),
    (r'^"vng" = "127', '"vng" = "nowhere" #', "[peers] vng"),
    (r'^name = "cbs"', "name = 3", "name"),
])
def test_an_ill_typed_setting_is_refused_naming_it(cbs, old, new, setting):
    edit(cbs, old, new)
    refused(cbs, setting)


@pytest.mark.parametrize("origin", [
    "example.org", "https://example.org/", "https://example.org/app", "ftp://example.org",
    "https://", "https://example.org:99999", "https://user@example.org",
    "https://example.org?x=1", "//example.org"])
def test_a_cors_origin_must_be_a_scheme_and_a_host(cbs, origin):
    edit(cbs, r"^cors_origins = \[\]", f'cors_origins = ["{origin}"]')
    assert origin in refused(cbs, "[gateway] cors_origins")


def test_good_cors_origins_load(cbs):
    good = ["https://app.heerlen.example", "http://localhost:5173", "http://[::1]:8080", "*"]
    edit(cbs, r"^cors_origins = \[\]",
         "cors_origins = [" + ", ".join(f'"{o}"' for o in good) + "]")
    assert node_config.load(cbs.parent).cors_origins == tuple(good)


# ---- node run: every configuration error exits 2, with its path -----------------------------

def test_node_run_refuses_an_unknown_setting_in_peer_with_exit_2(cbs):
    edit(cbs, r"^\[peer\]$", "[peer]\nbogus = 1")
    assert node_run_refuses(cbs, "[peer] bogus").endswith("unknown setting")


def test_node_run_refuses_a_cors_origin_without_a_scheme_with_exit_2(cbs):
    edit(cbs, r"^cors_origins = \[\]", 'cors_origins = ["example.org"]')
    assert "example.org" in node_run_refuses(cbs, "[gateway] cors_origins")


def test_node_run_refuses_a_validator_missing_from_peers_with_exit_2(cbs):
    edit(cbs, r'^"vng" = .*$', "")
    assert "missing" in node_run_refuses(cbs, "[peers] vng")


def test_a_peer_no_validator_set_names_yet_is_taken_as_a_partner_about_to_join(cbs):
    """Its address is given before the set that adds it takes over
    (docs/operators.md, "A partner joins"); a missing address of a validator in force is
    still refused (test_node_run_refuses_a_validator_missing_from_peers_with_exit_2)."""
    edit(cbs, r'^\[peers\].*$', '[peers]\n"cotown" = "127.0.0.1:1"')
    settings = node_config.load(cbs.parent)
    node_config.check_roster(settings, ["municipality", "cbs", "brightlands", "vng"])
    assert settings.peers["cotown"] == ("127.0.0.1", 1)


def test_node_run_refuses_its_own_name_in_peers_with_exit_2(cbs):
    edit(cbs, r'^\[peers\].*$', '[peers]\n"cbs" = "127.0.0.1:1"')
    node_run_refuses(cbs, "[peers] cbs")


def test_node_run_refuses_a_name_that_is_not_a_validator_of_the_genesis_with_exit_2(cbs):
    edit(cbs, r'^name = "cbs"', 'name = "nobody"')
    assert "not a validator of the genesis" in node_run_refuses(cbs, "name")


def test_node_run_refuses_the_key_of_another_validator_with_exit_2(cbs):
    # a consistent file for vng, with cbs's key
    edit(cbs, r'^name = "cbs"', 'name = "vng"')
    edit(cbs, r'^"vng" = ', '"cbs" = ')
    assert "is the key of validator 'cbs', not of 'vng'" in node_run_refuses(cbs, "key_file")


def test_node_run_refuses_a_key_that_is_no_validators_with_exit_1_as_before(cbs, net):
    """The key file is wrong, not a setting: like a foreign data folder (exit 1)."""
    edit(cbs, r'^key_file = "validator.key"', f'key_file = "{net / "keys" / "admin.key"}"')
    done = run_cli("node", "run", str(cbs.parent))
    assert done.returncode == 1 and "not a validator of the genesis" in done.stderr


def test_check_roster_takes_the_settings_network_init_writes(net):
    names = ["municipality", "cbs", "brightlands", "vng"]
    for name in names:
        node_config.check_roster(node_config.load(net / name), names)


# ---- the transport's log lines name validators ---------------------------------------------

GENESIS = hashlib.sha256(b"genesis of the naming test").digest()
SEEDS = [hashlib.sha256(b"naming validator %d" % i).digest() for i in range(2)]
NAMES = ("municipality", "cbs")


async def test_transport_log_lines_name_validators_not_numbers():
    keys = [bytes(SigningKey(seed).verify_key) for seed in SEEDS]
    socks, validators = [], []
    loop = asyncio.get_running_loop()
    for key in keys:
        sock = socket.create_server(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
        validators.append((key, "127.0.0.1", sock.getsockname()[1]))
    got = loop.create_future()

    def on_message(peer, message):
        if not got.done():
            got.set_result(peer)
        raise PeerInputError("refused, for the sampled line")

    limits = TransportLimits(backoff_initial_s=0.02, backoff_max_s=0.2)
    with capture_logs() as logs:
        transports = [Transport(i, SEEDS[i], validators, GENESIS, on_message, limits,
                                names=NAMES) for i in range(2)]
        for transport, sock in zip(transports, socks):
            await transport.start(sock=sock)
        try:
            async with asyncio.timeout(10):
                while not all(t.connected() for t in transports):
                    await asyncio.sleep(0.01)
                transports[0].send(1, b"hello")
                assert await got == 0
        finally:
            for transport in transports:
                await transport.stop()
    lines = [e for e in logs if e["event"] in ("transport_started", "link_up", "link_down",
                                               "bad_peer_input", "transport_stopped")]
    assert {e["event"] for e in lines} >= {"transport_started", "link_up",
                                           "bad_peer_input", "transport_stopped"}
    for line in lines:
        assert line["me"] in NAMES, line
        if "peer" in line:
            assert line["peer"] in NAMES and line["peer"] != line["me"], line
    assert [e["peer"] for e in logs if e["event"] == "bad_peer_input"] == ["municipality"]


def test_node_run_names_itself_and_its_peers_in_the_transport_log_lines(net, tmp_path):
    """The validator with the lowest key alone: it dials the three others (the lower key
    of a pair dials), whose ports take connections and never answer; the transport's
    lines say who, by name."""
    validators = json.loads((net / "network.json").read_text())["validators"]
    runner = min(validators, key=lambda v: bytes.fromhex(v["key"]))
    peers = [v for v in validators if v is not runner]
    expected = {v["name"] for v in peers}
    mutes = [socket.create_server(("127.0.0.1", int(v["peer"].rpartition(":")[2])))
             for v in peers]
    log = tmp_path / "runner.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ops.cli", "node", "run",
                                    str(net / runner["name"])], cwd=REPO, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            lines = [json.loads(line) for line in log.read_text().splitlines()
                     if line.startswith("{")]
            failed = {e.get("peer") for e in lines if e["event"] == "handshake_failed"}
            if failed >= expected:
                break
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        for mute in mutes:
            mute.close()
    assert [e["me"] for e in lines if e["event"] == "transport_started"] == [runner["name"]]
    assert failed == expected
    assert all(e["me"] == runner["name"] for e in lines if e["event"] == "handshake_failed")
