"""`stadsmunt bench`: a local network under signed load, and what it achieves.

It starts N validators in a temporary folder, funds citizens through approved claims,
pre-signs one-cent coin.spend envelopes (signing is not measured), and runs two phases
from a separate load process (bench/load.py) through every gateway:
1. burst: everything at once in batches of 1,000: committed transactions per second,
   CPU time per transaction (all validator processes, from /proc), resident memory;
2. rate: a fixed offered rate: commit latency from submission to the event on the
   stream, p50/p95/p99.
Then peak memory (VmHWM) and bytes on disk per transaction of each validator, and the
bound this machine puts on throughput: every validator checks every signature, so at
best cores x verify rate / validators transactions a second.

With --reconfigure, half way through the burst the stewards enact a change of validator
set, and the bench reports the committed rate second by second around the switch
(bench/reconfigure.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgpack

from bench import proc
from bench.reconfigure import Reconfiguration, figures as reconfiguration_figures, \
    text as reconfiguration_text
from bench.funding import SetupFailed, citizens_for, fund, presign
from client import Client
from node.keys import read_key_file
import ops.network as net
from ops.errors import CheckFailed, UsageError
from ops.network import wait_ready

BURST_GUESS_TPS = 4_000     # spends signed per second of a timed burst (the most we
                            # expect; a burst that runs out early just ends early)
RECONFIGURE_EXTRA_S = 30    # --reconfigure: the switch comes 65-80 blocks after the
                            # enactment, which takes seconds under load: the spends a
                            # timed burst may need beyond --duration
POLL_S = 0.2                # how often the bench reads the commit counter
STALL_S = 60.0              # no commit for this long: the run has failed
OK_LINE = 'stadsmunt_transactions_total{result="ok"}'
REJECTED_LINE = 'stadsmunt_transactions_total{result="rejected"}'
HEIGHT_LINE = "stadsmunt_height"
SET_SINCE_LINE = "stadsmunt_validator_set_since"


class Progress:
    """A bar on a terminal; nothing otherwise (and nothing with --json)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def show(self, label: str, done: float, total: float, extra: str = "") -> None:
        if not self.enabled:
            return
        share = min(1.0, done / total) if total else 1.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{label:<8} [{bar:<30}] {share * 100:5.1f}% {extra:<30}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


async def _metrics(session: aiohttp.ClientSession, gateway: str,
                   names=(OK_LINE, REJECTED_LINE)) -> dict[str, int]:
    async with session.get(f"{gateway}/metrics") as response:
        text = await response.text()
    found = {}
    for line in text.splitlines():
        for name in names:
            if line.startswith(name + " "):
                found[name] = int(float(line.split()[1]))
    return found


async def _committed(session: aiohttp.ClientSession, gateway: str) -> tuple[int, int]:
    """(ok, rejected) transactions executed since the validator started."""
    found = await _metrics(session, gateway)
    return found[OK_LINE], found[REJECTED_LINE]


async def _committed_and_set(session: aiohttp.ClientSession,
                             gateway: str) -> tuple[int, int, int]:
    """(ok + rejected executed since the validator started, height, first height of the
    validator set in force)."""
    found = await _metrics(session, gateway, (OK_LINE, REJECTED_LINE, HEIGHT_LINE,
                                              SET_SINCE_LINE))
    return found[OK_LINE] + found[REJECTED_LINE], found[HEIGHT_LINE], found[SET_SINCE_LINE]


async def _quiet(clients: list[Client], timeout_s: float = 120.0) -> int:
    """Waits until every validator is at one head with nothing pending; the height."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [await c.status() for c in clients]
        heads = {(s["height"], s["head"]) for s in statuses}
        if len(heads) == 1 and not any(s["pending"] for s in statuses):
            return statuses[0]["height"]
        if time.monotonic() > deadline:
            raise CheckFailed(f"the validators did not settle: {sorted(heads)}")
        await asyncio.sleep(POLL_S)


async def _loader(spec_path: Path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", str(spec_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        limit=1 << 28)      # the rate phase answers with every latency on one line
    line = await process.stdout.readline()
    if line.strip() != b"ready":
        await process.wait()
        raise CheckFailed(f"the load generator did not start: {line[:300]!r}")
    return process


async def _finish(process) -> dict:
    line = await process.stdout.readline()
    await process.wait()
    result = json.loads(line or b'{"error": "no answer"}')
    if "error" in result:
        raise CheckFailed(f"the load generator failed: {result['error']}")
    return result


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(share * len(values)))]


async def _burst(work: Path, gateways, pids, envelopes, timed: bool, duration: float,
                 progress: Progress, reconf: Reconfiguration | None = None) -> dict:
    (work / "burst.msgpack").write_bytes(msgpack.packb(envelopes))
    spec = {"mode": "burst", "gateways": gateways, "envelopes": str(work / "burst.msgpack")}
    (work / "burst.json").write_text(json.dumps(spec))
    total = len(envelopes)
    async with aiohttp.ClientSession() as session:
        process = await _loader(work / "burst.json")
        base = await _committed(session, gateways[0])
        cpu0 = sum(proc.cpu_seconds(p) for p in pids)
        started = last_change = time.monotonic()
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        done, samples = 0, []
        polls = [(0.0, 0, 0, 1)]    # --reconfigure: (s, committed, height, set since)
        while done < total:
            await asyncio.sleep(POLL_S)
            now = time.monotonic()
            if reconf is None:
                ok, rejected = await _committed(session, gateways[0])
                count = ok + rejected - sum(base)
            else:
                executed, height, since = await _committed_and_set(session, gateways[0])
                count = executed - sum(base)
                # the moment of the answer: /metrics asks the validator, which may be busy
                polls.append((time.monotonic() - started, count, height, since))
                try:
                    reconf.check()
                except Exception:
                    process.kill()
                    raise
                if reconf.task is None and (count >= total / 2 if not timed
                                            else now - started >= duration / 2):
                    reconf.start(started)
                if reconf.switch_s is None and reconf.from_height is not None and \
                        since >= reconf.from_height:
                    reconf.switched(polls[-1][0])
            if count != done:
                done, last_change = count, now
            if not samples or now - samples[-1][0] - started >= 1.0:
                samples.append((now - started, done, [proc.resident_bytes(p) for p in pids]))
            progress.show("burst", done, total, f"{done / (now - started):,.0f} tx/s")
            if timed and now - started >= duration and (
                    reconf is None or reconf.timed_burst_over(now - started, duration)):
                break
            if now - last_change > STALL_S:
                process.kill()
                raise CheckFailed(f"no commit for {STALL_S:g} s at {done} of {total}")
        elapsed = time.monotonic() - started
        cpu = sum(proc.cpu_seconds(p) for p in pids) - cpu0
        samples.append((elapsed, done, [proc.resident_bytes(p) for p in pids]))
        ok, rejected = await _committed(session, gateways[0])
        if timed and done < total:
            process.kill()
            load = {"submitted": None}
            await process.wait()
        else:
            load = await _finish(process)
    progress.end()
    figures = {"txs": total, "committed": done, "rejected": rejected - base[1],
               "seconds": elapsed, "tps": done / elapsed, "cpu_ms_per_tx": 1000 * cpu / done,
               "overloaded_answers": load.get("overloaded"), "rss_samples": samples}
    if reconf is not None:
        figures["reconfigure_polls"] = polls
    return figures


async def _rate(work: Path, gateways, pids, envelopes, offered: float, after: int,
                admin_seed: str, progress: Progress) -> dict:
    (work / "rate.msgpack").write_bytes(msgpack.packb(envelopes))
    spec = {"mode": "rate", "gateways": gateways, "envelopes": str(work / "rate.msgpack"),
            "rate": offered, "after": after, "admin_seed": admin_seed}
    (work / "rate.json").write_text(json.dumps(spec))
    process = await _loader(work / "rate.json")
    cpu0 = sum(proc.cpu_seconds(p) for p in pids)
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    expected = len(envelopes) / offered
    finishing = asyncio.create_task(_finish(process))
    started = time.monotonic()
    while not finishing.done():
        await asyncio.wait([finishing], timeout=POLL_S)
        progress.show("latency", time.monotonic() - started, expected,
                      f"{offered:,.0f} tx/s offered")
    load = finishing.result()
    cpu = sum(proc.cpu_seconds(p) for p in pids) - cpu0
    progress.end()
    lat = load["latencies"]
    ms = (lambda v: None if v is None else round(1000 * v, 1))
    return {"offered_tps": offered, "txs": len(envelopes), "seen": load["seen"],
            "overloaded_answers": load["overloaded"], "refused": load["refused"],
            "p50_ms": ms(_percentile(lat, 0.50)), "p95_ms": ms(_percentile(lat, 0.95)),
            "p99_ms": ms(_percentile(lat, 0.99)), "max_ms": ms(lat[-1] if lat else None),
            "cpu_ms_per_tx": 1000 * cpu / max(1, load["seen"])}


async def _session(args, folder: Path, network: dict, processes, progress: Progress) -> dict:
    gateways = [v["gateway"] for v in network["validators"]]
    names = [v["name"] for v in network["validators"]]
    pids = [p.pid for p in processes]
    await wait_ready(dict(zip(names, gateways)), processes, folder)
    admin = read_key_file(folder / "keys" / "admin.key")
    clients = [Client(g, admin, timeout_s=60.0) for g in gateways]
    reconf = Reconfiguration(folder, gateways) if args.reconfigure else None
    try:
        timed = args.txs is None
        burst_count = args.txs if not timed else \
            int((args.duration + RECONFIGURE_EXTRA_S * args.reconfigure) * BURST_GUESS_TPS)
        rate_count = max(1, int(args.rate * args.duration))
        funded = await fund(clients[0], citizens_for(burst_count + rate_count))
        loop = asyncio.get_running_loop()
        burst_envs = await loop.run_in_executor(None, presign, funded, 0, burst_count)
        rate_envs = await loop.run_in_executor(None, presign, funded, burst_count,
                                               rate_count)
        await _quiet(clients)
        disk0 = [proc.disk_bytes(folder / n / "data") for n in names]
        work = folder / "load"
        work.mkdir()
        burst = await _burst(work, gateways, pids, burst_envs, timed, args.duration,
                             progress, reconf)
        del burst_envs
        if reconf is not None:
            await reconf.settle()
            polls = burst.pop("reconfigure_polls")
            reconfigured = reconfiguration_figures(reconf, polls, burst["seconds"])
        await _quiet(clients, timeout_s=600.0)
        after = (await clients[0].stats())["position"]
        rate = await _rate(work, gateways, pids, rate_envs, args.rate, after,
                           admin.seed.hex(), progress)
        await _quiet(clients)
        view_at_end = (await clients[0].status())["view"]
        shutil.rmtree(work)
        committed = burst["committed"] + rate["seen"]
        disk = [proc.disk_bytes(folder / n / "data") - d0 for n, d0 in zip(names, disk0)]
        peaks = [proc.peak_memory_bytes(p) for p in pids]
    finally:
        for client in clients:
            await client.close()
        if reconf is not None:
            await reconf.close()
    extra = {"reconfigure": reconfigured} if reconf is not None else {}
    return {**extra, "burst": burst, "rate": rate, "committed_total": committed,
            "view_at_end": view_at_end,
            "disk_bytes_per_tx": [round(d / max(1, committed), 1) for d in disk],
            "peak_memory_mb": [round(p / 2**20, 1) for p in peaks]}


def report(result: dict) -> dict:
    """The flat figures the issue asks for, beside the details."""
    burst, rate = result["burst"], result["rate"]
    samples = burst.pop("rss_samples")
    # memory after warm-up: resident size of each validator at a quarter of the burst
    # and at its end; flat means the second is not much above the first. The heap
    # (RssAnon) is given at every tenth of the committed transactions as well: the
    # resident size also counts LMDB's mapped file pages (proc.resident_bytes)
    quarter = samples[len(samples) // 4] if samples else None
    tenths = []
    for tenth in range(1, 10):
        due = [s for s in samples if s[1] >= tenth * burst["committed"] / 10]
        if due:
            tenths.append(round(max(anon for _, anon in due[0][2]) / 2**20, 1))
    if samples:     # the last tenth: the end of the burst
        tenths.append(round(max(anon for _, anon in samples[-1][2]) / 2**20, 1))
    bound = result["cores"] * result["verify_per_s"] / result["validators"]
    extra = {"reconfigure": result["reconfigure"]} if "reconfigure" in result else {}
    return {
        **extra,
        "validators": result["validators"], "cores": result["cores"],
        "load_average": result["load_average"],
        "committed_tps": round(burst["tps"], 1),
        "latency_p50_ms": rate["p50_ms"], "latency_p95_ms": rate["p95_ms"],
        "latency_p99_ms": rate["p99_ms"], "offered_tps": rate["offered_tps"],
        "cpu_ms_per_tx": round(burst["cpu_ms_per_tx"], 3),
        "peak_memory_mb": max(result["peak_memory_mb"]),
        "disk_bytes_per_tx": max(result["disk_bytes_per_tx"]),
        "verify_per_s": round(result["verify_per_s"]),
        "verify_per_s_range": result["verify_per_s_range"],
        "view_at_end": result["view_at_end"],
        "bound_tps": round(bound, 1),
        "ratio_to_bound": round(burst["tps"] / bound, 3),
        "per_validator": {"peak_memory_mb": result["peak_memory_mb"],
                          "disk_bytes_per_tx": result["disk_bytes_per_tx"],
                          "rss_mb_at_quarter": None if quarter is None else
                          [round(r / 2**20, 1) for r, _ in quarter[2]],
                          "rss_mb_at_end": [round(r / 2**20, 1) for r, _ in samples[-1][2]]
                          if samples else None,
                          "heap_mb_at_end": [round(a / 2**20, 1) for _, a in samples[-1][2]]
                          if samples else None},
        "heap_mb_by_tenth": tenths,
        "burst": {k: (round(v, 3) if type(v) is float else v) for k, v in burst.items()},
        "rate": rate,
    }


def text(r: dict) -> str:
    return "\n".join([
        f"stadsmunt bench: {r['validators']} validators on {r['cores']} cores "
        f"(load average before the run {r['load_average']})",
        f"  committed       {r['committed_tps']:,.0f} tx/s "
        f"({r['burst']['committed']:,} in {r['burst']['seconds']:.1f} s)",
        f"  latency         p50 {r['latency_p50_ms']} ms, p95 {r['latency_p95_ms']} ms, "
        f"p99 {r['latency_p99_ms']} ms at {r['offered_tps']:,.0f} tx/s offered "
        f"({r['rate']['seen']:,} of {r['rate']['txs']:,} seen)",
        f"  cpu             {r['cpu_ms_per_tx']:.3f} ms per transaction, all validators",
        f"  memory          {r['peak_memory_mb']} MiB peak (VmHWM) of the largest validator; "
        f"heap (RssAnon) of the largest at each tenth of the burst: "
        f"{' '.join(str(m) for m in r['heap_mb_by_tenth'])} MiB",
        f"  disk            {r['disk_bytes_per_tx']:.0f} bytes per transaction per validator",
        f"  view changes    the network ended in view {r['view_at_end']} (0: none)",
        f"  verify bound    {r['verify_per_s']:,} Ed25519 checks/s per core (median of "
        f"20 samples, {r['verify_per_s_range'][0]:,}-{r['verify_per_s_range'][1]:,}) x "
        f"{r['cores']} cores / {r['validators']} validators = {r['bound_tps']:,.0f} tx/s; "
        f"measured/bound {r['ratio_to_bound']:.2f}",
        *(reconfiguration_text(r["reconfigure"]) if "reconfigure" in r else [])])


def run_bench(args: argparse.Namespace) -> int:
    if args.validators != 1 and args.validators < 4:
        raise UsageError("--validators is 1 or at least 4")
    if args.duration <= 0 or args.rate <= 0 or (args.txs is not None and args.txs < 1):
        raise UsageError("--duration, --rate and --txs must be positive")
    if args.reconfigure and args.validators == 1:
        raise UsageError("--reconfigure needs 4 validators or more: one validator in "
                         "reverse order is the same set")
    load_average = round(os.getloadavg()[0], 2)
    # the verify rate swings with the machine's other load: sampled before the network
    # starts and after it stops, in chunks, and the bound taken from their median
    verify_rates = proc.verify_rates()
    root = Path(tempfile.mkdtemp(prefix="stadsmunt-bench-"))
    folder = root / "net"
    network = net.init(folder, args.validators, chain="heerlen-bench",
                       base_port=net.free_base_port(2 * args.validators))
    processes = net.start_all(folder, network, log_dir=root)
    progress = Progress(not args.json and sys.stderr.isatty())
    failed = True
    try:
        result = asyncio.run(_session(args, folder, network, processes, progress))
        failed = False
    except SetupFailed as error:
        raise CheckFailed(f"funding the load failed: {error}") from None
    finally:
        net.stop_all(processes)
        verify_rates += proc.verify_rates()
        if failed or args.keep:
            print(f"stadsmunt bench: the network's folder and logs are kept in {root}",
                  file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result.update(validators=args.validators, cores=proc.cores(),
                  verify_per_s=statistics.median(verify_rates),
                  verify_per_s_range=[round(min(verify_rates)), round(max(verify_rates))],
                  load_average=load_average)
    figures = report(result)
    print(json.dumps(figures) if args.json else text(figures))
    return 0


def register(commands) -> None:
    bench = commands.add_parser("bench", help="start a local network, drive signed load "
                                              "through it and report what it achieves",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="example:\n"
                                          "  stadsmunt bench --txs 15000 --duration 15 --json\n"
                                          "  stadsmunt bench --validators 7 --txs 8000 "
                                          "--duration 10\n"
                                          "  stadsmunt bench --reconfigure --duration 30")
    bench.add_argument("--validators", type=int, default=4,
                       help="validators of the network: 1, or 4 and more (default 4)")
    bench.add_argument("--duration", type=float, default=20.0,
                       help="seconds of each phase (the burst's only without --txs)")
    bench.add_argument("--rate", type=float, default=500.0,
                       help="offered transactions per second of the latency phase")
    bench.add_argument("--txs", type=int, default=None,
                       help="transactions of the burst (default: as many as commit in "
                            "--duration)")
    bench.add_argument("--json", action="store_true", help="one JSON object")
    bench.add_argument("--keep", action="store_true",
                       help="keep the network's folder and logs (for a profile)")
    bench.add_argument("--reconfigure", action="store_true",
                       help="half way through the burst (half of --duration, or of "
                            "--txs), enact through governance a validators.set of the "
                            "same validators in reverse order and report the committed "
                            "tx/s second by second around the switch, which comes 65 to "
                            "80 blocks after the enactment: without --txs the burst goes "
                            "on until it has run as long after the switch as it did "
                            "before the governance (4 validators or more)")
    bench.set_defaults(run=run_bench)
