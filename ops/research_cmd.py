"""`stadsmunt research keygen|export|report`: the pseudonymised dataset for CBS's research
and its indicators (docs/research.md).

`export SOURCE --out DIR --pseudonym-key FILE` verifies the log as `stadsmunt audit` does
(any source the audit takes) and writes the months that have closed since the last run,
every member key replaced by its pseudonym under the key in FILE; nothing is written
unless the whole log passes. `keygen --out FILE` makes a pseudonym key (32 random bytes
as hex, readable by its owner only). `report DIR` runs the indicators with DuckDB: one
HTML file, or `--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path

import msgpack

from node.audit import AuditFailure, Unreachable, audit, resolve_genesis
from node.genesis import GenesisError, load as load_genesis
from node.keys import KeyFileError, read_key_file, write_secret_file
from ops.audit_cmd import _pin, opened, safe
from ops.errors import CheckFailed, UsageError
from research.dataset import FLUSH_ROWS, DatasetError, Writer
from research.rows import KEY_BYTES, Fold, key_fingerprint

MAX_KEY_FILE_BYTES = 4096


def read_pseudonym_key(path: str) -> bytes:
    """A key file of `keygen`: hex text of at least 32 bytes, nothing else."""
    try:
        raw = Path(path).read_bytes()[:MAX_KEY_FILE_BYTES + 1]
    except OSError as error:
        raise UsageError(f"{path}: cannot read the pseudonym key: "
                         f"{error.strerror or error}") from None
    text = raw.decode("ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(raw) > MAX_KEY_FILE_BYTES or len(key) < KEY_BYTES:
        raise UsageError(f"{path} is not a pseudonym key: {KEY_BYTES} bytes or more as hex "
                         "(make one with `stadsmunt research keygen`)")
    return key


def run_keygen(args: argparse.Namespace) -> int:
    try:
        write_secret_file(args.out, secrets.token_bytes(KEY_BYTES))
    except KeyFileError as error:
        raise UsageError(str(error)) from None
    print(f"wrote a pseudonym key to {args.out}: keep it at CBS, never beside the dataset")
    return 0


def run_export(args: argparse.Namespace) -> int:
    key = read_pseudonym_key(args.pseudonym_key)
    try:
        token_key = read_key_file(args.key) if args.key else None
        genesis = load_genesis(args.genesis) if args.genesis else None
    except (KeyFileError, GenesisError) as error:
        raise UsageError(str(error)) from None
    out = Path(args.out)
    source = opened(args.source, token_key)
    writer = None
    try:
        writer, added, through = _export(source, genesis, _pin(args), key, out, args.jobs)
    except Unreachable as error:
        raise UsageError(str(error)) from None
    except DatasetError as error:
        raise UsageError(str(error)) from None
    finally:
        source.close()
    if added:
        print(f"wrote {len(added)} month(s) to {out}: {', '.join(added)} "
              f"(the log through height {through})")
    else:
        print(f"no month closed since the last run; {out} holds "
              f"{', '.join(writer.manifest['months']) or 'no month yet'}")
    return 0


def _export(source, genesis, pin, key: bytes, out: Path, jobs: int | None = None):
    """Audits the source, folding each block as it holds; commits only if all holds."""
    try:
        chosen = resolve_genesis([source], genesis, pin)
    except AuditFailure as failure:
        raise CheckFailed(f"{source.name}: {failure.reason}") from None
    writer = Writer(out, chosen.chain, chosen.hash().hex(), key_fingerprint(key))
    roles = {admin: "admin" for admin in chosen.admins}
    roles.update((steward, "steward") for o in chosen.organisations for steward in o.stewards)
    fold = Fold(key, writer.months, chosen.policies, roles)

    def write(month: str, events: list[tuple], spends: list[tuple]) -> None:
        writer.rows("events", month, events)
        writer.rows("spends", month, spends)

    def on_block(block, encoded: list[bytes]) -> None:
        results = [msgpack.unpackb(r, raw=False) for r in encoded]
        month = fold.block(block.height, block.time_ms, results)
        if month is not None:
            write(month, *fold.take())
            writer.close_month(month)
        if fold.buffered() >= FLUSH_ROWS:
            write(*fold.flush())
    try:
        report = audit([source], chosen, None, jobs, None, on_block)
        if report.failure is not None:
            raise CheckFailed(f"{source.name} fails the audit at height "
                              f"{report.failure.height}: {report.failure.reason}; nothing "
                              "was written")
        added = writer.commit(fold.closed_through, *fold.snapshot)
    except BaseException:
        writer.abandon()
        raise
    return writer, added, fold.closed_through


def run_report(args: argparse.Namespace) -> int:
    from research import report
    folder = Path(args.dataset)
    try:
        found = report.compute(folder)
        text = (json.dumps({"dataset": report.read_manifest(folder), "indicators": found},
                           indent=2) + "\n" if args.json else report.render(folder, found))
    except DatasetError as error:
        raise UsageError(str(error)) from None
    if args.out is None:
        print(text, end="")
        return 0
    out = Path(args.out)
    partial = out.with_name(out.name + ".part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out)
    print(f"wrote the indicators of {folder} to {out}")
    return 0


def register(commands) -> None:
    parser = commands.add_parser("research", help="the pseudonymised dataset for research "
                                                  "(docs/research.md)",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n"
                                        "  stadsmunt research keygen --out cbs.key\n"
                                        "  stadsmunt research export chain.export --out "
                                        "heerlen-dataset --pseudonym-key cbs.key\n"
                                        "  stadsmunt research report heerlen-dataset --out "
                                        "heerlen.html")
    sub = parser.add_subparsers(dest="research_command", metavar="COMMAND", required=True)
    keygen = sub.add_parser("keygen", help="make a pseudonym key",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example:\n  stadsmunt research keygen --out cbs.key")
    keygen.add_argument("--out", required=True, metavar="FILE",
                        help="the key file to write (never overwritten)")
    keygen.set_defaults(run=safe(run_keygen))
    export = sub.add_parser(
        "export", help="verify a log and write its closed months as Parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  stadsmunt research keygen --out cbs-pseudonym.key\n"
               "  stadsmunt research export chain.export --out heerlen-dataset "
               "--pseudonym-key cbs-pseudonym.key")
    export.add_argument("source", metavar="SOURCE",
                        help="a validator's folder, a gateway URL or an export file")
    export.add_argument("--out", required=True, metavar="DIR",
                        help="the dataset's folder (made, or extended by the months that "
                             "closed since the last run)")
    export.add_argument("--pseudonym-key", required=True, metavar="FILE",
                        help="the key the pseudonyms are made with (`research keygen`)")
    export.add_argument("--key", metavar="FILE",
                        help="key file whose read token is sent to a gateway")
    export.add_argument("--genesis", metavar="FILE", help="the genesis.json to trust")
    export.add_argument("--genesis-hash", metavar="HEX", help="the genesis hash to trust")
    export.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="processes that check signatures (default: one per core)")
    export.set_defaults(run=safe(run_export))
    report = sub.add_parser(
        "report", help="the participation indicators of a dataset: one HTML file with "
                       "tables and plots, or --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  stadsmunt research report heerlen-dataset --out heerlen.html\n"
               "  stadsmunt research report heerlen-dataset --json")
    report.add_argument("dataset", metavar="DIR", help="a dataset made by `research export`")
    report.add_argument("--out", metavar="FILE", help="the file to write (else standard "
                                                      "output)")
    report.add_argument("--json", action="store_true", help="the numbers as JSON")
    report.set_defaults(run=safe(run_report))
