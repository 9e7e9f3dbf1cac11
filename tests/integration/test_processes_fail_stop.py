"""Fail-stop, against real validator processes (docs/operators.md, "What stops a
validator"): one validator of four runs with a fault injected (faulty_node.py) under
steady load. A broken invariant, a ledger error, a dead ticker, a bug in the links or the
death of the gateway supervisor ends its process with exit code 1 and one clear
`validator_failed` line, after which it does nothing but stop; the other three go on
committing; restarted without the fault on the same folder it recovers from disk, catches
up, holds the others' blocks and passes `stadsmunt audit`. Bad input from a peer and a
bug in serving one gateway connection stop nothing."""
from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from netharness import Load, Network, run_cli, tx_heights
from node.store import Store

FAULTY = ["-m", "tests.integration.faulty_node"]
BACKUP = "vng"                  # a backup in view 0
PRIMARY = "municipality"        # the primary of view 0
EXIT_S = 30.0                   # from the fault to the process's end, at most
# What the validator process may still log after its validator_failed line: stopping,
# nothing else (no block, no view change, no new link, no request served). The peer
# port's sampled log also writes its last summaries of what it counted before (lines with
# `summary`) as the transport stops.
STOPPING = {"link_down", "gateway_unlinked", "gateway_killed", "transport_stopped",
            "validator_stopped"}


def _lines(net: Network, name: str) -> list[dict]:
    """The JSON log lines of a validator's log, its gateway's among them. The two
    processes write to one file, so a line of one may land right after a line of the
    other before its newline: each text line is read as one or more JSON objects."""
    decoder, found = json.JSONDecoder(), []
    for text in (net.root / f"{name}.log").read_text(errors="replace").splitlines():
        at = 0
        while text.startswith("{", at):
            line, at = decoder.raw_decode(text, at)
            found.append(line)
    return found


def _events(net: Network, name: str, event: str) -> list[dict]:
    return [e for e in _lines(net, name) if e.get("event") == event]


async def _start(network, victim: str, fault: str) -> Network:
    net = await network(4, start=False)
    for name in net.names:
        net.start(name, launcher=FAULTY + [fault] if name == victim else None)
    await net.wait_ready(timeout_s=60)
    return net


async def _exits(net: Network, victim: str) -> int:
    process = net.processes[victim]

    async def ended():
        return process.poll() is not None
    await net.wait_for(f"{victim} to end its process", ended, EXIT_S)
    return process.returncode


def _assert_one_clear_failure(net: Network, victim: str, cause: str,
                              also: frozenset = frozenset()) -> dict:
    """Exactly one validator_failed line, naming `cause`; no line of the validator's at
    level error or above but that one (and those in `also`); after it only STOPPING; the
    ledger on disk ends at the height that line names (no block written after it)."""
    lines = [e for e in _lines(net, victim) if e.get("role") == "validator"]
    failed = [i for i, e in enumerate(lines) if e["event"] == "validator_failed"]
    assert len(failed) == 1, net.log_tail(victim, 40)
    line = lines[failed[0]]
    assert cause in line["error"], line["error"]
    assert "Traceback" in line.get("exception", ""), line
    after = [e["event"] for e in lines[failed[0] + 1:] if not e.get("summary")]
    assert set(after) <= STOPPING, (after, net.log_tail(victim, 40))
    with Store(net.root / victim / "data") as store:
        assert store.head()[0] == line.get("height"), (store.head()[0], line)
    loud = [e["event"] for e in lines if e["level"] in ("error", "critical")
            and e["event"] != "validator_failed" and e["event"] not in also]
    assert not loud, (loud, net.log_tail(victim, 40))
    tail = (net.root / f"{victim}.log").read_text().rstrip().splitlines()[-1]
    assert tail.startswith(f"stadsmunt: validator {victim} failed:") and cause in tail, tail
    return line


def _none_ended(net: Network) -> None:
    """Every validator's process still runs (checked while waiting, to fail at once)."""
    ended = {n: p.returncode for n, p in net.processes.items() if p.poll() is not None}
    assert not ended, (ended, {n: net.log_tail(n, 5) for n in ended})


async def _others_go_on(net: Network, victim: str) -> None:
    others = [n for n in net.names if n != victim]
    top = max((await net.heights(others)).values())
    await net.wait_height(top + 10, others, timeout_s=60)


async def _restarts_and_agrees(net: Network, victim: str, load: Load) -> None:
    """Restarted without the fault: it recovers from its folder, catches up under load,
    holds the others' blocks, nothing committed is lost, and the audit passes on its
    data."""
    net.start(victim)
    await net.wait_ready(net.names, timeout_s=60)
    await load.wait_committed(len(load.committed) + 30, timeout_s=60)
    await load.stop()
    assert not load.rejected, load.rejected
    top = await net.wait_caught_up(net.names, timeout_s=60)
    blocks = await net.assert_same_blocks(net.names, top)
    in_log = tx_heights(blocks)
    lost = [tx for tx, h in load.committed.items() if in_log.get(tx) != h]
    assert not lost, f"{len(lost)} of {len(load.committed)} committed transactions lost"
    audit = await asyncio.to_thread(
        run_cli, "audit", str(net.root / victim), "--genesis-hash", net.genesis_hash,
        "--json", "--jobs", "1", timeout_s=120)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    report = json.loads(audit.stdout)
    assert report["ok"] and report["summary"]["blocks"] >= top, report


async def _fails_stop_and_recovers(network, fault: str, cause: str,
                                   victim: str = BACKUP, also=frozenset()) -> dict:
    net = await _start(network, victim, fault)
    load = Load(net, clients=4, wait_s=2.0)
    load.start()
    assert await _exits(net, victim) == 1, net.log_tail(victim, 40)
    line = _assert_one_clear_failure(net, victim, cause, also)
    await _others_go_on(net, victim)
    await _restarts_and_agrees(net, victim, load)
    return line


# ---- (a) consensus ----------------------------------------------------------------------

async def test_a_broken_consensus_invariant_stops_the_validator(network):
    await _fails_stop_and_recovers(network, "invariant:20",
                                   "injected: a consensus invariant broke")


@pytest.mark.slow      # a variant of a case the default run covers
async def test_a_broken_invariant_met_in_a_gateways_submission_stops_the_validator(
        network):
    """Met while the link server hands a gateway's envelopes to the driver: not logged as
    a bug of the link (link_failed) with the validator running on."""
    await _fails_stop_and_recovers(network, "submission:20",
                                   "injected: an invariant broke in a submission")


# ---- (b) the ledger ---------------------------------------------------------------------

@pytest.mark.slow      # a variant of a case the default run covers
async def test_a_ledger_error_writing_the_votes_stops_the_validator(network):
    """The flush's first step (persist) fails: the round's messages never leave."""
    await _fails_stop_and_recovers(network, "persist:20",
                                   "injected: the consensus write failed")


async def test_a_ledger_error_committing_a_block_stops_the_validator(network):
    """The block's write transaction fails at its commit, after its records were put:
    none of it stays, and the ledger on disk ends at the block before."""
    line = await _fails_stop_and_recovers(network, "commit:20",
                                          "injected: the commit of block 20 failed")
    assert line["height"] == 19


# ---- (c) the driver's checkpoint step ---------------------------------------------------

async def test_a_failure_in_the_checkpoint_step_stops_the_primary(network):
    """After the round's committed batches were taken out of the replica and executed,
    keeping the stable checkpoint raises: the primary stops (the others change view and
    go on) instead of running on with a replica and a ledger that disagree."""
    await _fails_stop_and_recovers(network, "checkpoint:16",
                                   "injected: keeping checkpoint", victim=PRIMARY)


# ---- (d) the ticker ---------------------------------------------------------------------

async def test_a_ticker_that_dies_stops_the_validator(network):
    await _fails_stop_and_recovers(network, "ticker:20",
                                   "injected: the ticker's clock failed")


# ---- (e) the links ----------------------------------------------------------------------

async def test_a_bug_in_the_peer_read_loop_stops_the_validator(network):
    """transport_failed names it too (the links stop first), without a second
    traceback."""
    await _fails_stop_and_recovers(network, "reader:20",
                                   "injected: a bug in the read loop",
                                   also=frozenset({"transport_failed"}))


async def test_bad_input_from_a_peer_stops_nobody(network):
    """From height 10 on one validator sends frames that do not parse with everything it
    broadcasts: its peers count and log them and keep the link; nobody stops, and the
    chain goes on."""
    net = await _start(network, BACKUP, "garbage:10")
    load = Load(net, clients=4, wait_s=2.0)
    load.start()
    others = [n for n in net.names if n != BACKUP]

    async def refused_everywhere():
        _none_ended(net)
        return all(_events(net, n, "bad_peer_input") for n in others)
    await net.wait_for("the others to log bad_peer_input", refused_everywhere, 60)
    await load.wait_committed(len(load.committed) + 100, timeout_s=60)
    await load.stop()
    _none_ended(net)
    for name in net.names:
        assert not _events(net, name, "validator_failed"), net.log_tail(name, 20)
        assert not _events(net, name, "transport_failed"), net.log_tail(name, 20)
    top = await net.wait_caught_up(net.names, timeout_s=60)
    await net.assert_same_blocks(net.names, top)


# ---- (f) the gateways -------------------------------------------------------------------

async def test_a_gateway_supervisor_that_dies_stops_the_validator(network):
    """The gateway process is killed and the supervisor fails to start it again: nothing
    would ever restart that worker (with one, the HTTP API is gone while consensus runs
    on), so the validator stops. A gateway process that dies is restarted, not fatal
    (test_gateway_processes.py)."""
    net = await _start(network, BACKUP, "supervisor")
    load = Load(net, clients=4, wait_s=2.0)
    load.start()
    await load.wait_committed(20)
    [gateway] = [e["pid"] for e in _events(net, BACKUP, "gateway_started")]
    os.kill(gateway, signal.SIGKILL)
    assert await _exits(net, BACKUP) == 1, net.log_tail(BACKUP, 40)
    lines = [e["event"] for e in _lines(net, BACKUP) if e.get("role") == "validator"]
    assert "gateway_exited" in lines
    _assert_one_clear_failure(net, BACKUP, "injected: the gateway supervisor failed")
    await _others_go_on(net, BACKUP)
    await _restarts_and_agrees(net, BACKUP, load)


async def test_a_bug_serving_one_gateway_connection_stops_nothing(network):
    """A request from a gateway meets a bug in the link server (not in consensus or the
    ledger): that connection is dropped with link_failed and the gateway links again;
    the validator goes on and its gateway serves writes again. Not fatal: what a gateway
    sends comes from HTTP clients."""
    net = await _start(network, BACKUP, "link:20")
    load = Load(net, clients=8, wait_s=2.0, targets=[BACKUP])
    load.start()

    async def relinked():
        _none_ended(net)
        return _events(net, BACKUP, "link_failed") and \
            len(_events(net, BACKUP, "gateway_linked")) >= 2
    await net.wait_for("the gateway to link again after link_failed", relinked, 60)
    before = len(load.committed)
    await load.wait_committed(before + 50, timeout_s=60)  # through the victim's gateway
    await load.stop()
    _none_ended(net)
    assert len(_events(net, BACKUP, "link_failed")) == 1
    assert not _events(net, BACKUP, "validator_failed")
    top = await net.wait_caught_up(net.names, timeout_s=60)
    await net.assert_same_blocks(net.names, top)
