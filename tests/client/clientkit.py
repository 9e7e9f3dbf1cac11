"""Helpers of the client tests: free ports, `stadsmunt` in a child process, and a real
validator's folder and gateway."""
from __future__ import annotations

import json
import http.client
import os
import random
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from node.keys import Keypair, read_key_file

REPO = Path(__file__).resolve().parents[2]
READY_S = 30.0


def free_port_pair() -> int:
    """A port P with P + 1 free too (peer and gateway of one validator), below Linux's
    ephemeral range: a client polling a port in that range before the node listens can
    be handed the same port as its own source and connect to itself."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, 32_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise RuntimeError("no two free ports in a row")


def run_cli(*args: str, timeout_s: float = 60.0, env: dict | None = None):
    """One `stadsmunt` command in a child process, as staff would run it."""
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **(env or {})})


@dataclass
class Net:
    folder: Path
    url: str
    chain: str
    admin_file: Path
    admin: Keypair

    @property
    def steward_file(self) -> Path:
        """The steward of the one organisation, `municipality` (thresholds 1: its
        proposals are enacted at once)."""
        return self.folder / "keys" / "steward-municipality.key"

    @property
    def steward(self) -> Keypair:
        return read_key_file(self.steward_file)


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def in_process(capsys, *argv: str) -> Done:
    """`stadsmunt *argv` through ops.cli.main in this process. An exception escaping
    main() fails the test: that would be a traceback for staff."""
    from ops.cli import main
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exit_:      # argparse's own usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return Done(code, out, err)


def _status(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=2) as answer:
            return json.loads(answer.read())
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None
