"""`stadsmunt`: the one command-line entry point (contract.md, "Command line").

Exit codes: 0 success, 1 a check or operation failed, 2 bad usage or an unreachable
source. Every sub-command lives in its own module under ops/ and registers itself here.
"""
from __future__ import annotations

import argparse
import sys


from ops.errors import CheckFailed, UsageError


def _demo(args: argparse.Namespace) -> int:
    print("stadsmunt demo will start a local four-validator network and play the Heerlen "
          "story; the network is not built yet, so it does nothing for now.")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stadsmunt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser("demo", help="a local four-validator network and the Heerlen story")
    demo.add_argument("--dir", help="where to keep the network (default: a new temporary folder)")
    demo.add_argument("--exit", action="store_true", help="print a summary and exit")
    demo.set_defaults(run=_demo)
    from ops import audit_cmd, export_cmd, genesis_cmd, keys_cmd, network, node_cmd
    for module in (keys_cmd, genesis_cmd, network, node_cmd, audit_cmd, export_cmd):
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
