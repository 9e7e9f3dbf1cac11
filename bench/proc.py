"""What the bench reads about the machine and the validator processes: CPU seconds and
peak memory from /proc, bytes the data folders take on disk, and the bare Ed25519 verify
rate that bounds the network (every validator checks every transaction's signature)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from node.keys import Keypair, verify

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and of its live child processes (a
    validator's gateway processes, ops/gateways.py)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the command name: state is field 3, utime 14 and stime 15 (1-based)
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(_cpu_or_zero(child) for child in children(pid))


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:         # it ended meanwhile
        return 0.0


def peak_memory_bytes(pid: int) -> int:
    """VmHWM: the most resident memory the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmHWM for process {pid}")


def resident_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon): all resident memory, and its anonymous part, the heap. The rest
    is file pages, mostly LMDB's memory map of the data file: the operating system's
    page cache, which grows with the ledger read and gives way under pressure, so the
    heap is what says whether a validator's memory is flat."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            found[name] = int(value.split()[0]) * 1024
    if len(found) != 2:
        raise ValueError(f"no VmRSS or RssAnon for process {pid}")
    return found["VmRSS"], found["RssAnon"]


def disk_bytes(folder: Path) -> int:
    """Blocks really allocated (LMDB's map file is sparse: its size says little)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def cores() -> int:
    return len(os.sched_getaffinity(0))


def verify_rates(seconds: float = 1.0, chunks: int = 10) -> list[float]:
    """Signature checks per second on one core, of a message the size of an envelope's
    body, through the same call the door uses: one rate per chunk of `seconds / chunks`,
    so that a caller can take the median of a virtual machine's swings."""
    pair = Keypair.from_seed(bytes(range(32)))
    message = bytes(160)
    signature = pair.sign(message)
    rates = []
    for _ in range(chunks):
        done, started = 0, time.perf_counter()
        while True:
            for _ in range(50):
                assert verify(pair.public, message, signature)
            done += 50
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / chunks:
                rates.append(done / elapsed)
                break
    return rates


def best_verify_rate() -> float:
    """The fastest chunk of `verify_rates`: other processes only ever slow a core down, so
    for one core's own speed (the executor and audit benches) the best is the closest."""
    return max(verify_rates())
