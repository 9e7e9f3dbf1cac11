"""Attacks on the validators' peer ports (problems 1, 4 and 6 of the hardening issue), on
real processes on loopback: whatever outsiders do, the validators reach each other. While
each attack runs, a validator is killed and restarted and must link again, the network
must keep committing (no split), and the logs must stay small, without tracebacks.

The attacker runs in a process of its own (this file run as a script), so that it
competes for the CPU as a real one would and the test's own event loop stays free for
the harness. It connects from 127.0.0.1, the validators' own address: the worst case,
as no rule that looks at addresses can tell it from a validator. Every loop in it is
bounded by a count and a deadline."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from netharness import Load, cpu_seconds, open_descriptors, start_with_descriptor_limit

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]

ATTACK_S = 12.0             # how long an attack lasts at most (the test stops it sooner)
MAX_LOG_LINES = 120         # per validator for a whole test, the attack's share included


# ---- the attacker (runs as `python test_peer_port_attacks.py KIND ...`) --------------------

async def _idle(ports: list[int], per_port: int, deadline: float, stats: Counter) -> None:
    """Connections that send nothing, each re-opened as soon as the node drops it."""
    loop = asyncio.get_running_loop()

    async def hold(port: int) -> None:
        while loop.time() < deadline and stats["opened"] < 200_000:
            try:
                async with asyncio.timeout(2.0):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(0.05)
                continue
            stats["opened"] += 1
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    if await reader.read(1024):
                        stats["answered"] += 1
                stats["dropped"] += 1
            except (OSError, TimeoutError):
                stats["dropped"] += 1
            writer.transport.abort()

    await asyncio.gather(*(hold(port) for port in ports for _ in range(per_port)))


async def _half_open(ports: list[int], per_port: int, deadline: float,
                     stats: Counter) -> None:
    """`per_port` connections at once to each port that send the start of a HELLO and
    then nothing, in waves: a new wave once the node has dropped the last one."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline and stats["waves"] < 20:
        stats["waves"] += 1
        held = []
        for port in ports:
            for _ in range(per_port):
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    stats["connect_failed"] += 1
                    continue
                writer.write(b"stadsmunt/link/v2" + bytes(20))
                held.append((reader, writer))
                stats["opened"] += 1
        while loop.time() < deadline:
            open_now = sum(not r.at_eof() and r.exception() is None for r, _ in held)
            stats["most_held"] = max(stats["most_held"], open_now)
            if open_now == 0:
                break
            await asyncio.sleep(0.1)
        for reader, writer in held:
            if reader.at_eof() or reader.exception() is not None:
                stats["dropped"] += 1
            writer.transport.abort()


async def _churn(ports: list[int], keys: list[bytes], genesis: bytes, workers: int,
                 deadline: float, stats: Counter) -> None:
    """HELLOs with validators' public keys (anyone can send them), as fast as they go,
    each followed by a PROOF of random bytes; counts what comes back."""
    from node.handshake import CHALLENGE_BYTES, MAGIC
    loop = asyncio.get_running_loop()

    async def worker(k: int) -> None:
        turn = k
        while loop.time() < deadline and stats["attempts"] < 500_000:
            turn += 1
            port = ports[turn % len(ports)]
            claimed = keys[turn % len(keys)]
            try:
                async with asyncio.timeout(2.0):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(0.05)
                continue
            stats["attempts"] += 1
            answer = b""
            try:
                async with asyncio.timeout(5.0):
                    writer.write(MAGIC + genesis + claimed + os.urandom(32))
                    writer.write(os.urandom(64))
                    while chunk := await reader.read(4096):
                        answer += chunk
            except (OSError, TimeoutError):
                stats["errors"] += 1
            writer.transport.abort()
            if len(answer) == CHALLENGE_BYTES:
                stats["challenges"] += 1
            elif len(answer) > CHALLENGE_BYTES:
                stats["signed"] += 1        # a REPLY: must never happen
            else:
                stats["refused"] += 1

    await asyncio.gather(*(worker(k) for k in range(workers)))


def _attacker_main(argv: list[str]) -> None:
    kind, spec = argv[0], json.loads(argv[1])
    import resource
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats: Counter = Counter()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec["seconds"]
        stop = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), stop.set)   # the test closes stdin to stop us
        if kind == "idle":
            attack = _idle(spec["ports"], spec["per_port"], deadline, stats)
        elif kind == "half-open":
            attack = _half_open(spec["ports"], spec["per_port"], deadline, stats)
        else:
            attack = _churn(spec["ports"], [bytes.fromhex(k) for k in spec["keys"]],
                            bytes.fromhex(spec["genesis"]), spec["workers"], deadline, stats)
        task = asyncio.create_task(attack)
        await asyncio.wait([task, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    print(json.dumps(stats))


class Attacker:
    def __init__(self, kind: str, **spec):
        spec.setdefault("seconds", ATTACK_S)
        self.process = subprocess.Popen(
            [sys.executable, str(HERE), kind, json.dumps(spec)], cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stats: dict | None = None

    def stop(self) -> dict:
        """Stops the attack; what the attacker counted."""
        if self.stats is None:
            try:
                out, err = self.process.communicate(input="", timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, err = self.process.communicate()
            assert self.process.returncode == 0, err[-3000:]
            self.stats = json.loads(out.strip().splitlines()[-1])
        return self.stats

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


# ---- the tests ---------------------------------------------------------------------------

def _log_lines(net) -> dict[str, list[str]]:
    return {name: (net.root / f"{name}.log").read_text(errors="replace").splitlines()
            for name in net.names}


def _assert_quiet_logs(net, before: dict[str, int]) -> None:
    """Few lines, no traceback, no 'Too many open files' in any validator's log."""
    counts = {}
    for name, lines in _log_lines(net).items():
        new = lines[before.get(name, 0):]
        counts[name] = len(new)
        text = "\n".join(new)
        assert "Traceback" not in text, f"{name} logged a traceback:\n{text[-3000:]}"
        assert "Too many open files" not in text, f"{name} ran out of descriptors"
        refused = [line for line in new if '"handshake_refused"' in line]
        assert len(new) <= MAX_LOG_LINES, \
            f"{name} wrote {len(new)} lines during the attack:\n" + "\n".join(new[-40:])
        assert len(refused) <= 40, "\n".join(refused[-20:])
    print(f"\nlog lines written during the attack: {counts}")


async def _restart_and_commit(net, victim: str, attacked: list[str], commits: int = 40,
                              start=None) -> None:
    """Kills `victim`, restarts it, and checks that it links again and that the network
    commits, all while the attack runs."""
    net.kill(victim)
    (start or net.start)(victim)
    await net.wait_ready(timeout_s=40)
    load = Load(net, clients=8)
    load.start()
    await load.wait_committed(commits, timeout_s=40)
    await load.stop()
    assert not load.rejected, load.rejected
    statuses = await net.statuses()
    for name, status in statuses.items():
        assert status is not None, f"{name} stopped answering"
        assert all(v["connected"] for v in status["validators"]), (name, status)


def _validator_keys(net) -> list[str]:
    from node import genesis as genesis_file
    genesis = genesis_file.load(net.root / "genesis.json")
    return [key.hex() for key in genesis.validator_keys()]


async def test_idle_connections_re_opened_as_dropped_keep_no_validator_out(network):
    """Problem 1: idle connections to three validators' peer ports, each re-opened
    as soon as it is dropped: the issue's sixteen per port and then more than the
    port holds (96 against 64 slots), so that the node evicts as fast as the
    attacker connects."""
    net = await network(4)
    before = {name: len(lines) for name, lines in _log_lines(net).items()}
    attacked = net.names[1:]
    attacker = Attacker("idle", ports=[net.peer_ports[n] for n in attacked],
                        per_port=96)
    try:
        await asyncio.sleep(2.0)            # let the attack reach its full rate
        await _restart_and_commit(net, net.names[2], attacked)
    finally:
        stats = attacker.stop()
    assert stats["opened"] >= 3 * 96 and stats.get("answered", 0) == 0, stats
    assert stats.get("dropped", 0) > 3 * 32, stats      # the node evicted them
    _assert_quiet_logs(net, before)


async def test_half_open_connections_never_exhaust_a_node_at_1024_descriptors(network):
    """Problem 4, the peer port's side: validators with the usual limit of 1,024 open
    files, and waves of 1,000 connections to each of two of them that send the start
    of a HELLO and stall. A node holds a bounded number of them (they cost it no
    more than 64 descriptors), drops the rest, and its peers link."""
    net = await network(4, start=False)
    for name in net.names:
        start_with_descriptor_limit(net, name, 1024)
    await net.wait_ready()
    before = {name: len(lines) for name, lines in _log_lines(net).items()}
    attacked = net.names[2:]
    baseline = {name: open_descriptors(net, name) for name in attacked}
    attacker = Attacker("half-open", ports=[net.peer_ports[n] for n in attacked],
                        per_port=1000)
    most = dict.fromkeys(attacked, 0)
    try:
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            for name in attacked:
                most[name] = max(most[name], open_descriptors(net, name))
            await asyncio.sleep(0.05)
        await _restart_and_commit(
            net, net.names[3], attacked,
            start=lambda name: start_with_descriptor_limit(net, name, 1024))
    finally:
        stats = attacker.stop()
    # (the attacker sees more open: those the kernel holds until the node accepts them)
    assert stats["opened"] >= 2000 and stats["dropped"] >= 1000, stats
    for name in attacked:
        assert most[name] <= baseline[name] + 64 + 16, (name, baseline, most)
    print(f"\nhalf-open: {stats}; descriptors {baseline} at rest, {most} at most")
    _assert_quiet_logs(net, before)


async def test_handshake_churn_gets_no_signature_and_stops_no_restart(network):
    """Problem 6: HELLOs with the validators' public keys, as fast as eight clients
    can send them to three validators, each with a PROOF of random bytes. Nobody
    gets a signature, the logs hold a handful of lines, and a restarted validator
    links and the network commits meanwhile."""
    net = await network(4)
    before = {name: len(lines) for name, lines in _log_lines(net).items()}
    attacked = net.names[1:]
    cpu_before = {name: cpu_seconds(net, name) for name in attacked}
    attacker = Attacker("churn", ports=[net.peer_ports[n] for n in attacked],
                        keys=_validator_keys(net), genesis=net.genesis_hash, workers=8)
    started = time.monotonic()
    try:
        await asyncio.sleep(2.0)
        await _restart_and_commit(net, net.names[1], attacked)
    finally:
        stats = attacker.stop()
    elapsed = time.monotonic() - started
    assert stats.get("signed", 0) == 0, stats
    assert stats["attempts"] >= 1000 and stats.get("challenges", 0) >= 500, stats
    # what it cost the two validators that ran throughout (for the report)
    cpu = sum(cpu_seconds(net, name) - cpu_before[name] for name in attacked[1:])
    print(f"\nchurn: {stats['attempts']} attempts in {elapsed:.1f} s, "
          f"{cpu:.2f} CPU-s on the two validators that ran throughout")
    _assert_quiet_logs(net, before)


@pytest.mark.slow
async def test_every_attack_at_once_for_a_minute(network):
    """The three attacks together for a minute against three validators, with two
    restarts; the network keeps committing all along."""
    net = await network(4)
    before = {name: len(lines) for name, lines in _log_lines(net).items()}
    attacked = net.names[1:]
    ports = [net.peer_ports[n] for n in attacked]
    attackers = [Attacker("idle", ports=ports, per_port=96, seconds=90),
                 Attacker("half-open", ports=ports, per_port=500, seconds=90),
                 Attacker("churn", ports=ports, keys=_validator_keys(net),
                          genesis=net.genesis_hash, workers=8, seconds=90)]
    try:
        load = Load(net, clients=8)
        load.start()
        end = time.monotonic() + 60
        committed = 0
        for victim in (net.names[1], net.names[3]):
            await asyncio.sleep(10)
            await _restart_and_commit(net, victim, attacked, commits=20)
        while time.monotonic() < end:
            await load.wait_committed(committed + 50, timeout_s=30)
            committed = len(load.committed)
        await load.stop()
    finally:
        stats = [a.stop() for a in attackers]
    assert all(s.get("signed", 0) == 0 for s in stats), stats
    for name, lines in _log_lines(net).items():
        text = "\n".join(lines[before[name]:])
        assert "Traceback" not in text and "Too many open files" not in text
        assert len(lines) - before[name] <= 6 * MAX_LOG_LINES


if __name__ == "__main__":
    _attacker_main(sys.argv[1:])
