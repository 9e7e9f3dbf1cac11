"""The connection limits in `[gateway]` of node.toml: written by `network init` with their
defaults, read, refused by name when wrong, and applied by the gateway served in the
validator's process (`workers = 0`)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_kit import free_port
from node import config as node_config
from node.config import GatewayLimits
from node.runtime import Validator
from ops import network, node_cmd
from test_connections import closed_by_server, connect, refused


@pytest.fixture
def folder(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=free_port())
    return tmp_path / "net" / "municipality"


def edit(folder, old: str, new: str) -> None:
    path = folder / node_config.CONFIG_NAME
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_network_init_writes_the_defaults(folder):
    text = (folder / node_config.CONFIG_NAME).read_text()
    for name in node_config.GATEWAY_LIMITS:
        assert f"\n{name} = " in text
    assert node_config.load(folder).gateway_limits == GatewayLimits()


def test_without_the_settings_the_defaults_apply(folder):
    for name in node_config.GATEWAY_LIMITS:
        text = (folder / node_config.CONFIG_NAME).read_text()
        line = next(line for line in text.splitlines() if line.startswith(f"{name} ="))
        edit(folder, line, "")
    assert node_config.load(folder).gateway_limits == GatewayLimits()


def test_values_are_taken(folder):
    edit(folder, "header_timeout_s = 10 ", "header_timeout_s = 2.5 ")
    edit(folder, "body_timeout_s = 30 ", "body_timeout_s = 5 ")
    edit(folder, "max_connections_per_address = 64", "max_connections_per_address = 8")
    edit(folder, "max_connections = 0 ", "max_connections = 500 ")
    assert node_config.load(folder).gateway_limits == GatewayLimits(
        header_timeout_s=2.5, body_timeout_s=5.0, max_connections_per_address=8,
        max_connections=500)


@pytest.mark.parametrize("setting, value", [
    ("header_timeout_s = 10 ", "0"), ("header_timeout_s = 10 ", "-1"),
    ("body_timeout_s = 30 ", '"30"'), ("keepalive_timeout_s = 15 ", "3601"),
    ("keepalive_timeout_s = 15 ", "true"),
    ("max_connections_per_address = 64", "0"),
    ("max_connections_per_address = 64", "1.5"), ("max_connections = 0 ", "-1"),
    ("max_connections = 0 ", "1_000_001")])
def test_a_wrong_value_is_refused_by_name(folder, setting, value):
    name = setting.split()[0]
    edit(folder, setting, f"{name} = {value} ")
    with pytest.raises(node_config.ConfigError, match=rf"\[gateway\] {name} must be"):
        node_config.load(folder)


def test_node_run_with_a_wrong_value_exits_2_naming_it(folder):
    edit(folder, "max_connections_per_address = 64", "max_connections_per_address = 0")
    done = subprocess.run([sys.executable, "-m", "ops.cli", "node", "run", str(folder)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "[gateway] max_connections_per_address" in done.stderr
    assert "Traceback" not in done.stderr


async def test_the_gateway_in_the_validators_process_applies_them(folder):
    # the header timeout leaves ample time to see the cap before the held ones go
    limits = GatewayLimits(header_timeout_s=2.0, max_connections_per_address=2)
    settings = dataclasses.replace(node_config.load(folder), gateway_limits=limits,
                                   gateway_listen=("127.0.0.1", free_port()))
    validator = Validator(settings)
    await validator.start()
    try:
        runner = await node_cmd._in_process(validator, settings)
        try:
            port = settings.gateway_listen[1]
            held = [await connect(port) for _ in range(2)]
            assert await refused(port)                       # over the cap
            for reader, _ in held:                           # and late headers
                assert await closed_by_server(reader) == b""
            reader, writer = await connect(port)
            writer.write(b"GET /v1/status HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
            writer.close()
        finally:
            await runner.cleanup()
    finally:
        await validator.stop()
