"""`stadsmunt node run DIR/NAME`: one validator and its gateway, in the foreground, until
SIGINT or SIGTERM, then a clean stop (links closed, the store closed)."""
from __future__ import annotations

import argparse
import asyncio
import signal

import structlog
from aiohttp import web

from gateway.app import make_app
from node import config as node_config
from node.runtime import StartError, Validator
from ops import logs
from ops.errors import CheckFailed, UsageError

log = structlog.get_logger("stadsmunt.node")


async def serve(folder: str, ready: asyncio.Event | None = None) -> None:
    try:
        settings = node_config.load(folder)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None
    try:
        validator = Validator(settings)
    except StartError as error:
        raise CheckFailed(str(error)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(validator), access_log=None)
    try:
        await validator.start()
        await runner.setup()
        host, port = settings.gateway_listen
        await web.TCPSite(runner, host, port).start()
        log.info("gateway_listening", url=f"http://{host}:{port}")
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping", name=settings.name)
    except OSError as error:
        raise CheckFailed(f"cannot listen: {error.strerror or error}") from None
    finally:
        await runner.cleanup()
        await validator.stop()


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    asyncio.run(serve(args.folder))
    return 0


def register(commands) -> None:
    node = commands.add_parser("node", help="run one validator")
    sub = node.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    run_parser = sub.add_parser("run", help="run one validator and its gateway until "
                                            "SIGINT or SIGTERM")
    run_parser.add_argument("folder", help="the validator's folder (holds node.toml)")
    run_parser.add_argument("--log-level", default="info",
                            choices=["debug", "info", "warning", "error"])
    run_parser.set_defaults(run=run)
