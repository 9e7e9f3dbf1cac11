"""The gateway processes beside a validator (ops/gateways.py, gateway/serve.py), as
`stadsmunt node run` starts them: a gateway that dies is started again while the other
serves on; stopping or killing the validator leaves no gateway behind; a gateway of one's
own (`node gateway --listen`) keeps serving reads while its validator restarts, and
writes again once it is back."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from netharness import REPO, Network, free_base_port
from node.envelope import sign_tx
from node.keys import Keypair


def set_workers(net: Network, name: str, workers: int) -> None:
    path = net.root / name / "node.toml"
    text = path.read_text()
    assert "workers = 1" in text
    path.write_text(text.replace("workers = 1", f"workers = {workers}", 1))


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has ended and waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def register(net: Network) -> bytes:
    return sign_tx(net.admin, net.chain, "member.register",
                   {"key": Keypair.generate().public, "role": "citizen",
                    "age_band": "21plus", "area": "centrum"})


async def gateway_pids(net: Network, name: str, count: int) -> list[int]:
    """The validator's `count` gateway processes, once each has linked to it."""
    pid = net.processes[name].pid

    async def linked():
        found = children(pid)
        hellos = {e["pid"] for e in net.log_events(name, "gateway_linked")}
        return found if len(found) == count and set(found) <= hellos else None
    return await net.wait_for(f"{count} gateway processes", linked, 20)


async def test_a_gateway_that_dies_is_started_again_and_the_other_serves_on(network):
    net = await network(1, start=False)
    set_workers(net, "municipality", 2)
    net.start_all()
    await net.wait_ready()
    first, second = await gateway_pids(net, "municipality", 2)
    os.kill(first, signal.SIGKILL)
    # the other worker serves the port meanwhile: writes commit (a connection that was
    # kept alive to the dead one fails once, as it would for any client)
    committed = 0
    for _ in range(10):
        try:
            answer = await net.post_tx("municipality", register(net), 10)
        except aiohttp.ClientError:
            continue
        assert answer["status"] == "committed", answer
        committed += 1
    assert committed >= 5

    async def restarted():
        exited = net.log_events("municipality", "gateway_exited")
        linked = [e for e in net.log_events("municipality", "gateway_linked")
                  if e["pid"] not in (first, second)]
        return exited and linked
    await net.wait_for("the dead gateway to be started again", restarted, 20)
    assert net.log_events("municipality", "gateway_exited")[0]["pid"] == first
    pids = await gateway_pids(net, "municipality", 2)
    assert second in pids and first not in pids
    # a clean stop ends every gateway; none is left behind
    net.processes["municipality"].send_signal(signal.SIGTERM)
    assert net.processes["municipality"].wait(20) == 0
    assert not any(alive(p) for p in pids)
    roles = {e.get("role") for e in net.log_events("municipality", "gateway_listening")}
    assert roles == {"gateway-1", "gateway-2"}


async def test_a_killed_validator_takes_its_gateways_with_it(network):
    net = await network(1)
    [gateway] = await gateway_pids(net, "municipality", 1)
    net.kill("municipality")

    async def gone():
        return not alive(gateway)
    await net.wait_for("the gateway to end with its validator", gone, 10)


async def test_a_gateway_of_ones_own_serves_reads_while_its_validator_restarts(network):
    net = await network(1)
    port = free_base_port(1)
    own = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "node", "gateway", str(net.root / "municipality"),
         "--worker", "9", "--listen", f"127.0.0.1:{port}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(net.root / "own.log", "ab"))
    url = f"http://127.0.0.1:{port}"
    try:
        answer = await net.post_tx("municipality", register(net), 10)
        assert answer["status"] == "committed"
        async with aiohttp.ClientSession() as session:
            await until_status(session, url, lambda s: s["height"] == 1 and not unreached(s))
            net.processes["municipality"].send_signal(signal.SIGTERM)
            net.processes["municipality"].wait(20)
            await until_status(session, url, unreached)
            async with session.get(f"{url}/v1/tx/{answer['tx_id']}") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "committed"
            async with session.post(f"{url}/v1/tx", data=register(net),
                                    headers={"Content-Type": "application/msgpack"}) as r:
                assert r.status == 503 and r.headers["Retry-After"] == "1"
            net.start("municipality")
            await until_status(session, url, lambda s: not unreached(s))
            async with session.post(f"{url}/v1/tx?wait=true&timeout=10", data=register(net),
                                    headers={"Content-Type": "application/msgpack"}) as r:
                body = await r.json()
                assert r.status == 200 and body["status"] == "committed", body
                assert body["height"] == 2
    finally:
        own.terminate()
        own.wait(10)


async def until_status(session, url: str, check, timeout_s: float = 20.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            async with session.get(f"{url}/v1/status") as response:
                if response.status == 200:
                    status = await response.json()
                    if check(status):
                        return status
        except aiohttp.ClientError:
            pass
        assert loop.time() < deadline, "timed out waiting for the gateway's status"
        await asyncio.sleep(0.02)


async def test_a_gateway_that_cannot_listen_stops_the_start(network):
    net = await network(1, start=False)
    host, _, port = net.gateways["municipality"].rpartition(":")
    with socket.socket() as taken:
        taken.bind((host.removeprefix("http://"), int(port)))
        taken.listen()
        net.start("municipality")
        assert net.processes["municipality"].wait(30) == 1
    assert "gateway-1 ended as it started" in net.log_tail("municipality")
    assert not net.log_events("municipality", "validator_started")


def unreached(status: dict) -> bool:
    """The status says its gateway cannot reach the validator (other warnings, such as a
    coming year's cap policy from November, are not what these tests look at)."""
    return any("cannot reach its validator" in w for w in status["warnings"])
