"""`stadsmunt network init DIR` and `stadsmunt up DIR`: a local network for development
and demos, every validator on this machine, each in its own folder and process."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from client import Client, ClientError
from node import config as node_config, genesis as genesis_file, keys
from ops.errors import CheckFailed, UsageError

READY_TIMEOUT_S = 60.0   # a network's validators answer and link up within this
READY_POLL_S = 0.1

PARTNERS = ("municipality", "cbs", "brightlands", "vng", "cotown", "heerlen-mijn-stad", "gms")
CHAIN_RE = re.compile(r"[a-z0-9-]{1,32}")


def free_base_port(count: int, preferred: int | None = 7100) -> int:
    """The default ports when they are free, else a random free block of `count` below
    Linux's ephemeral range (32768 and up), where a client polling a port before its
    validator listens could be handed that very port and connect to itself."""
    candidates = [preferred] * (preferred is not None) + [random.randrange(10_000, 32_000 - count) for _ in range(200)]
    for base in candidates:
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise CheckFailed(f"no block of {count} free ports found on 127.0.0.1")


def validator_names(n: int) -> list[str]:
    return [PARTNERS[i] if i < len(PARTNERS) else f"validator-{i + 1}" for i in range(n)]


def init(target: Path, validators: int = 4, chain: str = "heerlen-dev",
         host: str = "127.0.0.1", base_port: int = 7100) -> dict:
    """Create the network's folder; returns the content of network.json."""
    if not (validators == 1 or validators >= 4):
        raise UsageError("--validators is 1 (development) or at least 4 (n = 3f + 1)")
    if validators > 100:
        raise UsageError("--validators is at most 100 on one machine")
    if not CHAIN_RE.fullmatch(chain):
        raise UsageError("--chain must match [a-z0-9-]{1,32}")
    if not 1024 <= base_port <= 65535 - 2 * validators:
        raise UsageError(f"--base-port must leave room for {2 * validators} ports below 65536")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} exists and is not an empty folder")
    names = validator_names(validators)
    pairs = [keys.Keypair.generate() for _ in names]
    stewards = [keys.Keypair.generate() for _ in names]
    admin = keys.Keypair.generate()
    # one organisation per validator, named as it, with one steward each, and the
    # constitution's defaults for that many organisations
    genesis = genesis_file.Genesis(
        chain=chain, city="Heerlen", coin_name="Heerlens Heitje", coin_symbol="HHT",
        validators=tuple(genesis_file.GenesisValidator(n, k.public, n)
                         for n, k in zip(names, pairs)),
        admins=(admin.public,),
        organisations=tuple(genesis_file.Organisation(n, (s.public,))
                            for n, s in zip(names, stewards)),
        checkpoint_interval=16)
    peer = {n: f"{host}:{base_port + 2 * i}" for i, n in enumerate(names)}
    gateway = {n: f"{host}:{base_port + 2 * i + 1}" for i, n in enumerate(names)}
    target.mkdir(parents=True, exist_ok=True)
    (target / "keys").mkdir()
    keys.write_key_file(target / "keys" / "admin.key", admin)
    for name, steward in zip(names, stewards):
        keys.write_key_file(target / "keys" / f"steward-{name}.key", steward)
    genesis.save(target / "genesis.json")
    for name, pair in zip(names, pairs):
        folder = target / name
        folder.mkdir()
        keys.write_key_file(folder / "validator.key", pair)
        shutil.copyfile(target / "genesis.json", folder / "genesis.json")
        others = {o: peer[o] for o in names if o != name}
        (folder / node_config.CONFIG_NAME).write_text(
            node_config.render(name, peer[name], gateway[name], others))
    network = {"chain": chain, "genesis": genesis.hash().hex(),
               "validators": [{"name": n, "key": k.public.hex(), "peer": peer[n],
                               "gateway": f"http://{gateway[n]}"}
                              for n, k in zip(names, pairs)]}
    (target / "network.json").write_text(json.dumps(network, indent=2) + "\n")
    return network


def allow_each_other(folder: Path, network: dict) -> list[str]:
    """Lets every gateway's dashboard read every other gateway of the network: each
    validator's `[gateway] cors_origins` lists the origins of all the network's gateways
    (docs/operators.md, "12. Dashboard"). Returns them."""
    origins = [v["gateway"] for v in network["validators"]]
    listed = "cors_origins = [" + ", ".join(json.dumps(o) for o in origins) + "]"
    for v in network["validators"]:
        path = folder / v["name"] / node_config.CONFIG_NAME
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"(?m)^cors_origins = \[\]", lambda _m: listed, text, count=1),
                        encoding="utf-8")
    return origins


def dashboard_url(network: dict, validator: int = 0) -> str:
    """The dashboard of one validator's gateway, watching all the others (?peers=)."""
    gateways = [v["gateway"] for v in network["validators"]]
    others = [g for i, g in enumerate(gateways) if i != validator]
    return f"{gateways[validator]}/" + (f"?peers={','.join(others)}" if others else "")


def wallet_url(network: dict, validator: int = 0) -> str:
    """The reference wallet served by one validator's gateway (docs/client.md, "The
    reference wallet")."""
    return f"{network['validators'][validator]['gateway']}/app/"


def load_network(folder: Path) -> dict:
    path = folder / "network.json"
    try:
        network = json.loads(path.read_text(encoding="utf-8"))
        names = [v["name"] for v in network["validators"]]
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; make one with `stadsmunt network init`") \
            from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise CheckFailed(f"{path} is not a network file: {error}") from None
    if not names or not all(isinstance(n, str) and (folder / n).is_dir() for n in names):
        raise CheckFailed(f"{path} names validators whose folders are missing")
    return network


async def wait_ready(gateways: dict[str, str], processes, folder: Path) -> None:
    """Every validator answers and sees all the others (polling with a deadline)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    clients = {name: Client(url, timeout_s=2.0) for name, url in gateways.items()}
    try:
        while True:
            dead = [n for n, p in zip(gateways, processes) if p.poll() is not None]
            if dead:
                log = (folder / f"{dead[0]}.log")
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                raise CheckFailed(f"validator {dead[0]} stopped at start:\n  "
                                  + "\n  ".join(tail))
            linked = 0
            for name, client in clients.items():
                try:
                    status = await client.status()
                except ClientError:
                    continue
                linked += all(v["connected"] for v in status["validators"])
            if linked == len(clients):
                return
            if time.monotonic() > deadline:
                raise CheckFailed(f"the validators did not link up within "
                                  f"{READY_TIMEOUT_S:g} s; see the logs in {folder}")
            await asyncio.sleep(READY_POLL_S)
    finally:
        for client in clients.values():
            await client.close()


def node_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "ops.cli", "node", "run", str(folder)]


def start_all(folder: Path, network: dict, log_dir: Path | None = None) -> list[subprocess.Popen]:
    processes = []
    for v in network["validators"]:
        out = open(log_dir / f"{v['name']}.log", "ab") if log_dir else None
        processes.append(subprocess.Popen(node_command(folder / v["name"]), stdout=out,
                                          stderr=out, start_new_session=True))
    return processes


def stop_all(processes: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_init(args: argparse.Namespace) -> int:
    network = init(Path(args.dir), args.validators, args.chain, args.host, args.base_port)
    print(f"made a network of {len(network['validators'])} validators in {args.dir}")
    print(f"genesis {network['genesis']}")
    for v in network["validators"]:
        print(f"  {v['name']:<20} peer {v['peer']:<22} gateway {v['gateway']}")
    print(f"admin key: {Path(args.dir) / 'keys' / 'admin.key'}")
    print(f"start it with: stadsmunt up {args.dir}")
    return 0


def _ports_free(network: dict) -> None:
    """Every validator's peer and gateway address can be listened on, or CheckFailed
    naming the first taken (most often by another `up` of the same folder)."""
    for v in network["validators"]:
        for what, address in (("peer", v["peer"]), ("gateway", v["gateway"])):
            host, _, port = address.removeprefix("http://").rpartition(":")
            with socket.socket() as s:
                try:
                    s.bind((host, int(port)))
                except OSError as error:
                    raise CheckFailed(f"validator {v['name']}: its {what} address {host}:"
                                      f"{port} is in use ({error.strerror}); is this "
                                      "network running already? Nothing was started.") \
                        from None


def run_up(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    network = load_network(folder)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    _ports_free(network)
    processes = start_all(folder, network)
    try:
        # "started" only once every validator answers and sees the others: one that
        # cannot start (a port in use by another `up`) stops them all, with its name
        asyncio.run(wait_ready({v["name"]: v["gateway"] for v in network["validators"]},
                               processes, folder))
    except (CheckFailed, KeyboardInterrupt) as error:
        stop_all(processes)
        if isinstance(error, KeyboardInterrupt):
            return 130
        raise CheckFailed(f"{error}\nstopped every validator of {folder}") from None
    print(f"started {len(processes)} validators; gateways:", flush=True)
    for v in network["validators"]:
        print(f"  {v['name']:<20} {v['gateway']}", flush=True)
    try:
        while not stopping and any(p.poll() is None for p in processes):
            time.sleep(0.2)  # a supervisor's poll, not a synchronisation
    except KeyboardInterrupt:
        pass
    stop_all(processes)
    failed = [v["name"] for v, p in zip(network["validators"], processes) if p.returncode
              not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed:
        print(f"stopped; these exited with an error: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("stopped")
    return 0


def register(commands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    network = commands.add_parser("network", help="make a local network",
                                  formatter_class=raw,
                                  epilog="example:\n  stadsmunt network init heerlen\n"
                                         "  stadsmunt up heerlen")
    sub = network.add_subparsers(dest="network_command", metavar="COMMAND", required=True)
    init_parser = sub.add_parser("init", help="create DIR with a genesis, keys and one "
                                              "folder per validator", formatter_class=raw,
                                 epilog="example:\n  stadsmunt network init heerlen\n"
                                        "  stadsmunt network init heerlen-one --validators 1 "
                                        "--base-port 7200")
    init_parser.add_argument("dir", metavar="DIR",
                             help="the network's folder to make (must not exist, or be "
                                  "empty)")
    init_parser.add_argument("--validators", type=int, default=4, help="1, or 4 and more")
    init_parser.add_argument("--chain", default="heerlen-dev",
                             help="the chain id of its genesis (default heerlen-dev)")
    init_parser.add_argument("--host", default="127.0.0.1",
                             help="the address every validator and gateway listens on "
                                  "(default 127.0.0.1)")
    init_parser.add_argument("--base-port", type=int, default=7100, metavar="PORT",
                             help="the first port: validator i gets PORT+2i for its peers "
                                  "and PORT+2i+1 for its gateway (default 7100)")
    init_parser.set_defaults(run=run_init)
    up = commands.add_parser("up", help="run every validator of a local network until "
                                        "SIGINT or SIGTERM", formatter_class=raw,
                             epilog="example:\n  stadsmunt up heerlen")
    up.add_argument("dir", metavar="DIR",
                    help="a folder made by `stadsmunt network init`")
    up.set_defaults(run=run_up)
