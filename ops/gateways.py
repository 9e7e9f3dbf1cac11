"""The gateway processes of one validator (`[gateway] workers` of them): started beside it
by `stadsmunt node run`, restarted when one dies, stopped with it.

Each is `stadsmunt node gateway DIR --worker N --parent PID` (gateway/serve.py), in a
session of its own so that a terminal's Ctrl-C reaches the validator, which then stops
them in order; each dies with the validator if the validator is killed. Their logs go to
the validator's stderr, with `role` gateway-N.

A gateway that dies is logged (`gateway_exited`) and started again after RESTART_MIN_S,
doubling up to RESTART_MAX_S while it keeps dying young; consensus goes on meanwhile, and
the other workers keep serving the port. After a death, the validator's LMDB clears the
reader slot a killed gateway may have left (a stale reader pins pages, the file grows).
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import structlog

from ops.errors import CheckFailed

log = structlog.get_logger("stadsmunt.node")

RESTART_MIN_S, RESTART_MAX_S = 0.5, 30.0
STABLE_S = 30.0             # a gateway that ran this long restarts after the least wait
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
# Gateways run at a lower CPU priority than their validator: when HTTP work (hostile or
# just heavy: decoding and checking 8 MiB of envelopes) competes with consensus for the
# cores, the kernel gives consensus the CPU first. Idle cores still go to the gateways.
GATEWAY_NICE = 5


def _lower_priority() -> None:
    os.nice(GATEWAY_NICE)


class Gateways:
    def __init__(self, folder: Path, workers: int, log_level: str, link, store_env):
        self.folder, self.workers, self.log_level = Path(folder), workers, log_level
        self.link, self.store_env = link, store_env
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()

    def command(self, worker: int) -> list[str]:
        return [sys.executable, "-m", "ops.cli", "node", "gateway", str(self.folder),
                "--worker", str(worker), "--parent", str(os.getpid()),
                "--log-level", self.log_level]

    async def _spawn(self, worker: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.command(worker), stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_lower_priority)
        self.processes[worker] = process
        log.info("gateway_started", worker=worker, pid=process.pid)
        return process

    async def start(self) -> None:
        """Starts every worker and returns when each has linked (it listens by then);
        CheckFailed when one ends first or takes longer than START_TIMEOUT_S."""
        for worker in range(1, self.workers + 1):
            await self._spawn(worker)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        linked: set[int] = set()      # one that dies after it linked is the watcher's
        while True:
            linked |= {w for w, p in self.processes.items()
                       if self.link.hellos.get(w) == p.pid}
            missing = {w: p for w, p in self.processes.items() if w not in linked}
            if not missing:
                break
            for worker, process in missing.items():
                if process.returncode is not None:
                    raise CheckFailed(f"gateway-{worker} ended as it started (exit code "
                                      f"{process.returncode}); its log line says why")
            if loop.time() > deadline:
                raise CheckFailed(f"gateway-{min(missing)} did not start within "
                                  f"{START_TIMEOUT_S:g} s")
            self.link.changed.clear()
            waits = [asyncio.ensure_future(self.link.changed.wait())] + \
                [asyncio.ensure_future(p.wait()) for p in missing.values()]
            await asyncio.wait(waits, timeout=deadline - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        self._tasks = [asyncio.create_task(self._watch(w, p))
                       for w, p in self.processes.items()]

    async def failure(self) -> BaseException:
        """Returns when a supervising task (one per worker) has died, with its exception.
        A gateway process that dies is restarted; the supervisor that restarts it dying
        is a failure of the validator (fail-stop): nothing would start that worker again,
        and with one worker the HTTP API would be gone while consensus ran on."""
        if not self._tasks:             # not started: nothing to supervise
            await asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        task = done.pop()
        if task.cancelled():
            return asyncio.CancelledError("a gateway supervisor was cancelled")
        return task.exception() or RuntimeError("a gateway supervisor ended")

    async def _watch(self, worker: int, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_MIN_S
        started = loop.time()
        while True:
            code = await process.wait()
            if self._stopping.is_set():
                return
            if loop.time() - started >= STABLE_S:
                delay = RESTART_MIN_S
            log.warning("gateway_exited", worker=worker, pid=process.pid, code=code,
                        restart_in_s=delay)
            cleared = self.store_env.reader_check()
            if cleared:
                log.info("stale_readers_cleared", count=cleared)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
            delay = min(RESTART_MAX_S, delay * 2)
            started = loop.time()
            process = await self._spawn(worker)

    async def stop(self) -> None:
        self._stopping.set()
        await self._end()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._end()       # one a watcher started as the stop began

    async def _end(self) -> None:
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        if running:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                               timeout=STOP_GRACE_S)
        for process in running:
            if process.returncode is None:
                log.warning("gateway_killed", pid=process.pid)
                process.kill()
                await process.wait()
