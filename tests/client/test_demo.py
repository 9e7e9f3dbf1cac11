"""`stadsmunt demo --exit` on four real validators: it plays the whole story, governance
included (next year's cap policy and a reviewer approved by three organisations, a lost
phone recovered at once by two, an admin's recovery frozen and cancelled by a steward),
its summary says the supply and cap invariants hold and counts the governance events,
and an independent replay of the validators' folders by `stadsmunt audit` agrees with
it; afterwards nothing is left serving. Without `--exit` it serves, says where, prints
hints that work from a fresh clone, and stops its validators on Ctrl-C. A temporary
folder, with everyone's keys, is removed when it stops, unless `--keep`; `--dir` is
kept."""
from __future__ import annotations

import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from clientkit import REPO, run_cli
from ops.demo_story import REJECTED, TASKS, TOTAL, WORK

# the story's refusals: the admin registering a reviewer alone, a task above the hourly
# rate, the under-21 claim, the monthly cap, a citizen paying a citizen, the frozen key's
# spend, the admin re-opening a recovery a steward cancelled
REFUSALS = 7


def nothing_listens(url: str) -> bool:
    host, _, port = url.removeprefix("http://").rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) != 0


def read_until(process, text: str, timeout_s: float) -> str:
    """The demo's output until `text`; raw reads after select: a buffered readline would
    hide lines select cannot see."""
    out, deadline = "", time.monotonic() + timeout_s
    while text not in out:
        assert time.monotonic() < deadline, out[-3000:]
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, "the demo ended early:\n" + out[-3000:]
            out += chunk.decode()
    return out


def test_the_demo_plays_the_story_and_its_summary_shows_supply_and_caps_holding(tmp_path):
    folder = tmp_path / "demo"
    done = run_cli("demo", "--dir", str(folder), "--exit", timeout_s=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    out = done.stdout
    for number in range(1, TOTAL + 1):
        assert f"[{number}/{TOTAL}] " in out
    # the sentence the citizen's app shows for the capped claim
    assert "This would take you over the monthly limit for " in out
    assert "people under 21" in out
    # governance, step by step: three organisations for the policy, two for a recovery
    assert "the partners govern the cap policy for " in out
    assert "CBS approves: 2 of 3\n" in out
    assert "VNG approves: 3 of 3 -> enacted: it takes effect at height " in out
    assert "Brightlands approves: 3 of 3 -> enacted" in out
    assert "Brightlands approves: 2 of 2 -> enacted" in out
    assert "refused: frozen. The app shows:\n    \"This key is frozen" in out
    assert "CBS's steward cancels the recovery" in out

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["governance"] == {
        "gov.proposed": 3, "gov.approved": 5, "gov.enacted": 3, "gov.failed": 0,
        "member.recovery_opened": 1, "member.recovery_cancelled": 1,
        "member.recovered": 1}
    assert summary["validators"] == 4 and summary["validators_agree"]
    assert summary["gateway_totals_agree"]
    rewards = {t[0]: t[4] for t in TASKS}
    minted = sum(rewards[task] for who, task in WORK if (who, task) != REJECTED[:2])
    assert summary["minted"] == minted
    assert summary["balances"] == summary["minted"] - summary["redeemed"] \
        == summary["circulating"]
    assert summary["supply_invariant"] and summary["cap_invariant"]
    assert summary["over_cap"] == []
    assert summary["rejected"] == REFUSALS
    assert summary["committed"] + summary["rejected"] == summary["txs"]
    assert "supply invariant holds" in out and "cap invariant holds" in out

    network = json.loads((folder / "network.json").read_text())
    assert all(nothing_listens(v["gateway"]) for v in network["validators"]), \
        "the demo stopped its validators"
    audit = run_cli("audit", *(str(folder / v["name"]) for v in network["validators"]),
                    "--genesis", str(folder / "genesis.json"), "--json", timeout_s=120)
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
    replayed = json.loads(audit.stdout)["summary"]
    assert replayed["blocks"] == summary["height"]
    assert replayed["transactions"] == summary["txs"]
    assert (replayed["minted"], replayed["redeemed"], replayed["circulating"]) == \
        (summary["minted"], summary["redeemed"], summary["circulating"])


def test_the_demo_serves_until_interrupted_and_then_stops_its_validators(tmp_path):
    folder = tmp_path / "demo"
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "demo", "--dir",
                                str(folder)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    out = ""
    try:
        out = read_until(process, "\nserving;", 180)
        network = json.loads((folder / "network.json").read_text())
        urls = [v["gateway"] for v in network["validators"]]
        for url in urls:
            assert f" {url}\n" in out             # where the gateways are
        assert f"curl -s {urls[0]}/v1/status" in out
        # the operator dashboard: the first gateway watching the other three
        assert f"\n  {urls[0]}/?peers={','.join(urls[1:])}\n" in out
        # the README's form, which works from a fresh clone: `stadsmunt` is not on PATH
        hints = [line.strip() for line in out.splitlines() if line.startswith("  ")]
        assert not [line for line in hints if line.startswith("stadsmunt ")]
        if Path(sys.executable).with_name("stadsmunt").exists():
            assert "(`.venv/bin/stadsmunt` does what `python3 dev.py` does)" in out
        hint = next(line for line in hints
                    if line.startswith("python3 dev.py client --gateway ")
                    and line.endswith(" tasks"))
        hinted = subprocess.run([sys.executable, *shlex.split(hint)[1:]], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert hinted.returncode == 0, hinted.stdout + hinted.stderr
        with urllib.request.urlopen(urls[3] + "/v1/status", timeout=5) as answer:
            assert json.loads(answer.read())["height"] > 0
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:      # a failed test: Ctrl-C still stops the validators
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    assert process.returncode == 0, rest
    assert "stopped;" in rest and "Traceback" not in rest
    assert all(nothing_listens(url) for url in urls)
    assert f"is kept in {folder}" in rest and (folder / "keys" / "admin.key").exists()


def test_the_demo_removes_its_temporary_folder_with_everyones_keys(tmp_path):
    done = run_cli("demo", "--exit", env={"TMPDIR": str(tmp_path)}, timeout_s=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = next(tmp_path.glob("stadsmunt-demo-*"), None)
    assert folder is None, "left behind"
    assert "stopped; removed the network's folder " + str(tmp_path) in done.stdout


def test_with_keep_the_demo_keeps_its_temporary_folder_and_says_where(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "demo", "--keep"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "TMPDIR": str(tmp_path)},
                               start_new_session=True)
    try:
        out = read_until(process, "are up and linked", 180)
        process.send_signal(signal.SIGTERM)
        out += process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:      # a failed test: SIGTERM still stops the validators
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    assert process.returncode == 0, out[-3000:]
    [folder] = tmp_path.glob("stadsmunt-demo-*")
    assert f"is kept in {folder}\n" in out
    assert (folder / "keys" / "admin.key").exists()
    network = json.loads((folder / "network.json").read_text())
    assert all(nothing_listens(v["gateway"]) for v in network["validators"])
