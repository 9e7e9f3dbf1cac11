"""`stadsmunt export SOURCE --out FILE`: the certified log with its genesis as one portable
file for auditors (format in docs/audit.md), written as a stream: memory stays flat
however long the log. From a validator's folder (or another export) the blocks are copied
as stored; from a gateway, whose results are JSON, each block is re-executed and checked
as the audit does, and its results are written as the chaincode encodes them. It prints
the file's SHA-256 and the head (height and hash) for the auditor to record; on a terminal
it shows the blocks written on stderr as it goes."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from node.audit import Unreachable, audit
from node.audit.sources import Broken, GatewaySource
from node.export import ExportWriter, SourceBlock
from node.genesis import GENESIS_TAG, GenesisError, load as load_genesis
from node.keys import KeyFileError, read_key_file
from ops.audit_cmd import opened, safe
from ops.errors import CheckFailed, UsageError


class Written:
    """Writes blocks to the export and, when stderr is a terminal, shows how many."""

    def __init__(self, writer: ExportWriter):
        self.writer = writer
        self.shown = 0.0 if sys.stderr.isatty() else None

    def block(self, block: SourceBlock) -> None:
        self.writer.block(block)
        if self.shown is not None and time.monotonic() - self.shown >= 0.2:
            self.shown = time.monotonic()
            self.show()

    def show(self) -> None:
        sys.stderr.write(f"\rexport: {self.writer.blocks} blocks written")
        sys.stderr.flush()

    def end(self) -> None:
        if self.shown is not None:
            self.show()
            sys.stderr.write("\n")


def _copy(source, writer: Written) -> None:
    for block in source.blocks():
        writer.block(block)


def _checked(source, genesis, writer: Written) -> None:
    def keep(block: SourceBlock, encoded: list[bytes]) -> None:
        writer.block(SourceBlock(block.height, block.view, block.time_ms, block.prev_hash,
                                 block.batch_digest, block.results_root, block.state_root,
                                 block.hash, block.envelopes, block.certificate,
                                 tuple(encoded), block.checkpoint))
    report = audit([source], genesis, None, None, None, keep)
    if report.failure is not None:
        raise CheckFailed(f"{source.name} fails the audit at height "
                          f"{report.failure.height}: {report.failure.reason}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        raise UsageError(f"{out} exists; refusing to overwrite it")
    key = genesis = None
    try:
        key = read_key_file(args.key) if args.key else None
        genesis = load_genesis(args.genesis) if args.genesis else None
    except (KeyFileError, GenesisError) as error:
        raise UsageError(str(error)) from None
    part = out.with_name(out.name + ".part")
    created = False
    source = opened(args.source, key)
    try:
        genesis_bytes = genesis.canonical() if genesis else source.genesis_bytes
        with open(part, "xb") as handle:
            created = True
            writer = ExportWriter(handle, genesis_bytes)
            written = Written(writer)
            if isinstance(source, GatewaySource):
                _checked(source, genesis, written)
            else:
                _copy(source, written)
            written.end()
            writer.finish(genesis.hash() if genesis else _genesis_hash(genesis_bytes))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, out)
    except Unreachable as error:
        raise UsageError(str(error)) from None
    except Broken as broken:
        raise CheckFailed(f"height {broken.height}: {broken.reason}") from None
    except FileExistsError:
        raise UsageError(f"{part} exists: another export is writing it, or remove it") from None
    finally:
        source.close()
        if created and part.exists():
            part.unlink()     # a failed export leaves no half file behind
    height, head_hash = writer.head
    print(f"exported {writer.blocks} blocks to {out}")
    print(f"  file sha256   {writer.sha256}")
    print(f"  head height   {height}")
    print(f"  head hash     {head_hash.hex()}")
    return 0


def _genesis_hash(genesis_bytes: bytes) -> bytes:
    return hashlib.sha256(GENESIS_TAG + genesis_bytes).digest()


def register(commands) -> None:
    parser = commands.add_parser("export", help="write the certified log with its genesis to "
                                                "one file for auditors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n"
                                        "  stadsmunt export /srv/stadsmunt/validator "
                                        "--out chain.export\n"
                                        "  stadsmunt export http://127.0.0.1:7101 --key "
                                        "auditor.key --out chain.export")
    parser.add_argument("source", metavar="SOURCE",
                        help="a validator's folder (or its data folder), a gateway URL or an "
                             "export file")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--key", metavar="FILE", help="key file whose read token is sent to "
                                                      "a gateway")
    parser.add_argument("--genesis", metavar="FILE",
                        help="a genesis.json to check the source against (else the "
                        "source's own)")
    parser.set_defaults(run=safe(run))
