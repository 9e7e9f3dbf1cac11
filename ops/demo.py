"""`stadsmunt demo [--dir DIR] [--keep] [--exit]`: a local four-validator network and the
Heerlen story (ops/demo_story.py), governance by the partners' stewards included, then a
check of the whole network: every validator at one head, the same totals on every
gateway, the supply invariant over every account and the cap invariant for every citizen.
Without `--exit` it keeps serving until Ctrl-C (or SIGTERM) and then stops the validators
cleanly; with `--exit` it prints the summary, writes it to DIR/summary.json and exits 0
(1 if a check failed). The network's folder holds every participant's private key: a
temporary one is removed when the demo stops, unless `--keep` (or the demo failed: its
logs are in it); a `--dir` is kept.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from client import Client, ClientError
from node.keys import read_key_file
from ops import network as net
from ops.network import free_base_port, wait_ready
from ops.client_rows import euros
from ops.demo_story import TOTAL, StoryFailed, play
from ops.errors import CheckFailed

VALIDATORS = 4
# the governance events the summary counts
GOVERNANCE_EVENTS = ("gov.proposed", "gov.approved", "gov.enacted", "gov.failed",
                     "member.recovery_opened", "member.recovery_cancelled",
                     "member.recovered")
CHAIN = "heerlen-demo"
POLL_S = 0.1


def say(text: str) -> None:
    print(text, flush=True)


async def check_network(gateways: dict[str, str], admin, timeout_s: float = 30.0) -> dict:
    """The summary: heads agree, totals agree, supply and caps hold in every account."""
    clients = [Client(url, admin) for url in gateways.values()]
    try:
        deadline = time.monotonic() + timeout_s
        while True:      # the last block may still be executing on a validator or two
            statuses = [await c.status() for c in clients]
            heads = {(s["height"], s.get("head")) for s in statuses}
            if len(heads) == 1 and not any(s.get("pending") for s in statuses):
                break
            if time.monotonic() > deadline:
                raise CheckFailed(f"the validators did not agree on a head: {heads}")
            await asyncio.sleep(POLL_S)
        height, head = heads.pop()
        stats = [await c.stats() for c in clients]
        totals = {(s["minted"], s["redeemed"], s["circulating"]) for s in stats}
        first = clients[0]
        blocks = await first.blocks()
        results = [r for b in blocks for r in b["results"]]
        members = [e["key"] for e in await first.events(kind="member.registered")]
        members += [e["new"] for e in await first.events(kind="member.recovered")]
        kinds = [e["kind"] for r in results for e in r.get("events") or []]
        accounts = [await first.account(k) for k in members]
        minted, redeemed, circulating = stats[0]["minted"], stats[0]["redeemed"], \
            stats[0]["circulating"]
        balances = sum(a["balance"] for a in accounts)
        over_cap = [a["key"] for a in accounts if a["earnings"] and any(
            e["cap"] is not None and e["earned"] > e["cap"]
            for e in (a["earnings"]["month"], a["earnings"]["year"]))]
        return {
            "validators": len(clients), "height": height, "head": head,
            "validators_agree": True, "gateway_totals_agree": len(totals) == 1,
            "blocks": len(blocks), "txs": len(results),
            "committed": sum(r["code"] == "ok" for r in results),
            "rejected": sum(r["code"] != "ok" for r in results),
            "minted": minted, "redeemed": redeemed, "circulating": circulating,
            "accounts": len(accounts), "balances": balances,
            "citizens": sum(a["role"] == "citizen" and a["active"] for a in accounts),
            "governance": {kind: kinds.count(kind) for kind in GOVERNANCE_EVENTS},
            "supply_invariant": balances == minted - redeemed == circulating
            and len(totals) == 1,
            "cap_invariant": not over_cap, "over_cap": over_cap}
    finally:
        for client in clients:
            await client.close()


def summary_text(s: dict) -> str:
    holds = {True: "holds", False: "BROKEN"}
    gov = s["governance"]
    return "\n".join([
        "summary",
        f"  blocks        {s['blocks']} (all {s['validators']} validators at height "
        f"{s['height']}, head {str(s['head'])[:16]}...)",
        f"  transactions  {s['txs']} ({s['committed']} committed, {s['rejected']} rejected "
        f"by the rules)",
        f"  minted        {euros(s['minted'])}",
        f"  redeemed      {euros(s['redeemed'])}",
        f"  circulating   {euros(s['circulating'])}",
        f"  governance    {gov['gov.proposed']} proposals, {gov['gov.enacted']} enacted "
        f"after {gov['gov.approved']} approvals by other organisations; "
        f"{gov['member.recovered']} key recovered, {gov['member.recovery_opened']} "
        f"delayed recovery opened and {gov['member.recovery_cancelled']} cancelled",
        f"  supply invariant {holds[s['supply_invariant']]}: the balances of all "
        f"{s['accounts']} accounts add up to {euros(s['balances'])} = minted - redeemed, "
        f"the same on every gateway",
        f"  cap invariant {holds[s['cap_invariant']]}: none of the {s['citizens']} citizens "
        f"earned over a monthly or yearly cap"])


def _as_typed(path: Path) -> str:
    """`path` as typed in the folder the demo was started from."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def command_hint() -> tuple[str, str]:
    """How to run `stadsmunt` from where the demo was started, as the README does: a fresh
    clone has no `stadsmunt` on PATH, only `python3 dev.py`. Also the venv's own
    script when there is one ("" if not)."""
    dev = Path(__file__).resolve().parent.parent / "dev.py"
    script = Path(sys.executable).with_name("stadsmunt")
    script_hint = _as_typed(script) if script.exists() else ""
    if not (dev.parent / "setup.cfg").exists() or not dev.exists():   # installed, not a checkout
        return "stadsmunt", script_hint
    return f"python3 {_as_typed(dev)}", script_hint


def look_around(folder: Path, gateways: dict[str, str], kept: bool) -> str:
    first, second = list(gateways.values())[:2]
    admin = folder / "keys" / "admin.key"
    anouk = read_key_file(folder / "keys" / "anouk.key").public.hex()
    cli, script = command_hint()
    client = f"{cli} client --gateway {first} --key {admin}"
    steward = folder / "keys" / "steward-cbs.key"
    lines = ["", "the gateways:"]
    lines += [f"  {name:<12} {url}" for name, url in gateways.items()]
    lines += ["", "look around" + (f" (`{script}` does what `{cli}` does):"
                                   if script and script != cli else ":"),
              f"  curl -s {first}/v1/status",
              f"  curl -s {second}/v1/tasks",
              f"  curl -s {first}/v1/stats",
              f"  {client} tasks",
              f"  {client} account {anouk}",
              f"  {client} payouts",
              f"  {cli} gov --gateway {second} --key {steward} list",
              f"  {cli} audit {first} --key {admin}",
              f"every person's key is in {folder / 'keys'}, the stewards' as "
              f"steward-NAME.key; the validators' logs are {folder}/NAME.log"
              + ("" if kept else " (all removed when the demo stops; --keep keeps them)")]
    return "\n".join(lines)


async def story_and_check(folder: Path, network: dict, processes) -> dict:
    gateways = {v["name"]: v["gateway"] for v in network["validators"]}
    say(f"starting {len(gateways)} validators in {folder} ...")
    await wait_ready(gateways, processes, folder)
    say(f"[0/{TOTAL}] chain {network['chain']}: {', '.join(gateways)} are up and linked")
    admin = read_key_file(folder / "keys" / "admin.key")
    urls = list(gateways.values())
    async with Client(urls[0], admin, network["chain"]) as staff, \
            Client(urls[1], None, network["chain"]) as citizens, \
            Client(urls[2], None, network["chain"]) as shops:
        try:
            await play(staff, citizens, shops, folder / "keys", say)
        except ClientError as error:
            raise CheckFailed(f"the story stopped: {error.code}: {error.detail}") from None
        except StoryFailed as error:
            raise CheckFailed(f"the story went wrong: {error}") from None
    return await check_network(gateways, admin)


def _serve_until_stopped(processes) -> None:
    say("\nserving; press Ctrl-C to stop")
    while all(p.poll() is None for p in processes):
        time.sleep(0.5)   # a supervisor's poll; Ctrl-C and SIGTERM interrupt it
    say("a validator stopped on its own; stopping the others")


class Stopper:
    """Where Ctrl-C and SIGTERM land. Outside the event loop they raise KeyboardInterrupt
    at once; while `run` runs the story they cancel its task instead, so it stops at its
    next await with its sockets and sessions closed, never halfway through making one (a
    KeyboardInterrupt raised between two lines of asyncio's own code left a transport
    without its fields, and its finaliser printed a traceback)."""

    def __init__(self):
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def __call__(self, signum, frame) -> None:
        _hold_signals()
        self.requested = True
        if self._task is None:
            raise KeyboardInterrupt
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)

    def run(self, coro):
        """asyncio.run(coro), stopped by a signal as KeyboardInterrupt."""
        async def story():
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            return await coro
        try:
            result = asyncio.run(story())
        except asyncio.CancelledError:
            if not self.requested:
                raise
            result = None
        finally:
            self._task = None
        if self.requested:
            raise KeyboardInterrupt
        return result


def _hold_signals() -> None:
    # once the demo stops, a second Ctrl-C or SIGTERM must not cut the stopping short:
    # the validators (in sessions of their own) would run on, and the keys stay behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run(args: argparse.Namespace) -> int:
    keep = bool(args.dir) or args.keep
    if args.dir:
        folder = Path(args.dir)
    else:
        folder = Path(tempfile.mkdtemp(prefix="stadsmunt-demo-"))
        folder.rmdir()          # network init makes it, and refuses a non-empty one
    # SIGTERM stops the demo like Ctrl-C does: through the same `finally`
    stop = Stopper()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes, failed = [], False
    try:
        network = net.init(folder, VALIDATORS, CHAIN, "127.0.0.1",
                           free_base_port(2 * VALIDATORS))
        net.allow_each_other(folder, network)      # each dashboard reads all gateways
        processes = net.start_all(folder, network, log_dir=folder)
        summary = stop.run(story_and_check(folder, network, processes))
        ok = summary["supply_invariant"] and summary["cap_invariant"]
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        say("")
        say(summary_text(summary))
        if args.exit:
            return 0 if ok else 1
        say(look_around(folder, {v["name"]: v["gateway"] for v in network["validators"]},
                        keep))
        say(f"\nthe dashboard (every validator, live; open it in a browser):\n"
            f"  {net.dashboard_url(network)}\n"
            f"the reference wallet (a citizen's or a merchant's app, Dutch and English; "
            f"register the key it makes with the admin's client):\n"
            f"  {net.wallet_url(network)}")
        _serve_until_stopped(processes)
        failed = True           # a validator stopped on its own: keep its log
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 0
    except BaseException:
        failed = True
        raise
    finally:
        _hold_signals()
        if processes:
            say("stopping the validators ...")
            net.stop_all(processes)
        if not (keep or failed):
            shutil.rmtree(folder, ignore_errors=True)
            say(f"stopped; removed the network's folder {folder} with everyone's keys "
                f"(--keep keeps it)")
        elif processes:
            say(f"stopped; the network's folder, with everyone's keys and the validators' "
                f"logs, is kept in {folder}")


def register(commands) -> None:
    parser = commands.add_parser("demo", help="a local four-validator network and the "
                                              "Heerlen story",
                                 description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  stadsmunt demo\n"
                                        "  stadsmunt demo --dir heerlen-demo --exit")
    parser.add_argument("--dir", help="where to make the network (a new or empty folder; "
                                      "default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder, with everyone's keys, when the "
                             "demo stops (a --dir is always kept)")
    parser.add_argument("--exit", action="store_true",
                        help="print a summary and exit instead of serving")
    parser.set_defaults(run=run)

