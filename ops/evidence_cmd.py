"""`stadsmunt node evidence FOLDER`: the evidence a validator kept of its partners' faults
(node/evidence.py), one line each, or the kept JSON lines with --json.

Each message is shown decoded (its kind, view, height and digest); the hex in the JSON
is its exact wire bytes, which a partner can decode (consensus/wire.py) and whose
signature anyone can check against the genesis keys. A bad catch-up answer shows the
refused block's height and view, and why it was refused.
"""
from __future__ import annotations

import argparse
import json

from consensus import wire
from consensus.faults import BAD_CATCH_UP
from consensus.messages import Commit, PrePrepare, Prepare, ViewChange
from node import config as node_config, evidence
from node.block import BlockRecord
from ops.client_rows import city_time, table
from ops.errors import CheckFailed, UsageError

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def describe(hexed: str, kind: str | None = None) -> str:
    """A message of the evidence in a few words (of a bad catch-up answer: the block)."""
    if kind == BAD_CATCH_UP:
        try:
            record = BlockRecord.decode(bytes.fromhex(hexed))
        except Exception:
            return "(a block that does not decode)"
        return f"block {record.height!r} view {record.view!r}"
    try:
        message = wire.decode(bytes.fromhex(hexed), MAX_MESSAGE_BYTES)
    except Exception:
        return "(a message that does not decode)"
    name = type(message).__name__
    if isinstance(message, (PrePrepare, Prepare, Commit)):
        return (f"{name} view {message.view} height {message.height} "
                f"digest {message.digest.hex()[:16]}")
    if isinstance(message, ViewChange):
        return f"{name} to view {message.new_view} from replica {message.replica}"
    return name


def run(args: argparse.Namespace) -> int:
    try:
        settings = node_config.load(args.folder)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None
    try:
        items = evidence.read(settings.data_dir)
    except (OSError, ValueError) as error:
        raise CheckFailed(str(error)) from None
    if args.json:
        for item in items:
            print(json.dumps(item, sort_keys=True))
        return 0
    if not items:
        print("No evidence: no partner sent anything no correct validator sends.")
        return 0
    rows = [[city_time(item.get("time_ms", 0)), item.get("validator"), item.get("kind"),
             "; ".join([describe(m, item.get("kind")) for m in item.get("messages", [])]
                       + ([item["detail"]] if item.get("detail") else []))]
            for item in items]
    print(table(["time", "validator", "kind", "messages"], rows))
    return 0


def register(sub) -> None:
    parser = sub.add_parser(
        "evidence", help="list the faults of partner validators this validator kept "
                         "evidence of",
        description="Lists what this validator's partners sent that no correct validator\n"
                    "sends (a bad signature on their own message, two signed messages for\n"
                    "one view and height), with the messages that show it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  stadsmunt node evidence /srv/stadsmunt/validator\n"
               "  stadsmunt node evidence /srv/stadsmunt/validator --json")
    parser.add_argument("folder", help="the validator's folder (holds node.toml)")
    parser.add_argument("--json", action="store_true",
                        help="the kept JSON lines, messages as hex of their wire bytes")
    parser.set_defaults(run=run)
