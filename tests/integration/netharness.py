"""Real validator processes on loopback, for the integration tests.

A `Network` is made by the same command an operator runs (`stadsmunt network init`) in a
test's temporary folder, on a block of free ports, and each validator runs as its own
process (`python -m ops.cli node run DIR/NAME`), with its log in `DIR/NAME.log`. Nothing
waits by sleeping: every wait polls a condition (mostly GET /v1/status) until a deadline
and fails with the statuses and log tails when the deadline passes. `close` kills every
process it started, whatever the test did to them (stopped, frozen, killed).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from node import envelope, keys
from ops import network
from protocol.envelope import tx_id_of_envelope
from protocol.token import make_token

REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.02  # how often a condition is looked at while waiting for it


def run_cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """One `stadsmunt` command in a child process, as an operator would run it."""
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s)


def free_base_port(count: int) -> int:
    """A base P such that P .. P+count-1 are all free on 127.0.0.1 right now."""
    return network.free_base_port(count, preferred=None)


class Network:
    def __init__(self, root: Path, validators: int = 4, made: bool = False):
        """Runs `network init` in `root`, or, `made`, takes the network already there."""
        self.root = root
        self.size = validators
        if not made:
            base_port = free_base_port(2 * validators)
            done = run_cli("network", "init", str(root), "--validators", str(validators),
                           "--base-port", str(base_port))
            assert done.returncode == 0, done.stderr
        info = json.loads((root / "network.json").read_text())
        self.chain = info["chain"]
        self.genesis_hash = info["genesis"]
        self.names = [v["name"] for v in info["validators"]]
        self.gateways = {v["name"]: v["gateway"] for v in info["validators"]}
        self.peer_ports = {v["name"]: int(v["peer"].rpartition(":")[2])
                           for v in info["validators"]}
        self.admin = keys.read_key_file(root / "keys" / "admin.key")
        self.processes: dict[str, subprocess.Popen] = {}
        self.frozen: set[str] = set()
        self._all_started: list[subprocess.Popen] = []
        self._session: aiohttp.ClientSession | None = None
        self._token = ("", 0.0)

    # ---- processes ---------------------------------------------------------------------

    def start(self, name: str, launcher: list[str] | None = None) -> None:
        """Runs `python -m ops.cli node run DIR/NAME`; with `launcher`, `python
        *launcher DIR/NAME` instead (e.g. tests/integration/faulty_node.py)."""
        assert name not in self.processes or self.processes[name].poll() is not None, \
            f"{name} is already running"
        command = launcher if launcher is not None else ["-m", "ops.cli", "node", "run"]
        log = open(self.root / f"{name}.log", "ab")
        try:
            process = subprocess.Popen(
                [sys.executable, *command, str(self.root / name)],
                cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()  # the child holds its own copy of the descriptor
        self.processes[name] = process
        self._all_started.append(process)

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, whatever it was doing."""
        process = self.processes[name]
        process.kill()
        process.wait(10)
        self.frozen.discard(name)

    def freeze(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGSTOP)
        self.frozen.add(name)

    def thaw(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGCONT)
        self.frozen.discard(name)

    def running(self) -> list[str]:
        """Validators whose process is alive and not frozen."""
        return [n for n in self.names if n in self.processes
                and self.processes[n].poll() is None and n not in self.frozen]

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.root / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def log_events(self, name: str, event: str) -> list[dict]:
        """The JSON log lines of one kind that a validator wrote."""
        path = self.root / f"{name}.log"
        found = []
        for line in path.read_text(errors="replace").splitlines():
            if f'"event": "{event}"' in line:
                found.append(json.loads(line))
        return found

    async def close(self) -> None:
        self.kill_all()
        await self.close_session()

    def kill_all(self) -> None:
        for process in self._all_started:
            if process.poll() is None:
                process.kill()  # a SIGSTOPped process dies of SIGKILL too
        for process in self._all_started:
            process.wait(10)

    async def close_session(self) -> None:
        """Closes the HTTP session, which belongs to the event loop that first used it: a
        network shared by the tests of a module closes it at the end of each test."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- HTTP ---------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15),
                connector=aiohttp.TCPConnector(limit=256))
        return self._session

    async def status(self, name: str, timeout_s: float = 2.0) -> dict | None:
        """The validator's status, or None when it does not answer in time."""
        try:
            async with self.session.get(self.gateways[name] + "/v1/status",
                                        timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def statuses(self, names: list[str] | None = None) -> dict[str, dict | None]:
        names = self.running() if names is None else names
        found = await asyncio.gather(*(self.status(n) for n in names))
        return dict(zip(names, found))

    def read_header(self) -> dict:
        """The admin's read token (blocks carry personal data); renewed well within the
        five minutes a token is valid."""
        token, made = self._token
        if time.monotonic() - made > 60:
            token = make_token(self.admin, self.chain, time.time_ns() // 1_000_000)
            self._token = (token, time.monotonic())
        return {"Authorization": f"Stadsmunt {token}"}

    async def block(self, name: str, height: int) -> dict | None:
        async with self.session.get(f"{self.gateways[name]}/v1/blocks/{height}",
                                    headers=self.read_header()) as r:
            if r.status == 404:
                return None
            assert r.status == 200, await r.text()
            return await r.json()

    async def post_tx(self, name: str, raw: bytes, wait_s: float) -> dict:
        """POST /v1/tx?wait=true; the decoded answer (status `pending` when not decided)."""
        url = f"{self.gateways[name]}/v1/tx?wait=true&timeout={wait_s:g}"
        async with self.session.post(url, data=raw,
                                     headers={"Content-Type": "application/msgpack"},
                                     timeout=aiohttp.ClientTimeout(total=wait_s + 10)) as r:
            answer = await r.json(content_type=None)
            assert r.status in (200, 202, 503), (r.status, answer)
            return answer

    async def post_txs(self, name: str, raws: list[bytes]) -> list[dict]:
        body = {"envelopes": [base64.b64encode(raw).decode() for raw in raws]}
        async with self.session.post(f"{self.gateways[name]}/v1/txs", json=body) as r:
            answer = await r.json()
            assert r.status == 200, answer
            return answer["items"]

    # ---- waiting for conditions ---------------------------------------------------------

    async def wait_for(self, what: str, check, timeout_s: float):
        """Polls the coroutine `check()` until it returns a true value; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = await check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n"
                                     + await self.report())
            await asyncio.sleep(POLL_S)

    async def report(self) -> str:
        lines = []
        for name, s in (await self.statuses(self.names)).items():
            summary = ("no answer" if s is None else
                       f"height {s['height']} view {s['view']} primary {s['primary']} "
                       f"pending {s['pending']} connected "
                       f"{sum(v['connected'] for v in s['validators'])}")
            lines.append(f"--- {name}: {summary}\n{self.log_tail(name, 6)}")
        return "\n".join(lines)

    async def wait_ready(self, names: list[str] | None = None, timeout_s: float = 40.0):
        """Every named validator answers and is linked to every other named one."""
        names = self.running() if names is None else names

        async def linked():
            found = await self.statuses(names)
            for s in found.values():
                if s is None:
                    return False
                up = {v["name"] for v in s["validators"] if v["connected"]}
                if not set(names) <= up:
                    return False
            return found
        return await self.wait_for(f"{names} to be up and linked", linked, timeout_s)

    async def heights(self, names: list[str] | None = None) -> dict[str, int]:
        found = await self.statuses(names)
        return {n: s["height"] for n, s in found.items() if s is not None}

    async def wait_height(self, height: int, names: list[str] | None = None,
                          timeout_s: float = 30.0) -> dict[str, dict]:
        names = self.running() if names is None else names

        async def reached():
            found = await self.statuses(names)
            ok = all(s is not None and s["height"] >= height for s in found.values())
            return found if ok else None
        return await self.wait_for(f"{names} to reach height {height}", reached, timeout_s)

    async def wait_caught_up(self, names: list[str] | None = None,
                             timeout_s: float = 60.0) -> int:
        """All named validators at one height with nothing pending (so the height holds
        while nobody submits); returns it."""
        names = self.running() if names is None else names

        async def level():
            found = await self.statuses(names)
            if any(s is None or s["pending"] for s in found.values()):
                return None
            hs = {s["height"] for s in found.values()}
            return hs.pop() if len(hs) == 1 else None
        return await self.wait_for(f"{names} to agree on a height with nothing pending",
                                   level, timeout_s)

    # ---- the log ------------------------------------------------------------------------

    async def log_of(self, name: str, up_to: int) -> list[dict]:
        blocks = []
        for start in range(1, up_to + 1, 64):
            chunk = await asyncio.gather(*(self.block(name, h)
                                           for h in range(start, min(start + 64, up_to + 1))))
            blocks.extend(chunk)
        assert all(b is not None for b in blocks), f"{name} lacks blocks up to {up_to}"
        return blocks

    async def assert_same_blocks(self, names: list[str], up_to: int) -> list[dict]:
        """Every named validator holds the same block hash at every height 1..up_to, and
        the blocks chain (each names the one before); returns the first one's log."""
        logs = {n: await self.log_of(n, up_to) for n in names}
        first = logs[names[0]]
        for name in names[1:]:
            for a, b in zip(first, logs[name]):
                assert a["hash"] == b["hash"], \
                    f"{names[0]} and {name} differ at height {a['height']}"
        previous = self.genesis_hash
        for block in first:
            assert block["prev_hash"] == previous, f"broken chain at {block['height']}"
            previous = block["hash"]
        return first


def tx_heights(blocks: list[dict]) -> dict[str, int]:
    """tx id -> the height of the block that carries it."""
    found = {}
    for block in blocks:
        for text in block["txs"]:
            found.setdefault(tx_id_of_envelope(base64.b64decode(text)), block["height"])
    return found


class Load:
    """Clients that sign fresh `member.register` transactions and submit each one with
    ?wait=true to a live gateway until it is decided, moving to another gateway when one
    stops answering. `committed` holds what a gateway answered as committed, with its
    height: what must never be lost."""

    def __init__(self, net: Network, clients: int, wait_s: float = 5.0,
                 targets: list[str] | None = None):
        self.net, self.clients, self.wait_s = net, clients, wait_s
        self.targets = targets
        self.committed: dict[str, int] = {}
        self.rejected: dict[str, str] = {}
        self.commit_times: list[float] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._turn = 0

    def envelope(self) -> bytes:
        member = keys.Keypair.generate().public
        return envelope.sign_tx(self.net.admin, self.net.chain, "member.register",
                                {"key": member, "role": "citizen", "age_band": "21plus",
                                 "area": "centrum"})

    def _target(self) -> str | None:
        live = [n for n in (self.targets or self.net.running()) if n in self.net.running()]
        if not live:
            return None
        self._turn += 1
        return live[self._turn % len(live)]

    async def _client(self) -> None:
        raw = None
        while not self._stop.is_set():
            raw = raw or self.envelope()
            name = self._target()
            if name is None:
                await asyncio.sleep(POLL_S)  # nobody to talk to: look again shortly
                continue
            try:
                answer = await self.net.post_tx(name, raw, self.wait_s)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(POLL_S)  # that gateway went away: try the next one
                continue
            status = answer.get("status")
            if status == "committed":
                self.committed[answer["tx_id"]] = answer["height"]
                self.commit_times.append(time.monotonic())
                raw = None
            elif status == "rejected":
                self.rejected[answer["tx_id"]] = answer["code"]
                raw = None
            # pending or overloaded: the same envelope again, possibly elsewhere

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]

    async def stop(self) -> None:
        """Lets every client finish the request it is in (so nothing it sent can still
        arrive at a gateway afterwards), then ends them."""
        self._stop.set()
        _, late = await asyncio.wait(self._tasks, timeout=self.wait_s + 10)
        for task in late:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, asyncio.CancelledError)]
        assert not errors, errors

    def _raise_failures(self) -> None:
        """A client that died of an unexpected answer fails the test at once."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    async def wait_committed(self, count: int, timeout_s: float = 30.0) -> None:
        async def enough():
            self._raise_failures()
            return len(self.committed) >= count
        await self.net.wait_for(f"{count} transactions committed (have "
                                f"{len(self.committed)})", enough, timeout_s)


def signed_batch(net: Network, count: int) -> list[bytes]:
    load = Load(net, 0)
    return [load.envelope() for _ in range(count)]


# ---- for the peer port attack tests (test_peer_port_attacks.py) ------------------------

def start_with_descriptor_limit(net: Network, name: str, descriptors: int) -> None:
    """`Network.start`, with the validator's soft limit of open files set (RLIMIT_NOFILE),
    as on a machine left at the usual default of 1,024."""
    import resource

    def limit() -> None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(descriptors, hard), hard))

    assert name not in net.processes or net.processes[name].poll() is not None, \
        f"{name} is already running"
    log = open(net.root / f"{name}.log", "ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "node", "run", str(net.root / name)],
            cwd=REPO, stdout=log, stderr=log, start_new_session=True, preexec_fn=limit)
    finally:
        log.close()
    net.processes[name] = process
    net._all_started.append(process)


def open_descriptors(net: Network, name: str) -> int:
    """How many files the validator's process holds open now (Linux)."""
    return len(os.listdir(f"/proc/{net.processes[name].pid}/fd"))


def cpu_seconds(net: Network, name: str) -> float:
    """User and system CPU time the validator's process has used (Linux)."""
    fields = Path(f"/proc/{net.processes[name].pid}/stat").read_text().rsplit(")", 1)[1]
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
