"""`stadsmunt genesis`: build a chain's genesis from the partners' PUBLIC keys, so that no
one ever holds another partner's private key. Each partner runs `stadsmunt keygen` on its
own machine and sends only the printed public key."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import chaincode
from chaincode.policies import coming_year_unset
from node import genesis as genesis_file
from ops.errors import CheckFailed, UsageError

HEX_KEY = re.compile(r"[0-9a-f]{64}")


def _key(text: str, what: str) -> bytes:
    if not HEX_KEY.fullmatch(text):
        raise UsageError(f"{what}: a public key is 64 lowercase hex characters, got {text!r}")
    return bytes.fromhex(text)


def _validator(text: str) -> genesis_file.GenesisValidator:
    """NAME=KEY (the organisation named as the validator) or NAME=KEY@ORGANISATION."""
    name, sep, rest = text.partition("=")
    key, at, organisation = rest.partition("@")
    if not sep or (at and not organisation):
        raise UsageError(f"--validator takes NAME=PUBLICKEY[@ORGANISATION], got {text!r}")
    return genesis_file.GenesisValidator(name, _key(key, f"validator {name}"),
                                         organisation or name)


def _organisations(texts: list[str]) -> tuple[genesis_file.Organisation, ...]:
    """ID=KEY[,KEY...], one per --organisation; an id given twice adds stewards."""
    stewards: dict[str, list[bytes]] = {}
    for text in texts:
        org, sep, rest = text.partition("=")
        if not sep or not rest:
            raise UsageError(f"--organisation takes ID=STEWARDKEY[,STEWARDKEY...], got {text!r}")
        stewards.setdefault(org, []).extend(_key(k, f"organisation {org}: steward")
                                            for k in rest.split(","))
    return tuple(genesis_file.Organisation(org, tuple(keys)) for org, keys in stewards.items())


def _thresholds(texts: list[str]) -> dict[str, int]:
    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not value.isdigit():
            raise UsageError(f"--threshold takes CLASS=N, got {text!r}")
        out[name] = int(value)
    return out


def _policies(path: str | None) -> tuple[dict, ...] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"{path}: cannot read a JSON list of policies ({error})") from None
    if type(data) is not list:
        raise UsageError(f"{path}: expected a JSON list of policies")
    return tuple(data)


def run(args: argparse.Namespace) -> int:
    if Path(args.out).exists():
        raise UsageError(f"{args.out} exists; refusing to overwrite a genesis")
    fields = dict(chain=args.chain, city=args.city, coin_name=args.coin,
                  coin_symbol=args.symbol,
                  validators=tuple(_validator(v) for v in args.validator),
                  admins=tuple(_key(a, "admin") for a in args.admin),
                  rules_version=args.rules, checkpoint_interval=args.checkpoint_interval)
    fields["organisations"] = _organisations(args.organisation)
    if not fields["organisations"]:
        raise UsageError("give each partner organisation with its stewards' public keys: "
                         "--organisation ID=KEY[,KEY...] (repeat)")
    policies = _policies(args.policies)
    if policies is not None:
        fields["policies"] = policies
    if args.threshold or args.recovery_delay_hours is not None:
        ids = [o.id for o in fields["organisations"]]
        if len(ids) > chaincode.MAX_ORGANISATIONS:
            raise CheckFailed(f"genesis refused: at most {chaincode.MAX_ORGANISATIONS} "
                              "organisations")
        law = chaincode.default_constitution(ids)
        law["thresholds"].update(_thresholds(args.threshold))
        if args.recovery_delay_hours is not None:
            law["recovery_delay_ms"] = args.recovery_delay_hours * 3_600_000
        fields["constitution"] = law
    try:
        genesis = genesis_file.Genesis(**fields)
    except genesis_file.GenesisError as error:
        raise CheckFailed(f"genesis refused: {error}") from None
    genesis.save(args.out)
    print(genesis.hash().hex())
    coming = coming_year_unset([p["year"] for p in genesis.policies], time.time_ns() // 10**6)
    if coming is not None:
        print(f"warning: this genesis has no cap policy for {coming}; the partners must "
              "set one (gov.propose policy.set) before 1 January", file=sys.stderr)
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "genesis", help="build a genesis from the partners' public keys; prints its hash",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n"
               "  stadsmunt genesis --chain heerlen --city Heerlen --coin 'Heerlens Heitje' \\\n"
               "      --symbol HHT --organisation municipality=3f2a...c9,7be0...11 \\\n"
               "      --organisation cbs=9d41...07 --organisation brightlands=c0ed...a2 \\\n"
               "      --organisation vng=5be1...0f --validator municipality=41b6...f6 \\\n"
               "      --validator cbs=d82b...4a --validator brightlands=5e72...a9 \\\n"
               "      --validator vng=6865...b4 --admin 1c0b...e3 --out genesis.json")
    parser.add_argument("--chain", required=True, help="chain id, [a-z0-9-]{1,32}")
    parser.add_argument("--city", required=True, help="the city, e.g. Heerlen")
    parser.add_argument("--coin", required=True, help="the coin's name, e.g. 'Heerlens Heitje'")
    parser.add_argument("--symbol", required=True, help="the coin's symbol, e.g. HHT")
    parser.add_argument("--organisation", action="append", default=[], metavar="ID=KEY[,KEY]",
                        help="a partner organisation and its stewards' public keys "
                             "(repeat; at least one)")
    parser.add_argument("--validator", action="append", default=[],
                        metavar="NAME=KEY[@ORG]",
                        help="a validator, in order, and its organisation (default: the "
                             "organisation named as the validator); repeat: 1, or 4 and more")
    parser.add_argument("--threshold", action="append", default=[], metavar="CLASS=N",
                        help="a constitution threshold other than the default, e.g. "
                             "member.merchant=2 (repeat)")
    parser.add_argument("--recovery-delay-hours", type=int, metavar="H",
                        help="delay of an admin's recovery of a lost key (default 72)")
    parser.add_argument("--admin", action="append", default=[], metavar="KEY",
                        help="a first admin's public key (repeat)")
    parser.add_argument("--policies", metavar="FILE",
                        help="JSON list of yearly cap policies (default: 2021-2026 of the "
                             "Dutch tax authority)")
    parser.add_argument("--rules", type=int, default=1, help="rules version (default 1)")
    parser.add_argument("--checkpoint-interval", type=int, default=64, metavar="K",
                        help="blocks between checkpoints (default 64)")
    parser.add_argument("--out", required=True, help="the genesis file to write")
    parser.set_defaults(run=run)
