"""`stadsmunt keygen --out FILE`: a new Ed25519 key; prints the public key.
`stadsmunt keys show FILE [--json]`: the public key of a key file."""
from __future__ import annotations

import argparse
import json

from node import keys
from ops.errors import CheckFailed, UsageError


def run(args: argparse.Namespace) -> int:
    keypair = keys.Keypair.generate()
    try:
        keys.write_key_file(args.out, keypair)
    except keys.KeyFileError as error:
        raise CheckFailed(str(error)) from None
    print(keypair.public.hex())
    return 0


def show(args: argparse.Namespace) -> int:
    try:
        public = keys.read_key_file(args.file).public.hex()
    except keys.KeyFileError as error:
        raise UsageError(str(error)) from None
    print(json.dumps({"public": public}) if args.json else public)
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "keygen", help="make a new Ed25519 key file (the seed as 64 hex characters, mode "
                       "0600) and print its public key",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  stadsmunt keygen --out validator.key")
    parser.add_argument("--out", required=True, help="the key file to create (never "
                                                     "overwritten)")
    parser.set_defaults(run=run)
    group = commands.add_parser("keys", help="look at key files",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  stadsmunt keys show validator.key")
    sub = group.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    shown = sub.add_parser("show", help="print the public key (hex) of a key file",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="example:\n  stadsmunt keys show validator.key\n"
                                  "  stadsmunt keys show --json validator.key")
    shown.add_argument("file", help="a key file made by `stadsmunt keygen`")
    shown.add_argument("--json", action="store_true", help='print {"public": HEX}')
    shown.set_defaults(run=show)
