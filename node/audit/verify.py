"""The door's work on a log, spread over every core: chunks of items go to a pool of
processes. An item is either an envelope (bytes), answered with its decoded transaction
`(tx_id, signer, kind, args)` or the door's refusal `(code, reason)` (docs/protocol.md,
the door's checks in order: malformed, wrong_chain, bad_signature), or a certificate's
`(key, message, signature)`, answered True or False.

Decoding and signatures are independent from one envelope to the next and are most of the
CPU time of an audit; re-execution, which is sequential, stays in order in the main
process. With one job (or where processes cannot be started) the same function runs in
this process, with the same answers.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from nacl import bindings
from nacl.exceptions import BadSignatureError

from node.envelope import Refused, open_envelope

CHUNK = 1024             # signatures per task: large enough that pickling is cheap
MAX_IN_FLIGHT = 64       # chunks submitted and not yet collected



def check_items(chain: str, items: list) -> list:
    """One answer per item, in order (see the module's docstring)."""
    check = bindings.crypto_sign_open
    answers = []
    for item in items:
        if type(item) is bytes:
            try:
                tx = open_envelope(item, chain).tx
            except Refused as refused:
                answers.append((refused.code, refused.reason))
            else:
                answers.append((tx.tx_id, tx.signer, tx.kind, tx.args))
            continue
        key, message, signature = item
        try:
            check(signature + message, key)
        except (BadSignatureError, ValueError):
            answers.append(False)
        else:
            answers.append(len(key) == 32 and len(signature) == 64)
    return answers


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


class Verifier:
    """Submit chunks, get futures of their answers. Close it when done."""

    def __init__(self, jobs: int | None = None):
        self.jobs = default_jobs() if jobs is None else max(1, jobs)
        self.checked = 0
        self._pool: ProcessPoolExecutor | None = None
        if self.jobs > 1:
            try:
                # fork: the workers need only this module, which is already imported
                self._pool = ProcessPoolExecutor(self.jobs,
                                                 mp_context=multiprocessing.get_context("fork"))
                self._pool.submit(check_items, "", []).result()
            except (OSError, ValueError, RuntimeError):
                self._pool = None
                self.jobs = 1

    def submit(self, chain: str, items: list) -> Future:
        assert len(items) <= 16 * CHUNK
        self.checked += len(items)
        if self._pool is not None:
            return self._pool.submit(check_items, chain, items)
        future: Future = Future()
        future.set_result(check_items(chain, items))
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
