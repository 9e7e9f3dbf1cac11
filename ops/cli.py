"""Stadsmunt: the backend of a civic-reward currency on a permissioned PBFT chain.

Exit codes: 0 success, 1 a check or operation failed, 2 bad usage or an unreachable
source. Every sub-command lives in its own module under ops/ and registers itself here.
"""
from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import sys
from pathlib import Path

from ops.errors import CheckFailed, UsageError


def version() -> str:
    """The installed package's version, else (a checkout run without installing it)
    setup.cfg's."""
    try:
        return importlib.metadata.version("stadsmunt")
    except importlib.metadata.PackageNotFoundError:
        config = configparser.ConfigParser()
        config.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
        return config.get("metadata", "version", fallback="unknown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stadsmunt", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from bench import network as bench
    from ops import (audit_cmd, backup_cmd, client_cmd, demo, export_cmd, genesis_cmd,
                     gov_cmd, keys_cmd, network, node_cmd, research_cmd)
    for module in (demo, keys_cmd, genesis_cmd, network, node_cmd, client_cmd, gov_cmd,
                   audit_cmd, export_cmd, backup_cmd, research_cmd, bench):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"stadsmunt: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"stadsmunt: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
