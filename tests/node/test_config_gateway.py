"""`[gateway] workers` in node.toml: written by `network init`, 1 when absent, refused with
a message that names it when it is not a whole number from 0 to 64."""
from __future__ import annotations

import pytest

from node import config as node_config
from ops import network
from test_runtime_restart import _free_port


@pytest.fixture
def folder(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    return tmp_path / "net" / "municipality"


def edit(folder, old: str, new: str) -> None:
    path = folder / node_config.CONFIG_NAME
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_network_init_writes_one_worker(folder):
    assert node_config.load(folder).gateway_workers == 1


def test_without_the_setting_there_is_one(folder):
    edit(folder, "workers = 1", "")
    assert node_config.load(folder).gateway_workers == 1


@pytest.mark.parametrize("value", ["0", "4", "64"])
def test_a_number_of_workers_is_taken(folder, value):
    edit(folder, "workers = 1", f"workers = {value}")
    assert node_config.load(folder).gateway_workers == int(value)


@pytest.mark.parametrize("value", ["-1", "65", "1.5", '"2"', "true"])
def test_a_wrong_number_of_workers_is_refused_by_name(folder, value):
    edit(folder, "workers = 1", f"workers = {value}")
    with pytest.raises(node_config.ConfigError, match=r"\[gateway\] workers"):
        node_config.load(folder)


def test_an_unknown_gateway_setting_is_refused_by_name(folder):
    edit(folder, "workers = 1", "worker = 1")
    with pytest.raises(node_config.ConfigError, match="worker"):
        node_config.load(folder)
