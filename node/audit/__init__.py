"""The audit: replay a chain from genesis and trust no source (docs/audit.md).

    audit(sources, genesis=None, pin=None, jobs=None, progress=None) -> Report

`sources` are opened with `open_source`; several are read in step and compared height by
height. The report holds the summary and the governance decisions, or the first failure
(height and plain reason), and the warnings (a source that is behind; a genesis trusted
from the source); and what an auditor's report header names: the chain and city, the
sources and where they ended or differed, the first and last block time.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from node.audit.engine import AuditFailure, Replay
from node.audit.sources import Broken, Unreachable, genesis_from_canonical, open_source
from node.audit.verify import Verifier
from node.genesis import GENESIS_TAG, Genesis

__all__ = ["AuditFailure", "Broken", "Report", "Unreachable", "audit", "compare",
           "open_source", "resolve_genesis"]


@dataclass
class Report:
    genesis_hash: str = ""
    trusted: bool = False          # no pin: the genesis was taken from the source
    summary: dict | None = None
    failure: AuditFailure | None = None
    warnings: list[str] = field(default_factory=list)
    # the enacted and failed proposals, in order (node/audit/governance.py); None on failure
    decisions: list[dict] | None = None
    chain: str = ""
    city: str = ""
    sources: list[str] = field(default_factory=list)
    ends: dict[str, int] = field(default_factory=dict)   # a source that is behind: its end
    differ: int | None = None      # the height where two sources hold different blocks
    times: list[int] = field(default_factory=list)       # first and last block time, ms

    def to_json(self) -> dict:
        return {"ok": self.failure is None,
                "failure": None if self.failure is None else
                {"height": self.failure.height, "reason": self.failure.reason},
                "genesis": self.genesis_hash, "genesis_trusted": self.trusted,
                "warnings": list(self.warnings), "summary": self.summary,
                "governance": self.decisions}


def _source_hash(source) -> bytes:
    return hashlib.sha256(GENESIS_TAG + source.genesis_bytes).digest()


def resolve_genesis(sources, genesis: Genesis | None, pin: bytes | None) -> Genesis:
    """The genesis to replay from: the given file, else the first source's. Every source
    must hold that genesis, and it must match the pinned hash; else AuditFailure(0)."""
    if genesis is None:
        holder = sources[0]     # every kind of source gives its genesis bytes
        try:
            genesis = genesis_from_canonical(holder.genesis_bytes)
        except Broken as broken:
            raise AuditFailure(0, f"{holder.name}: {broken.reason}") from None
    expected = genesis.hash()
    if pin is not None and expected != pin:
        raise AuditFailure(0, f"the genesis hash is {expected.hex()}, not the pinned "
                              f"{pin.hex()}: this is another chain")
    for source in sources:
        held = _source_hash(source)
        if held != expected:
            raise AuditFailure(0, f"{source.name} holds another genesis ({held.hex()}) than "
                                  f"{expected.hex()}")
    return genesis


def compare(sources, report: Report):
    """The blocks of the first source that has each height, after comparing it with every
    other source's block at that height; an AuditFailure in place of the first block where
    sources differ or one does not parse. A source that ends early is a warning. Notes in
    `report` where sources end or differ, and the first and last block time (a null batch,
    time 0, has none)."""
    streams = [(s, s.blocks()) for s in sources]
    height = 0
    while streams:
        height += 1
        got = []
        for source, stream in streams:
            try:
                got.append((source, stream, next(stream, None)))
            except Broken as broken:
                yield AuditFailure(broken.height, broken.reason)
                return
        have = [g for g in got if g[2] is not None]
        if not have:
            return
        lead_source, _, lead = have[0]
        for source, _, block in have[1:]:
            same = (block.height == lead.height and block.hash == lead.hash
                    and block.envelopes == lead.envelopes
                    and (block.results is None or lead.results is None
                         or block.results == lead.results))
            if not same:
                report.differ = height
                yield AuditFailure(height, f"{lead_source.name} and {source.name} hold "
                                           f"different blocks at height {height}")
                return
        for source, _, block in got:
            if block is None:
                report.ends[source.name] = height - 1
                report.warnings.append(f"{source.name} is behind: it ends at height "
                                       f"{height - 1} while another source goes on")
        streams = [(s, st) for s, st, _ in have]
        if lead.time_ms:
            report.times = [report.times[0] if report.times else lead.time_ms, lead.time_ms]
        yield lead


def audit(sources, genesis: Genesis | None = None, pin: bytes | None = None,
          jobs: int | None = None, progress=None, on_block=None) -> Report:
    """Raises Unreachable when a gateway stops answering mid-way."""
    report = Report(trusted=genesis is None and pin is None,
                    sources=[source.name for source in sources])
    try:
        chosen = resolve_genesis(sources, genesis, pin)
    except AuditFailure as failure:
        report.failure = failure
        return report
    report.genesis_hash = chosen.hash().hex()
    report.chain, report.city = chosen.chain, chosen.city
    if report.trusted:
        report.warnings.append(f"the genesis ({report.genesis_hash}) was taken from the "
                               f"source; pin it with --genesis-hash to know it is the right "
                               f"chain")
    with Verifier(jobs) as verifier:
        replay = Replay(chosen, verifier, progress, on_block)
        try:
            report.summary = replay.run(compare(sources, report))
            report.decisions = replay.governance.decisions
        except AuditFailure as failure:
            report.failure = failure
    return report
