"""`stadsmunt audit SOURCE...`: replay a chain from genesis and check everything
docs/audit.md lists, trusting none of the sources; the report ends with the governance
decisions of the audited span. Exit 0 when everything holds, 1 with the first height and
a plain reason when not, 2 for bad usage or a source that cannot be reached. The text
report opens with a header an auditor can attach to an audit file; --report FILE also
writes the whole report as one self-contained HTML file for that audit file."""
from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from chaincode.periods import utc_offset_ms
from node.audit import AuditFailure, Report, Unreachable, audit, open_source
from node.audit.sources import Broken
from node.genesis import GenesisError, load as load_genesis
from node.keys import KeyFileError, read_key_file
from ops import audit_report
from ops.errors import CheckFailed, UsageError


def cents(amount: int) -> str:
    return f"{amount // 100:,}.{amount % 100:02d}"


class Progress:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int | None):
        self.total = total
        self.last = 0.0
        self.started = time.monotonic()

    def __call__(self, height: int, txs: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        rate = txs / max(now - self.started, 1e-9)
        if self.total:
            done = min(height / self.total, 1.0)
            bar = "#" * int(done * 30)
            line = f"\raudit [{bar:<30}] {height}/{self.total} blocks, {rate:,.0f} tx/s"
        else:
            line = f"\raudit: {height} blocks, {rate:,.0f} tx/s"
        sys.stderr.write(line)
        sys.stderr.flush()

    def end(self) -> None:
        sys.stderr.write("\n")


def _pin(args) -> bytes | None:
    if args.genesis_hash is None:
        return None
    text = args.genesis_hash.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise UsageError("--genesis-hash takes 64 hex characters")
    return bytes.fromhex(text)


def tool_version() -> str:
    """The installed package's version, else setup.cfg's (a checkout run in place)."""
    try:
        return importlib.metadata.version("stadsmunt")
    except importlib.metadata.PackageNotFoundError:
        config = configparser.ConfigParser(interpolation=None)
        config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
        return config.get("metadata", "version", fallback="unknown")


def city_time(ms: int) -> str:
    """A time in ms since the epoch as Europe/Amsterdam local time, CET or CEST (the
    chaincode's own summer-time rule, not the host's time-zone files)."""
    offset = utc_offset_ms(ms)
    local = datetime.fromtimestamp((ms + offset) / 1000, timezone.utc)
    zone = "CEST" if offset == 2 * 3_600_000 else "CET"
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


def _sources_line(report) -> str:
    names = ", ".join(report.sources)
    if len(report.sources) < 2:
        return names
    if report.differ is not None:
        return f"{names}: they differ at height {report.differ}"
    behind = "".join(f"; {name} ends at height {end}" for name, end in report.ends.items())
    agree = "height they share" if report.failure is None else "height compared"
    return f"{names}: identical at every {agree}{behind}"


def header_fields(report, args, audited_ms: int) -> list[tuple[str, str]]:
    """Who audited what, when, with which tool: the fields an audit file keeps, as
    (label, value) pairs; the text report prints them a line each, --report as a table."""
    if args.genesis is not None:
        pinned = f"pinned by --genesis {args.genesis}"
    elif args.genesis_hash is not None:
        pinned = "pinned by --genesis-hash"
    else:
        pinned = "not pinned: taken from the source"
    fields = [("chain id", report.chain or "-"), ("city", report.city or "-"),
              ("genesis hash", f"{report.genesis_hash or '-'} ({pinned})"),
              ("sources", _sources_line(report))]
    if report.summary is not None:
        blocks = report.summary["blocks"]
        times = " .. ".join(city_time(ms) for ms in report.times)
        fields += [("block span", f"1..{blocks}" if blocks else "none (genesis only)"),
                   ("time span", f"{times} (Europe/Amsterdam)" if times else
                    "none (no block carries a time)"),
                   ("head hash", report.summary["head"])]
    fields += [("audited at", f"{city_time(audited_ms)} (Europe/Amsterdam)"),
               ("tool", f"stadsmunt {tool_version()}")]
    return fields


def _print_header(header: list[tuple[str, str]], out) -> None:
    print("Stadsmunt audit", file=out)
    for label, value in header:
        print(f"  {label:<13} {value}", file=out)


def _print_text(report, args, header: list[tuple[str, str]]) -> None:
    out = sys.stdout
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_header(header, out)
    if report.failure is not None:
        print(f"audit FAILED at height {report.failure.height}: {report.failure.reason}",
              file=out)
        return
    s = report.summary
    members = ", ".join(f"{n} {role}" for role, n in s["members"].items()) or "none"
    print("audit passed: every check holds", file=out)
    print(f"  blocks        {s['blocks']} ({s['checkpoints']} with a checkpoint)", file=out)
    print(f"  transactions  {s['transactions']} ({s['ok']} ok, {s['rejected']} rejected)",
          file=out)
    print(f"  minted        {cents(s['minted'])}", file=out)
    print(f"  redeemed      {cents(s['redeemed'])}", file=out)
    print(f"  circulating   {cents(s['circulating'])}", file=out)
    print(f"  members       {members}", file=out)
    print(f"  tasks         {s['tasks']}", file=out)
    speed = f" in {s['seconds']} s ({s['tx_per_s']} tx/s)" if args.verbose else ""
    print(f"  signatures    {s['signatures']} checked{speed}", file=out)
    _print_decisions(report.decisions or [], out)


def _print_decisions(decisions: list[dict], out) -> None:
    """The enacted and failed proposals of the audited span, one line each."""
    print("Governance decisions", file=out)
    if not decisions:
        print("  none in this period", file=out)
        return
    for d in decisions:
        outcome = d["outcome"] if d["code"] is None else f"{d['outcome']} ({d['code']})"
        approvals = ", ".join(d["approvals"]) or "none"
        print(f"  height {d['height']}: {d['summary']}; proposed by {d['organisation']}, "
              f"approved by {approvals} (threshold {d['threshold']}): {outcome}", file=out)


def run(args: argparse.Namespace) -> int:
    if args.genesis is not None and args.genesis_hash is not None:
        raise UsageError("give --genesis or --genesis-hash, not both")
    pin = _pin(args)
    if args.report is not None:
        folder = Path(args.report).parent
        if Path(args.report).is_dir() or not folder.is_dir():
            raise UsageError(f"--report: {args.report} is a folder, or its folder does "
                             f"not exist")
    genesis = None
    if args.genesis is not None:
        try:
            genesis = load_genesis(args.genesis)
        except GenesisError as error:
            raise UsageError(f"--genesis: {error}") from None
    key = None
    if args.key is not None:
        try:
            key = read_key_file(args.key)
        except KeyFileError as error:
            raise UsageError(str(error)) from None
    sources = []
    try:
        for text in args.sources:
            sources.append(open_source(text, key))
        total = max((s.head_height or 0 for s in sources), default=0)
        progress = Progress(total) if sys.stderr.isatty() else None
        report = audit(sources, genesis, pin, args.jobs, progress)
        if progress is not None:
            progress.end()
    except Unreachable as error:
        raise UsageError(str(error)) from None
    except Broken as broken:
        report = Report(failure=AuditFailure(broken.height, broken.reason),
                        sources=list(args.sources))
    finally:
        for source in sources:
            source.close()
    if report.trusted and report.genesis_hash:
        print(f"genesis hash {report.genesis_hash} (trusted from the source, not pinned)",
              file=sys.stderr)
    header = header_fields(report, args, int(time.time() * 1000))
    if args.json:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_text(report, args, header)
    if args.report is not None:
        try:
            audit_report.write(args.report, audit_report.render(report, header,
                                                                args.verbose))
        except OSError as error:
            raise UsageError(f"--report: cannot write {args.report}: "
                             f"{error.strerror or error}") from None
        print(f"report written to {args.report}", file=sys.stderr)
    return 0 if report.failure is None else 1


def register(commands) -> None:
    parser = commands.add_parser(
        "audit", help="replay a chain from genesis and check every block, signature, "
                      "result and invariant", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n"
               "  stadsmunt audit /srv/stadsmunt/validator --genesis-hash 5fa13d81...58a4\n"
               "  stadsmunt audit chain.export http://127.0.0.1:7101 --key auditor.key "
               "\\\n      --genesis genesis.json --report audit-2027-03.html")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a gateway URL, a validator's folder (or its data folder) or an "
                             "export file; several are compared")
    parser.add_argument("--genesis", metavar="FILE", help="the genesis.json to trust")
    parser.add_argument("--genesis-hash", metavar="HEX", help="the genesis hash to trust")
    parser.add_argument("--key", metavar="FILE", help="key file whose read token is sent to "
                                                      "gateways")
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes checking signatures (default: every core)")
    parser.add_argument("--verbose", action="store_true",
                        help="also print the audit's speed (seconds, tx/s)")
    parser.add_argument("--report", metavar="FILE",
                        help="also write the report as one self-contained HTML file (to "
                             "attach to an audit file; replaced if it exists)")
    parser.set_defaults(run=safe(run))


def opened(text: str, key):
    """open_source for one command-line SOURCE: an unreachable one is bad usage (exit 2),
    a broken one a failed check (exit 1)."""
    try:
        return open_source(text, key)
    except Unreachable as error:
        raise UsageError(str(error)) from None
    except Broken as broken:
        raise CheckFailed(broken.reason) from None


def safe(command):
    """No traceback whatever the input: an unexpected error is a failed check (exit 1)."""
    def wrapped(args):
        try:
            return command(args)
        except (UsageError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:   # noqa: BLE001 - the contract: never a traceback
            print(f"stadsmunt: {args.command} stopped: {type(error).__name__}: {error}",
                  file=sys.stderr)
            return 1
    return wrapped
