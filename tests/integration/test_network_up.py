"""`stadsmunt up DIR` runs a local network in one terminal: it says "started" only once
every validator answers and sees the others, every log line names its validator, and a
second `up` of the same folder (its ports taken) says which validator could not start
and stops the rest, instead of "started 4 validators" followed by four tracebacks."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from netharness import REPO, free_base_port, run_cli

START_S = 60.0


def _up(folder, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ops.cli", "up", str(folder)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)


def test_up_says_started_once_ready_names_its_validators_and_refuses_a_second_up(tmp_path):
    folder = tmp_path / "net"
    done = run_cli("network", "init", str(folder), "--base-port", str(free_base_port(8)))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "first.log", "a") as log:      # appended to by every process
        first = _up(folder, log)
    try:
        line = first.stdout.readline()          # blocks until `up` prints its first line
        assert line.startswith("started 4 validators"), line
        # ready means answering: every validator's gateway answers its status now
        names = [v["name"] for v in json.loads((folder / "network.json").read_text())
                 ["validators"]]
        status = run_cli("client", "--gateway", json.loads(
            (folder / "network.json").read_text())["validators"][0]["gateway"], "status")
        assert status.returncode == 0, status.stderr
        second = subprocess.run([sys.executable, "-m", "ops.cli", "up", str(folder)],
                                cwd=REPO, capture_output=True, text=True, timeout=START_S)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "started" not in second.stdout
        assert "is in use" in second.stderr and "Nothing was started" in second.stderr, \
            second.stderr[-2000:]
        # the first network is untouched by the second's attempt
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    lines = [json.loads(x) for x in (tmp_path / "first.log").read_text().splitlines()
             if x.startswith("{")]
    named = {x.get("node") for x in lines}
    assert set(names) <= named and None not in named, named
    assert {x["node"] for x in lines if x["event"] == "gateway_listening"} == set(names)
