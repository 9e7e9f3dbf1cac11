"""Fixtures of the browser tests: Chromium (installed from Debian's packages on first
use, tests/web/browserkit.py), a Playwright browser per test, and a network of four real
validators per module whose gateways let each other's dashboards read them."""
from __future__ import annotations

import json

import pytest

from browserkit import ARGS, ARTEFACTS, TAKEN, NoBrowser, ensure_chromium
from playwright.async_api import expect
from ops import network as ops_network
from tests.integration.netharness import Network, free_base_port, run_cli

# what a page shows live (a block, an event on the stream, a validator that stopped)
# arrives within seconds; on a busy machine a few more than Playwright's default 5 s
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium():
    try:
        return ensure_chromium()
    except NoBrowser as error:
        pytest.fail(f"no browser for tests/web: {error}", pytrace=False)


@pytest.fixture
async def browser(chromium):
    from playwright.async_api import async_playwright
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium),
                                                    headless=True, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def _module_network(tmp_path_factory):
    root = tmp_path_factory.mktemp("net")
    done = run_cli("network", "init", str(root), "--validators", "4", "--base-port",
                   str(free_base_port(8)))
    assert done.returncode == 0, done.stderr
    ops_network.allow_each_other(root, json.loads((root / "network.json").read_text()))
    net = Network(root, 4, made=True)
    net.start_all()
    try:
        yield net
    finally:
        net.kill_all()


@pytest.fixture
async def network(_module_network):
    """The module's four validators, linked again before each test; a test may kill
    some, so the module's tests run in file order, killing last."""
    net = _module_network
    try:
        await net.wait_ready(net.running())
        yield net
    finally:
        await net.close_session()


def pytest_terminal_summary(terminalreporter):
    if TAKEN:
        terminalreporter.write_line(f"browser screenshots ({len(TAKEN)}): {ARTEFACTS}")
