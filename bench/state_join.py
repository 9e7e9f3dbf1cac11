"""How long a new validator takes to join by state sync, against replaying every block,
beside the machine's bare Ed25519 verify rate measured in the same run.

The chain is built once, as bench/audit_replay.py builds its log (200 citizens earn
coins through a task, then spend them in blocks of --batch coin.spend transactions,
each block certified and a checkpoint every 64 blocks), with as many spend blocks as
make its head a checkpoint height: 4 setup blocks + spend blocks a multiple of 64, the
nearest to --txs / --batch that the citizens' coins allow (the count actually built is
printed). Then each part runs in a fresh process of its own, so that its peak memory
(VmHWM, below) is its own:

a) join by state sync: a snapshot of the source at its head (node/snapshots.py), its
   manifest (every chunk hashed: the serving validator's work), the manifest decoded,
   every chunk read and handed to a Loader (node/stateload.py) into a fresh store (made
   from genesis), finish; wall time, CPU time, peak memory, entries, chunks, bytes;
b) the history afterwards (node/history.py): history.serve from the source and
   history.apply into the synced store down to block 1, then reindex_step to the end;
c) full replay: open_ledger on a fresh folder and node.executor.replay(source, target):
   every envelope opened (signature checked) and every block executed again.

Both validators' sides run in one process and nothing crosses a network: the transfer
of the chunks and of the history is NOT included. The replay does not check commit
certificates, which a real joiner would (3 more signatures a block): it is a lower
bound for a replay. The sync leaves out what a joiner checks of the validator sets
(node/setproof.py and the set check in finish): a few signatures for this chain.

    python -m bench.state_join [--txs 1000000] [--batch 1000] [--jobs N] [--log DIR] [--json]

Peak memory is the part's VmHWM (/proc): the most resident memory its process had.
getrusage's ru_maxrss is given too (`ru_maxrss_mb`) but is not the part's own: Linux
carries the high-water mark of the process that exec'd over into the new program, so a
child starts at its parent's peak (the bench's own process: the chain is built in a
process of its own as well, so that this is a bare interpreter's). Both count the pages
of LMDB's memory-mapped files the process touched, which the operating system may take
back, as well as the heap: `rss_start_mb` is VmHWM right before the part's work (the
interpreter and its imports), `heap_end_mb` the anonymous resident memory (RssAnon) at
its end, and `anon_peak_mb` the most RssAnon sampled every 10 ms while it ran: the
memory the part itself needs (the heap, and LMDB's dirty pages of a write transaction).

`--log DIR` keeps the built chain in DIR and reuses it on the next run (with whatever
--txs it was built for).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import proc
from bench.audit_replay import CITIZENS, REWARD, build
from node.audit.verify import default_jobs

SETUP_BLOCKS = 4            # register, claim, submit, approve (bench/audit_replay.py)
SETUP_TXS = 1 + CITIZENS + 1 + 3 * CITIZENS
PARTS = ("build", "sync", "history", "replay")


def spend_blocks(txs: int, batch: int, interval: int = 64) -> int:
    """Spend blocks of `batch` nearest to txs / batch that make the head a checkpoint
    height (SETUP_BLOCKS + blocks a multiple of `interval`), at least one interval's
    worth and at most what the citizens' coins pay for (then the multiple below)."""
    most = CITIZENS * REWARD // batch
    wanted = max(1, math.ceil(txs / batch))
    total = max(1, math.floor((SETUP_BLOCKS + wanted) / interval + 0.5)) * interval
    while total - SETUP_BLOCKS > most and total > interval:
        total -= interval
    if total - SETUP_BLOCKS > most:
        raise ValueError(f"{total - SETUP_BLOCKS} blocks of {batch} spends need more "
                         f"than the citizens' {CITIZENS * REWARD}: a smaller --batch")
    return total - SETUP_BLOCKS


# ---- the parts, each in a process of its own ---------------------------------------------


def _peak_mb() -> float:
    """VmHWM: the most resident memory this process has had since it started."""
    return round(proc.peak_memory_bytes(os.getpid()) / 2**20, 1)


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)   # KiB


def _heap_mb() -> float:
    return round(proc.resident_bytes(os.getpid())[1] / 2**20, 1)


class AnonPeak:
    """The most anonymous resident memory (RssAnon: the heap and LMDB's dirty pages of a
    write transaction, not the pages of its mapped file, which the kernel may take back)
    seen while a part runs, sampled every SAMPLE_S by a thread: `start`, then `stop`
    gives MiB."""
    SAMPLE_S = 0.01

    def start(self) -> "AnonPeak":
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.SAMPLE_S):
            self.peak = max(self.peak, proc.resident_bytes(os.getpid())[1])

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc.resident_bytes(os.getpid())[1])
        return round(self.peak / 2**20, 1)


def _genesis(store):
    from node.genesis import from_map
    from protocol import codec
    return from_map(codec.unpack(store.genesis_bytes(), 1 << 20))


def _head(store) -> list:
    height, block_hash = store.head()
    return [height, block_hash.hex()]


def part_sync(source_path: str, target_path: str) -> dict:
    from consensus.digest import ZERO_HASH
    from node import sets
    from node.envelope import Door
    from node.executor import open_ledger
    from node.snapshots import Manifest, Snapshot
    from node.stateload import Loader
    from node.statesync import MAX_MANIFEST_BYTES
    from node.store import Store

    source = Store(source_path)
    genesis = _genesis(source)
    # the joiner's store as `node init` leaves it: genesis only
    target = open_ledger(target_path, genesis, Door(genesis.chain)).store
    height = source.head()[0]
    in_force = sets.in_force(genesis, source, height + 1)
    base_height = in_force.first_height - 1
    base_hash = source.block(base_height).hash if base_height else ZERO_HASH
    checkpoint = source.checkpoint(height)
    assert checkpoint is not None, f"no checkpoint kept at the head {height}"
    rss_start = _peak_mb()

    anon = AnonPeak().start()
    cpu, started = time.process_time(), time.perf_counter()
    snapshot = Snapshot(source, height, base_hash)
    raw_manifest = asyncio.run(snapshot.manifest()).encode()      # the server's side
    manifest_s = time.perf_counter() - started
    manifest = Manifest.decode(raw_manifest, MAX_MANIFEST_BYTES)  # the joiner's side
    loader = Loader(target, manifest, checkpoint, [], base_height)
    loader.begin()
    read_s = load_s = 0.0
    chunk_bytes = 0
    for index in range(len(manifest.chunks)):
        t0 = time.perf_counter()
        raw = snapshot.chunk(index)
        t1 = time.perf_counter()
        loader.add(index, raw)
        read_s += t1 - t0
        load_s += time.perf_counter() - t1
        chunk_bytes += len(raw)
    t0 = time.perf_counter()
    loader.finish()
    finish_s = time.perf_counter() - t0
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    snapshot.close()
    figures = {"seconds": seconds, "cpu_seconds": cpu, "manifest_seconds": manifest_s,
               "chunk_read_seconds": read_s, "load_seconds": load_s,
               "finish_seconds": finish_s, "entries": loader.entries,
               "chunks": len(manifest.chunks), "chunk_bytes": chunk_bytes,
               "manifest_bytes": len(raw_manifest),
               "peak_rss_mb": _peak_mb(), "anon_peak_mb": anon.stop(),
               "ru_maxrss_mb": _maxrss_mb(),
               "rss_start_mb": rss_start,
               "heap_end_mb": _heap_mb(),
               "source_head": _head(source), "synced_head": _head(target),
               "state_acc_equal": target.state_acc() == source.state_acc()}
    target.close()
    source.close()
    figures["disk_mb"] = round(proc.disk_bytes(Path(target_path)) / 2**20, 1)
    return figures


def part_history(source_path: str, target_path: str) -> dict:
    from node import history
    from node.config import FETCH_ANSWER_FRAME_DIVISOR, Limits
    from node.store import Store

    answer_bytes = Limits().max_frame_bytes // FETCH_ANSWER_FRAME_DIVISOR   # a validator's
    source, target = Store(source_path), Store(target_path)
    rss_start = _peak_mb()
    anon = AnonPeak().start()
    cpu, started = time.process_time(), time.perf_counter()
    serve_s = apply_s = 0.0
    answers = blocks = 0
    while (stretch := history.ask(target)) is not None:
        t0 = time.perf_counter()
        items = history.serve(source, stretch[0], stretch[1], answer_bytes)
        t1 = time.perf_counter()
        written = history.apply(target, [(raw, results) for raw, results in items])
        serve_s += t1 - t0
        apply_s += time.perf_counter() - t1
        answers += 1
        blocks += written
        assert written, f"no block of {stretch} written"
    fetched = time.perf_counter()
    while history.reindex_step(target):
        pass
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    figures = {"seconds": seconds, "cpu_seconds": cpu, "serve_seconds": serve_s,
               "apply_seconds": apply_s, "reindex_seconds": time.perf_counter() - fetched,
               "answers": answers, "blocks": blocks,
               "complete": history.status(target)["complete"],
               "peak_rss_mb": _peak_mb(), "anon_peak_mb": anon.stop(),
               "ru_maxrss_mb": _maxrss_mb(),
               "rss_start_mb": rss_start,
               "heap_end_mb": _heap_mb(), "synced_head": _head(target)}
    target.close()
    source.close()
    figures["disk_mb"] = round(proc.disk_bytes(Path(target_path)) / 2**20, 1)
    return figures


def part_replay(source_path: str, target_path: str) -> dict:
    from node.envelope import Door
    from node.executor import open_ledger, replay
    from node.store import Store

    source = Store(source_path)
    genesis = _genesis(source)
    rss_start = _peak_mb()
    anon = AnonPeak().start()
    cpu, started = time.process_time(), time.perf_counter()
    # a fresh folder: made from genesis inside the timing, as a replaying joiner's is
    target = open_ledger(target_path, genesis, Door(genesis.chain))
    replay(source, target)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    figures = {"seconds": seconds, "cpu_seconds": cpu,
               "peak_rss_mb": _peak_mb(), "anon_peak_mb": anon.stop(),
               "ru_maxrss_mb": _maxrss_mb(),
               "rss_start_mb": rss_start,
               "heap_end_mb": _heap_mb(),
               "source_head": _head(source), "replayed_head": _head(target.store)}
    target.store.close()
    source.close()
    figures["disk_mb"] = round(proc.disk_bytes(Path(target_path)) / 2**20, 1)
    return figures


def part_build(path: str, txs: int, batch: int, jobs: int) -> dict:
    build(path, txs, batch, jobs)
    return {}


def _in_process(part: str, source: str, target: str, *more: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.state_join", "--part", part,
                           "--source", source, "--target", target, *more],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"part {part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the run -----------------------------------------------------------------------------


def _chain_of(path: str) -> tuple[int, int]:
    """(head height, transactions) of a built chain."""
    from node.store import Store
    store = Store(path)
    try:
        with store.env.begin() as txn:
            transactions = txn.stat(store.db["txids"])["entries"]
        return store.head()[0], transactions
    finally:
        store.close()


def run(txs: int, batch: int, jobs: int, log: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="stadsmunt-state-join-") as scratch:
        source = log or str(Path(scratch, "source"))
        started = time.perf_counter()
        reused = Path(source, "data.mdb").is_file()
        if not reused:      # in a process of its own too: see the module's text
            blocks = spend_blocks(txs, batch)
            _in_process("build", "", source, "--txs", str(blocks * batch),
                        "--batch", str(batch), "--jobs", str(jobs))
        built = time.perf_counter() - started
        height, transactions = _chain_of(source)
        if height % 64:
            raise SystemExit(f"{source} holds a chain whose head {height} is not a "
                             "checkpoint height (a multiple of 64): build it with this bench")
        rate = proc.best_verify_rate()
        sync = _in_process("sync", source, str(Path(scratch, "synced")))
        history = _in_process("history", source, str(Path(scratch, "synced")))
        replayed = _in_process("replay", source, str(Path(scratch, "replayed")))
        rate = max(rate, proc.best_verify_rate())
    r2 = (lambda v: round(v, 2))
    joined = sync["seconds"] + history["seconds"]
    return {
        "transactions": transactions, "spend_transactions": transactions - SETUP_TXS,
        "blocks": height, "spend_blocks": height - SETUP_BLOCKS, "reused_log": reused,
        "build_seconds": round(built, 1),
        "ed25519_verify_per_s_one_core": round(rate),
        "sync": {k: (r2(v) if type(v) is float else v) for k, v in sync.items()},
        "history": {k: (r2(v) if type(v) is float else v) for k, v in history.items()},
        "replay": {k: (r2(v) if type(v) is float else v) for k, v in replayed.items()},
        "synced_head_equals_source": sync["synced_head"] == sync["source_head"],
        "replayed_head_equals_source": replayed["replayed_head"] == replayed["source_head"],
        "replay_tx_per_s": round(transactions / replayed["seconds"]),
        "replay_share_of_one_core_verify": round(transactions / replayed["seconds"] / rate, 3),
        "sync_over_replay": round(sync["seconds"] / replayed["seconds"], 4),
        "sync_cpu_over_replay_cpu": round(sync["cpu_seconds"] / replayed["cpu_seconds"], 4),
        "sync_and_history_over_replay": round(joined / replayed["seconds"], 4),
        "network_transfer_included": False,
    }


def text(r: dict) -> str:
    s, h, p = r["sync"], r["history"], r["replay"]
    rows = [("part", "wall s", "CPU s", "peak RSS MiB", "peak anon MiB", "RSS at start",
             "heap at end", "ru_maxrss", "disk MiB")]
    for name, f in (("a) state sync", s), ("b) history after", h), ("c) full replay", p)):
        rows.append((name, f"{f['seconds']:.2f}", f"{f['cpu_seconds']:.2f}",
                     f"{f['peak_rss_mb']}", f"{f['anon_peak_mb']}", f"{f['rss_start_mb']}",
                     f"{f['heap_end_mb']}", f"{f['ru_maxrss_mb']}", f"{f['disk_mb']}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join([
        f"state join: a chain of {r['blocks']:,} blocks ({r['spend_blocks']:,} spend "
        f"blocks, {r['spend_transactions']:,} spends, {r['transactions']:,} transactions "
        f"in all; head {r['blocks']} a checkpoint){' (reused)' if r['reused_log'] else ''}",
        *table,
        f"  a) {s['entries']:,} state entries in {s['chunks']:,} chunks, "
        f"{s['chunk_bytes'] / 2**20:.1f} MiB (manifest {s['manifest_bytes']:,} bytes): "
        f"manifest {s['manifest_seconds']:.2f} s, chunks read {s['chunk_read_seconds']:.2f}"
        f" s (the serving side), loaded {s['load_seconds']:.2f} s, finish "
        f"{s['finish_seconds']:.2f} s; head equals the source's: "
        f"{r['synced_head_equals_source']}",
        f"  b) {h['blocks']:,} blocks in {h['answers']:,} answers: served "
        f"{h['serve_seconds']:.2f} s, applied {h['apply_seconds']:.2f} s, reindexed "
        f"{h['reindex_seconds']:.2f} s; history complete: {h['complete']}",
        f"  c) {r['replay_tx_per_s']:,} tx/s on one core, "
        f"{r['replay_share_of_one_core_verify']:.0%} of one core's "
        f"{r['ed25519_verify_per_s_one_core']:,} bare Ed25519 verifies/s; commit "
        f"certificates not checked: a lower bound for a replay",
        f"  sync / replay: {r['sync_over_replay']:.3f} of the wall time "
        f"({r['sync_cpu_over_replay_cpu']:.3f} of the CPU); with the history "
        f"{r['sync_and_history_over_replay']:.3f}",
        "  the network transfer of chunks and history is not included; peak RSS is each "
        "part's VmHWM and counts LMDB's mapped pages touched (ru_maxrss starts at the "
        "parent's peak)"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=1_000_000,
                        help="spends, rounded to whole blocks with a checkpoint at the head")
    parser.add_argument("--batch", type=int, default=1_000, help="spends per block")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="processes signing the chain's spends when it is built")
    parser.add_argument("--log", help="a folder to build the chain in once and reuse")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        part = {"sync": part_sync, "history": part_history, "replay": part_replay}
        if args.part == "build":
            figures = part_build(args.target, args.txs, args.batch, max(1, args.jobs))
        else:
            figures = part[args.part](args.source, args.target)
        print(json.dumps(figures))
        return 0
    if not 1 <= args.txs <= CITIZENS * REWARD or not 1 <= args.batch <= 1_000:
        parser.error(f"--txs is 1 to {CITIZENS * REWARD}, --batch 1 to 1000")
    try:
        figures = run(args.txs, args.batch, max(1, args.jobs), args.log)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(figures) if args.json else text(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
