"""Ed25519 checks spread over every core: chunks of (key, message, signature) go to a pool
of processes, which answer with the positions in the chunk that do not verify.

The auditor's other work (decoding, re-execution) stays in order in the main process;
only the signature checks, which are independent of each other and the bulk of the CPU
time, run elsewhere. With one job (or where processes cannot be started) the checks run
in this process, with the same answers.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from nacl import bindings
from nacl.exceptions import BadSignatureError

CHUNK = 1024             # signatures per task: large enough that pickling is cheap
MAX_IN_FLIGHT = 64       # chunks submitted and not yet collected

Item = tuple[bytes, bytes, bytes]      # (public key, message, signature)


def bad_positions(items: list[Item]) -> list[int]:
    """Positions of the items whose signature does not verify (raw libsodium binding)."""
    check = bindings.crypto_sign_open
    bad = []
    for position, (key, message, signature) in enumerate(items):
        if len(key) != 32 or len(signature) != 64:
            bad.append(position)
            continue
        try:
            check(signature + message, key)
        except (BadSignatureError, ValueError):
            bad.append(position)
    return bad


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


class Verifier:
    """Submit chunks, get futures of their bad positions. Close it when done."""

    def __init__(self, jobs: int | None = None):
        self.jobs = default_jobs() if jobs is None else max(1, jobs)
        self.checked = 0
        self._pool: ProcessPoolExecutor | None = None
        if self.jobs > 1:
            try:
                # fork: the workers need only this module, which is already imported
                self._pool = ProcessPoolExecutor(self.jobs,
                                                 mp_context=multiprocessing.get_context("fork"))
                self._pool.submit(bad_positions, []).result()
            except (OSError, ValueError, RuntimeError):
                self._pool = None
                self.jobs = 1

    def submit(self, items: list[Item]) -> Future:
        assert len(items) <= 16 * CHUNK
        self.checked += len(items)
        if self._pool is not None:
            return self._pool.submit(bad_positions, items)
        future: Future = Future()
        future.set_result(bad_positions(items))
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
