"""`stadsmunt keygen --out FILE`: a new Ed25519 key; prints the public key."""
from __future__ import annotations

import argparse

from node import keys
from ops.errors import CheckFailed


def run(args: argparse.Namespace) -> int:
    keypair = keys.Keypair.generate()
    try:
        keys.write_key_file(args.out, keypair)
    except keys.KeyFileError as error:
        raise CheckFailed(str(error)) from None
    print(keypair.public.hex())
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "keygen", help="make a new Ed25519 key file (the seed as 64 hex characters, mode "
                       "0600) and print its public key")
    parser.add_argument("--out", required=True, help="the key file to create (never "
                                                     "overwritten)")
    parser.set_defaults(run=run)
