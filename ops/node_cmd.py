"""`stadsmunt node run DIR/NAME`: one validator and its gateway processes, in the
foreground, until SIGINT or SIGTERM, then a clean stop (gateways first, then the links and
the store). `stadsmunt node gateway DIR/NAME --worker N`: one gateway process, as
`node run` starts them (docs/operators.md, "Gateway processes").

The validator process runs consensus, the links to its peers and the executor, the only
writer of the store. Its `[gateway] workers` gateway processes (ops/gateways.py) serve the
HTTP API on the same port, read the store read-only and reach the validator over a Unix
socket in its data folder (node/link.py). `workers = 0` serves the gateway inside the
validator's process instead, as before: for development only.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import stat
from pathlib import Path

import structlog
from aiohttp import web

from gateway import serve as gateway_serve
from gateway.app import make_app
from gateway.connections import Gate
from node import config as node_config, genesis as genesis_file, keys
from node import sets
from node.block import RulesMissing
from node.store import Store
from node.link import LinkBusy, LinkServer, socket_path
from node.runtime import StartError, Validator
from node.statesync import SyncFailed
from ops import evidence_cmd, logs, node_init_cmd
from ops.errors import CheckFailed, UsageError
from ops.gateways import Gateways

log = structlog.get_logger("stadsmunt.node")


def _settings(folder: str) -> node_config.NodeConfig:
    try:
        return node_config.load(folder)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None


def _known_validators(settings: node_config.NodeConfig,
                      genesis) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(name, key) of every validator of every set the chain names (genesis's, and those
    of the `validators.set` changes in this validator's ledger, if it has one), and the
    names of the set in force and the pending one: those whose addresses it needs."""
    known = [(v.name, v.key) for v in genesis.validators]
    needed = [v.name for v in genesis.validators]
    if (settings.data_dir / "data.mdb").exists():
        store = Store(settings.data_dir)
        try:
            height = store.head()[0]
            pending = [p for p in [sets.pending(store, height)] if p]
            known += [(m.name, m.key) for one in sets.every(genesis, store) + pending
                      for m in one.members]
            needed = [m.name for one in [sets.in_force(genesis, store, height + 1)] + pending
                      for m in one.members]
        finally:
            store.close()
    return list(dict.fromkeys(known)), list(dict.fromkeys(needed))


def _check_against_genesis(settings: node_config.NodeConfig, join: bool = False) -> None:
    """The settings that only the chain can judge (`name`, [peers], and that `key_file`
    is the key of `name`): wrong ones are configuration errors (exit 2), like any other.
    The validators are genesis's and those of every set change the ledger holds; `join`:
    this validator may be in none of them yet. A genesis or key file that cannot be
    read, or a key that is no validator's, is left to the validator's start (exit 1):
    the file is wrong, not the setting."""
    try:
        genesis = genesis_file.load(settings.genesis_file)
        public = keys.read_key_file(settings.key_file).public
    except (genesis_file.GenesisError, keys.KeyFileError):
        return
    known, needed = _known_validators(settings, genesis)
    names = list(dict.fromkeys(n for n, _ in known))
    try:
        node_config.check_roster(settings, names, join=join, needed=needed)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None
    owner = next((n for n, k in known if k == public), None)
    if owner not in (None, settings.name):
        raise UsageError(f"{settings.folder / node_config.CONFIG_NAME}: key_file: "
                         f"{settings.key_file} is the key of validator {owner!r}, not of "
                         f"{settings.name!r} (name)")


def _tighten(data_dir: Path) -> None:
    """The data folder holds personal data: it is made 0700 and its files 0600 (owner
    only; node/store.py). One made before that rule is tightened here, and logged."""
    if not data_dir.is_dir():
        return
    tightened = {}
    for path in (data_dir, *data_dir.iterdir()):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 and not path.is_symlink():
            try:
                path.chmod(mode & 0o700)
            except OSError as error:
                raise CheckFailed(f"{path}: cannot take away others' access "
                                  f"({error.strerror})") from None
            tightened[str(path)] = f"{mode:04o} -> {mode & 0o700:04o}"
    if tightened:
        log.warning("data_permissions_tightened", modes=tightened)


DEFAULT_BEHIND = 1_000     # blocks above the head before `--state-sync` loads a snapshot


def _blocks(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of blocks: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a number of blocks is 0 or more")
    return value


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _in_process(validator: Validator, settings) -> web.AppRunner:
    gate = Gate(settings.gateway_limits)
    runner = gate.runner(make_app(validator))
    await runner.setup()
    host, port = settings.gateway_listen
    await gate.site(runner, host, port).start()
    log.info("gateway_listening", url=f"http://{host}:{port}", in_process=True,
             max_connections=gate.max_connections)
    return runner


class ValidatorFailed(Exception):
    """A part of the validator failed: the process ends with a non-zero exit."""


async def _until_stop_or_failure(stop: asyncio.Event, validator: Validator,
                                 name: str, gateways: Gateways | None = None) -> None:
    """Run until SIGINT/SIGTERM, or until a part of the validator fails (a driver step,
    the ticker, the links, the gateway supervisor): then one clear line and a non-zero
    exit; the supervisor (systemd) restarts it and it recovers from disk. A validator
    that limps on is worse than one that is down. By the time of the line every input
    is stopped (Validator.fail): nothing runs on after it but the stop itself."""
    stopping = asyncio.ensure_future(stop.wait())
    failing = asyncio.ensure_future(validator.failure())
    watched = {stopping, failing}
    supervisor = None
    if gateways is not None:
        supervisor = asyncio.ensure_future(gateways.failure())
        watched.add(supervisor)
    done, pending = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if supervisor in done:
        validator.fail(supervisor.result())
    if failing in done or supervisor in done:
        error = failing.result() if failing in done else supervisor.result()
        if isinstance(error, RulesMissing):
            _stop_for_rules(name, error)
        log.critical("validator_failed", name=name, error=repr(error),
                     height=_ledger_height(validator),
                     exc_info=(type(error), error, error.__traceback__))
        raise ValidatorFailed(f"validator {name} failed: {error!r}")
    log.info("stopping", name=name)


def _stop_for_rules(name: str, missing: RulesMissing) -> None:
    """The rules version due at the next height is not one this build runs: one line that
    says which to install, and exit code 2 (not restarted: only an upgrade mends it)."""
    log.critical("rules_version_missing", name=name, version=missing.version,
                 from_height=missing.first, height=missing.height,
                 action=f"install a stadsmunt that runs rules version {missing.version}, "
                        "then start this validator again: it catches up from its disk "
                        "and its peers")
    raise UsageError(f"validator {name} stopped before height {missing.height}: {missing}")


def _ledger_height(validator: Validator) -> int | None:
    """The height of the ledger on disk, where the restart resumes (None if the store
    cannot say: the failure may be the store's)."""
    try:
        return validator.store.head()[0]
    except Exception:
        return None


async def serve(folder: str, ready: asyncio.Event | None = None,
                log_level: str = "info", join: bool = False,
                state_sync: int | None = None) -> None:
    """`state_sync`: load a stable checkpoint's state from the peers first when one is
    more than this many blocks above the head (None: never; node/statesync.py)."""
    settings = _settings(folder)
    # every line this validator logs names it: `up` and a shared journal mix several
    structlog.contextvars.bind_contextvars(node=settings.name)
    _check_against_genesis(settings, join)
    _tighten(settings.data_dir)
    try:
        validator = Validator(settings, join=join, state_sync=state_sync is not None)
    except StartError as error:
        raise CheckFailed(str(error)) from None
    stop = _stop_on_signals()
    link = gateways = runner = None
    try:
        if state_sync is not None and not await _synced_or_stopped(validator, state_sync,
                                                                   stop):
            return
        missing = validator.rules_missing()
        if missing is not None:         # before taking part in anything
            _stop_for_rules(settings.name, missing)
        if settings.gateway_workers:
            # the gateways first: the API answers (status, reads) from the moment the
            # validator links to its peers, and one that cannot listen stops the start
            # before the validator has taken part in anything
            link = LinkServer(validator, socket_path(settings))
            try:
                await link.start()
            except LinkBusy as error:
                raise CheckFailed(str(error)) from None
            gateways = Gateways(settings.folder, settings.gateway_workers, log_level, link,
                                validator.store.env)
            await gateways.start()
            await validator.start()
        else:
            await validator.start()
            runner = await _in_process(validator, settings)
        if ready is not None:
            ready.set()
        await _until_stop_or_failure(stop, validator, settings.name, gateways)
    except OSError as error:
        raise CheckFailed(f"cannot listen: {error.strerror or error}") from None
    finally:
        gateway_serve.ignore_further_signals(asyncio.get_running_loop())
        if gateways is not None:
            await gateways.stop()
        if runner is not None:
            await runner.cleanup()
        if link is not None:
            await link.stop()
        await validator.stop()


async def _synced_or_stopped(validator: Validator, behind: int,
                             stop: asyncio.Event) -> bool:
    """Runs the state sync until it ends (True) or a signal stops the validator (False:
    a sync stopped half way makes the next start sync again)."""
    syncing = asyncio.ensure_future(validator.sync_state(behind))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({syncing, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not syncing.done():
        syncing.cancel()
        await asyncio.gather(syncing, return_exceptions=True)
        return False
    try:
        syncing.result()
    except SyncFailed as error:
        raise CheckFailed(f"state sync failed: {error}") from None
    return True


def run(args: argparse.Namespace) -> int:
    structlog.contextvars.bind_contextvars(role="validator")
    logs.configure(args.log_level)
    try:
        asyncio.run(serve(args.folder, log_level=args.log_level, join=args.join,
                          state_sync=args.state_sync))
    except ValidatorFailed as error:
        raise CheckFailed(f"{error}; stopped (fail-stop): on restart it recovers from "
                          "disk") from None
    return 0


def run_gateway(args: argparse.Namespace) -> int:
    structlog.contextvars.bind_contextvars(role=f"gateway-{args.worker}")
    logs.configure(args.log_level)
    if args.parent is not None:
        gateway_serve.die_with(args.parent)
    settings = _settings(args.folder)
    structlog.contextvars.bind_contextvars(node=settings.name)
    try:
        listen = args.listen and node_config.parse_address(args.listen, "--listen")
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None
    try:
        asyncio.run(gateway_serve.serve(settings, args.worker, listen))
    except (gateway_serve.GatewayStartError, gateway_serve.CannotListen) as error:
        log.error("gateway_failed", reason=str(error))
        raise CheckFailed(str(error)) from None
    return 0


def register(commands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    node = commands.add_parser("node", help="run one validator", formatter_class=raw,
                               epilog="example:\n"
                                      "  stadsmunt node init /srv/stadsmunt/validator --name cbs "
                                      "\\\n      --genesis genesis.json --key validator.key "
                                      "\\\n      --peers municipality=10.0.1.10:7100,"
                                      "brightlands=10.0.3.10:7100,vng=10.0.4.10:7100\n"
                                      "  stadsmunt node run /srv/stadsmunt/validator")
    sub = node.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    run_parser = sub.add_parser("run", help="run one validator and its gateway processes "
                                            "until SIGINT or SIGTERM", formatter_class=raw,
                                epilog="example:\n"
                                       "  stadsmunt node run /srv/stadsmunt/validator\n"
                                       "  stadsmunt node run /srv/stadsmunt/validator "
                                       "--log-level debug\n"
                                       "  stadsmunt node run /srv/stadsmunt/cotown --join "
                                       "--state-sync")
    run_parser.add_argument("folder", help="the validator's folder (holds node.toml)")
    run_parser.add_argument("--join", action="store_true",
                            help="this validator is in no validator set yet: it follows "
                                 "the chain until the set that names it takes over "
                                 "(docs/operators.md, \"A partner joins\")")
    run_parser.add_argument("--state-sync", nargs="?", type=_blocks, const=DEFAULT_BEHIND,
                            default=None, metavar="BLOCKS",
                            help="before taking part, load a recent stable checkpoint's "
                                 "state from the peers when it is more than BLOCKS "
                                 f"(default {DEFAULT_BEHIND}) above this validator's head, "
                                 "and fetch the history below it in the background "
                                 "(docs/operators.md, \"State sync\")")
    run_parser.add_argument("--log-level", default="info",
                            choices=["debug", "info", "warning", "error"],
                            help="the least severe log lines written (default info)")
    run_parser.set_defaults(run=run)
    gateway = sub.add_parser("gateway", help="run one gateway process of a running "
                                             "validator (node run starts them)",
                             formatter_class=raw,
                             epilog="example:\n"
                                    "  stadsmunt node gateway /srv/stadsmunt/validator "
                                    "--worker 9 --listen 127.0.0.1:8081")
    gateway.add_argument("folder", help="the validator's folder (holds node.toml)")
    gateway.add_argument("--worker", type=int, default=1, help="its number, for the logs")
    gateway.add_argument("--parent", type=int, default=None,
                         help="end when the process with this id ends")
    gateway.add_argument("--listen", default=None, metavar="HOST:PORT",
                         help="serve here instead of [gateway] listen")
    gateway.add_argument("--log-level", default="info",
                         choices=["debug", "info", "warning", "error"],
                         help="the least severe log lines written (default info)")
    gateway.set_defaults(run=run_gateway)
    evidence_cmd.register(sub)
    node_init_cmd.register(sub)
