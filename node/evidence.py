"""Evidence of partners' faults: what this validator can show about another that no
correct validator does (consensus/faults.py), kept, counted and said by name.

Each fault is appended, as one JSON line, to `DATA/evidence.jsonl`: the time, the
partner's name, the kind, and each message that shows it as the hex of its wire bytes
(consensus/wire.py), so that anyone with the genesis can decode it and check the
signatures (equivocation: two messages, both validly signed); a bad catch-up answer
keeps the refused block's bytes (node/block.py BlockRecord) and the reason (`detail`). At most `kept_per_kind`
records per partner and kind are written in a process's lifetime (the count goes on);
the file is read by `stadsmunt node evidence DIR`. Counts since the process started are
in the status and /metrics (`stadsmunt_peer_faults`), and each partner and kind is
logged (`peer_fault`) the first time and then at most once a minute with the count.
"""
from __future__ import annotations

import json
from pathlib import Path

import structlog

from consensus import wire
from consensus.faults import Fault

log = structlog.get_logger("stadsmunt.node")

FILE_NAME = "evidence.jsonl"
LOG_EVERY_MS = 60_000
MAX_LINE_BYTES = 64 * 1024 * 1024   # a line read back is at most this (two big messages)


class Evidence:
    def __init__(self, data_dir: Path, names: list[str], kept_per_kind: int = 16):
        self.path = Path(data_dir) / FILE_NAME
        self.names, self.kept_per_kind = names, kept_per_kind
        self.counts: dict[str, dict[str, int]] = {}     # partner -> kind -> faults seen
        self._logged: dict[tuple[str, str], tuple[int, int]] = {}   # -> (at ms, count then)

    def record(self, fault: Fault, now_ms: int) -> None:
        name = self.names[fault.peer]
        kinds = self.counts.setdefault(name, {})
        count = kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        if count <= self.kept_per_kind:
            line = {"time_ms": now_ms, "validator": name, "kind": fault.kind,
                    "messages": [(m if type(m) is bytes else wire.encode(m)).hex()
                                 for m in fault.evidence]}
            if fault.detail:
                line["detail"] = fault.detail
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
        at, logged = self._logged.get((name, fault.kind), (None, 0))
        if at is None or now_ms - at >= LOG_EVERY_MS:
            log.warning("peer_fault", validator=name, kind=fault.kind, count=count,
                        since_last_line=count - logged, evidence=str(self.path))
            self._logged[(name, fault.kind)] = (now_ms, count)


def read(data_dir: Path) -> list[dict]:
    """The evidence a validator kept in `data_dir`, oldest first; a line that does not
    parse is reported as such, not skipped silently."""
    path = Path(data_dir) / FILE_NAME
    if not path.exists():
        return []
    found = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if len(line) > MAX_LINE_BYTES:
                raise ValueError(f"{path}:{number}: a line of {len(line)} bytes")
            try:
                item = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}:{number}: not a JSON line") from None
            found.append(item)
    return found
