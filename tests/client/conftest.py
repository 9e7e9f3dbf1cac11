"""One real validator (n = 1, development mode) for the client and CLI tests of a module,
made by `network init` and run as its own process by `node run`, as an operator would;
killed at the end of the module. Tests make their own names (keys and task ids are
random), so they share it without seeing each other."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from clientkit import READY_S, REPO, Net, _status, free_port_pair, run_cli
from node.keys import read_key_file


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("client") / "net"
    done = run_cli("network", "init", str(folder), "--validators", "1", "--chain",
                   "heerlen-test", "--base-port", str(free_port_pair()))
    assert done.returncode == 0, done.stderr
    info = json.loads((folder / "network.json").read_text())
    url = info["validators"][0]["gateway"]
    log = open(folder / "node.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "node", "run",
                                str(folder / "municipality")], cwd=REPO, stdout=log,
                               stderr=log, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + READY_S
        while _status(url) is None:        # polls a condition until a deadline
            assert process.poll() is None, (folder / "node.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the validator did not start"
            time.sleep(0.05)
        admin_file = folder / "keys" / "admin.key"
        yield Net(folder, url, info["chain"], admin_file, read_key_file(admin_file))
    finally:
        process.kill()
        process.wait(10)
