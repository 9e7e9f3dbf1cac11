"""`stadsmunt node init DIR --name NAME --genesis FILE --key FILE --peers NAME=HOST:PORT,...`:
one partner's validator folder, made from its own key file, the agreed genesis and the
other validators' peer addresses (docs/operators.md, "3. The validator's folder").

It writes the node.toml that `network init` writes for each of its validators (the same
settings, in the same order, with the same comments; node/config.py's `render`), a copy
of the genesis and of the key (mode 0600). Everything is checked before anything is
written: NAME is a validator of the genesis, the key is that validator's key, and the
peers are exactly the other validators. The folder is assembled next to DIR and renamed
into place at the end, so a refusal or a failure leaves nothing behind. Every refusal
exits with code 2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from node import config as node_config, genesis as genesis_file, keys
from ops.errors import UsageError

DEFAULT_LISTEN = "0.0.0.0:7100"     # the other validators must reach it
DEFAULT_GATEWAY = "127.0.0.1:7101"  # behind a reverse proxy on the same machine
KEY_NAME, GENESIS_NAME = "validator.key", "genesis.json"


def parse_peers(text: str) -> dict[str, str]:
    """`NAME=HOST:PORT,...` as {name: "host:port"}, in the order given."""
    peers: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, address = item.partition("=")
        name, address = name.strip(), address.strip()
        if not sep or not name:
            raise UsageError(f"--peers: expected NAME=HOST:PORT, got {item!r}")
        if name in peers:
            raise UsageError(f"--peers: {name} is given twice")
        try:
            node_config.parse_address(address, f"--peers {name}")
        except node_config.ConfigError as error:
            raise UsageError(str(error)) from None
        peers[name] = address
    return peers


def _address(text: str, option: str) -> str:
    try:
        node_config.parse_address(text, option)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None
    return text


def plan(target: Path, name: str, genesis_path: Path, key_path: Path, peers: dict[str, str],
         listen: str, gateway: str,
         join: bool = False) -> tuple[genesis_file.Genesis, keys.Keypair, str]:
    """Every check, before anything is written: (genesis, keypair, node.toml text).
    `join`: a validator that is in no set yet (it joins by `validators.set`): its name
    and key must be no genesis validator's, and its peers are the validators it will
    follow (any names; at least one)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} exists and is not an empty folder; node init makes a "
                         f"new validator folder and never changes one")
    try:
        genesis = genesis_file.load(genesis_path)
    except genesis_file.GenesisError as error:
        raise UsageError(f"--genesis: {error}") from None
    try:
        keypair = keys.read_key_file(key_path)
    except keys.KeyFileError as error:
        raise UsageError(f"--key: {error}") from None
    names = [v.name for v in genesis.validators]
    if join:
        return genesis, keypair, _joining(genesis, keypair, name, peers, listen, gateway)
    if name not in names:
        raise UsageError(f"--name: {name!r} is not a validator of the genesis "
                         f"({', '.join(names)})")
    expected = genesis.validators[names.index(name)].key
    if keypair.public != expected:
        owners = [v.name for v in genesis.validators if v.key == keypair.public]
        whose = (f"it is the key of validator {owners[0]!r}" if owners
                 else "it is the key of no validator of the genesis")
        raise UsageError(f"--key: {key_path} is not the key of validator {name!r} in the "
                         f"genesis ({whose}; the genesis has {expected.hex()}, the key "
                         f"file's public key is {keypair.public.hex()})")
    if name in peers:
        raise UsageError(f"--peers: {name} is this validator itself (its own address is "
                         f"--listen)")
    unknown = [p for p in peers if p not in names]
    if unknown:
        raise UsageError(f"--peers: {unknown[0]} is not a validator of the genesis "
                         f"({', '.join(names)})")
    missing = [n for n in names if n != name and n not in peers]
    if missing:
        raise UsageError(f"--peers: the address of {', '.join(missing)} is missing (every "
                         f"other validator of the genesis needs one)")
    _address(listen, "--listen")
    _address(gateway, "--gateway")
    ordered = {n: peers[n] for n in names if n != name}   # genesis order, as network init
    return genesis, keypair, node_config.render(name, listen, gateway, ordered)


def _joining(genesis, keypair, name: str, peers: dict[str, str], listen: str,
             gateway: str) -> str:
    taken = {v.name: v.key for v in genesis.validators}
    if name in taken:
        raise UsageError(f"--name: {name!r} is a validator of the genesis already; --join "
                         f"is for a validator that is in no set yet")
    if keypair.public in taken.values():
        raise UsageError("--key: it is the key of a validator of the genesis; a validator "
                         "that joins has a key of its own")
    if name in peers:
        raise UsageError(f"--peers: {name} is this validator itself (its own address is "
                         f"--listen)")
    if not peers:
        raise UsageError("--peers: a validator that joins needs the address of at least "
                         "one validator of the set in force")
    _address(listen, "--listen")
    _address(gateway, "--gateway")
    return node_config.render(name, listen, gateway, peers)


def init(target: Path, name: str, genesis_path: Path, key_path: Path,
         peers: dict[str, str], listen: str = DEFAULT_LISTEN,
         gateway: str = DEFAULT_GATEWAY, join: bool = False) -> genesis_file.Genesis:
    genesis, keypair, text = plan(target, name, genesis_path, key_path, peers, listen,
                                  gateway, join)
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{parent} does not exist")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.node-init-", dir=parent))
    except OSError as error:
        raise UsageError(f"cannot write in {parent}: {error.strerror}") from None
    try:
        keys.write_key_file(staging / KEY_NAME, keypair)
        shutil.copyfile(genesis_path, staging / GENESIS_NAME)
        (staging / node_config.CONFIG_NAME).write_text(text, encoding="utf-8")
        # what node run will read: the settings and the roster, once more from disk
        settings = node_config.load(staging)
        node_config.check_roster(settings, [v.name for v in genesis.validators], join=join,
                                 needed=[] if join else None)
        if genesis_file.load(staging / GENESIS_NAME).hash() != genesis.hash():
            raise UsageError(f"{genesis_path} changed while it was copied")
        os.rename(staging, target)  # replaces an empty DIR; fails on a non-empty one
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, (OSError, node_config.ConfigError, keys.KeyFileError)):
            raise UsageError(f"cannot make {target}: {error}") from None
        raise
    return genesis


def run(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    genesis = init(target, args.name, Path(args.genesis), Path(args.key),
                   parse_peers(args.peers), args.listen, args.gateway, args.join)
    print(f"made validator folder {target} for {args.name}")
    print(f"genesis {genesis.hash().hex()} (check it against the hash the partners agreed)")
    print(f"peer port {args.listen}, gateway {args.gateway}; "
          f"start it with: stadsmunt node run {target}")
    return 0


def register(sub) -> None:
    """`init` under `stadsmunt node` (ops/node_cmd.py passes its subcommands)."""
    parser = sub.add_parser("init", help="make one validator's folder from its key, the "
                                         "genesis and the other validators' addresses",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example:\n"
                                   "  stadsmunt node init /srv/stadsmunt/validator --name cbs \\\n"
                                   "      --genesis genesis.json --key validator.key \\\n"
                                   "      --peers municipality=10.0.1.10:7100,"
                                   "brightlands=10.0.3.10:7100,vng=10.0.4.10:7100 \\\n"
                                   "      --listen 0.0.0.0:7100 --gateway 127.0.0.1:7101\n"
                                   "  stadsmunt node init /srv/stadsmunt/cotown --name cotown \\\n"
                                   "      --genesis genesis.json --key cotown.key --join \\\n"
                                   "      --peers municipality=10.0.1.10:7100,cbs=10.0.2.10:7100")
    parser.add_argument("dir", help="the folder to make (must not exist, or be empty)")
    parser.add_argument("--name", required=True, help="this validator's name in the genesis")
    parser.add_argument("--genesis", required=True, metavar="FILE",
                        help="the agreed genesis file")
    parser.add_argument("--key", required=True, metavar="FILE",
                        help="this validator's key file (stadsmunt keygen)")
    parser.add_argument("--peers", required=True, metavar="NAME=HOST:PORT,...",
                        help="every other validator's peer address, by its name")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"where the other validators reach this one "
                             f"(default {DEFAULT_LISTEN})")
    parser.add_argument("--gateway", default=DEFAULT_GATEWAY, metavar="HOST:PORT",
                        help=f"the HTTP API for apps (default {DEFAULT_GATEWAY})")
    parser.add_argument("--join", action="store_true",
                        help="a validator that joins a running chain (a validators.set "
                             "will add it): its name and key are no genesis validator's, "
                             "--peers names the validators it follows")
    parser.set_defaults(run=run)
