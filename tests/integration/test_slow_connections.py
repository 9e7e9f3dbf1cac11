"""Connections that never finish their request headers, against the primary's gateway.

A four-validator network; the primary (the first validator, in view 0) runs with 1,024
open files, the usual default, and a header timeout of HEADER_TIMEOUT_S so that the
attack's connections are timed out and re-opened several times while it lasts. An
attacker (this file run as a script, from the loopback addresses SOURCES) holds
CONNECTIONS connections to the primary's gateway, more than the process may open files,
each sending the start of a request and then nothing, each re-opened as soon as the
gateway closes it. Meanwhile a victim submits registrations through the same gateway
(from 127.0.0.1), measured as in test_hostile_http.py: its p99 under attack at most
twice its quiet p99, nothing but commits; and a newcomer opens a fresh connection every
NEWCOMER_EVERY_S, which must be answered. No view change, every peer stays linked, and
every validator's log stays small and free of tracebacks.

Before the gateway counted and timed its connections it held all of them, for an hour
each: at 1,024 files it accepted nothing more, newcomers waited in vain, the victim's
p99 went to 11 s, and asyncio logged a traceback for every failed accept (160,000 lines
in the 12 s of the attack).
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp

from netharness import start_with_descriptor_limit
from test_hostile_http import Victims, outsider, p99, quiet_baseline, view_changes

HERE = Path(__file__).resolve()
HEADER_TIMEOUT_S = 2.0
CONNECTIONS = 1_200
SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
# each window holds 120 and 160 victims at least: the p99 is each one's second worst;
# the attack outlasts four header timeouts
BASELINE_S, ATTACK_S = 6.0, 8.0
# The victim's p99 under attack may be twice its quiet p99, or P99_FLOOR_S if that is
# more: the attacker's thousands of reconnects a second (those over an address's share,
# refused as they come) cost the kernel and this shared 2-core machine something whatever
# the gateway does; what this guards against is seconds (11 s before the limits).
P99_FLOOR_S = 0.3
NEWCOMER_EVERY_S = 0.5
MAX_LOG_LINES = 100     # per validator while the attack lasts (sampled: a few a kind)


# ---- the attacker (runs as `python test_slow_connections.py PORT SECONDS COUNT SOURCE...`)

async def _attack(port: int, seconds: float, count: int, sources: list[str]) -> Counter:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    stats: Counter = Counter()

    async def hold(source: str) -> None:
        while loop.time() < deadline and stats["opened"] < 500_000:
            try:
                async with asyncio.timeout(2.0):
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, local_addr=(source, 0))
            except ConnectionResetError:        # refused as it was accepted
                stats["reset"] += 1
                continue
            except (OSError, TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(0.05)       # the attacker's pacing, nothing more
                continue
            stats["opened"] += 1
            try:
                writer.write(b"POST /v1/tx HTTP/1.1\r\nHost: gateway\r\n")
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    if await reader.read(1024):
                        stats["answered"] += 1
                stats["closed"] += 1
            except ConnectionResetError:
                stats["reset"] += 1
            except TimeoutError:
                stats["held_to_the_end"] += 1
            writer.transport.abort()

    await asyncio.gather(*(hold(sources[i % len(sources)]) for i in range(count)))
    return stats


# ---- the test ----------------------------------------------------------------------------

async def _newcomers(url: str, seconds: float) -> list:
    """A client with a fresh connection every NEWCOMER_EVERY_S asks for the status; what
    went wrong (a status other than 200, an error) is returned."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    failures = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        while loop.time() < end:
            try:
                async with session.get(url + "/v1/status") as response:
                    if response.status != 200:
                        failures.append(response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                failures.append(repr(error))
            await asyncio.sleep(NEWCOMER_EVERY_S)       # pacing, not synchronisation
    return failures


def _log_lines(net) -> dict[str, list[str]]:
    return {name: (net.root / f"{name}.log").read_text(errors="replace").splitlines()
            for name in net.names}


async def test_connections_that_never_finish_their_headers_keep_no_one_out(network):
    net = await network(4, start=False)
    primary = net.names[0]
    path = net.root / primary / "node.toml"
    text = path.read_text()
    assert "header_timeout_s = 10 " in text
    path.write_text(text.replace("header_timeout_s = 10 ",
                                 f"header_timeout_s = {HEADER_TIMEOUT_S:g} ", 1))
    start_with_descriptor_limit(net, primary, 1024)
    for name in net.names[1:]:
        net.start(name)
    assert (await net.wait_ready())[primary]["primary"] == primary

    victims = Victims(net, [primary])
    await victims.run(2.0)                        # warm up: connections, caches
    baseline = await victims.run(BASELINE_S)
    height = (await net.wait_ready())[primary]["height"]
    before = {name: len(lines) for name, lines in _log_lines(net).items()}
    port = net.gateways[primary].rpartition(":")[2]
    attacker = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), port, str(ATTACK_S), str(CONNECTIONS), *SOURCES,
        stdout=subprocess.PIPE, preexec_fn=outsider)
    attacked, turned_away = await asyncio.gather(
        victims.run(ATTACK_S), _newcomers(net.gateways[primary], ATTACK_S))
    stats = json.loads((await attacker.communicate())[0])
    logs = {name: lines[before[name]:] for name, lines in _log_lines(net).items()}
    baseline = await quiet_baseline(victims, baseline)
    print(f"\nvictims p99 {p99(baseline) * 1000:.0f} ms quiet, "
          f"{p99(attacked) * 1000:.0f} ms under attack; the attacker's {stats}; "
          f"log lines during the attack {[len(v) for v in logs.values()]}")

    assert not victims.failures, victims.failures[:3]
    assert not turned_away, turned_away[:3]
    assert p99(attacked) <= max(2 * p99(baseline), P99_FLOOR_S), \
        (p99(baseline), p99(attacked))
    # the attack happened: all its connections were made, none answered, the held ones
    # timed out and re-opened, those over an address's share refused at once
    assert stats["opened"] + stats.get("reset", 0) >= CONNECTIONS, stats
    assert stats.get("answered", 0) == 0, stats
    assert stats.get("closed", 0) >= len(SOURCES) * 64, stats
    assert stats.get("reset", 0) >= CONNECTIONS - len(SOURCES) * 64, stats

    statuses = await net.wait_ready()
    assert {s["view"] for s in statuses.values()} == {0}, statuses
    assert [await view_changes(net, n) for n in net.names] == [0] * 4
    assert all(v["connected"] for s in statuses.values() for v in s["validators"]), \
        statuses
    assert statuses[primary]["height"] > height
    for name, lines in logs.items():
        text = "\n".join(lines)
        assert "Traceback" not in text, f"{name} logged a traceback:\n{text[-3000:]}"
        assert "Too many open files" not in text, f"{name}:\n{text[-3000:]}"
        assert '"link_down"' not in text, f"{name} lost a peer:\n{text[-3000:]}"
        assert len(lines) <= MAX_LOG_LINES, \
            f"{name} wrote {len(lines)} lines during the attack:\n" + "\n".join(lines[-40:])


if __name__ == "__main__":
    found = asyncio.run(_attack(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
                                sys.argv[4:]))
    print(json.dumps(found), flush=True)
