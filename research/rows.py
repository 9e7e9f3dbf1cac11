"""The rows of the research dataset, folded from a verified log's events (docs/research.md).

`Fold` takes each block once the audit holds it (its header time and its re-executed
results) and turns every event into rows of the dataset's tables, with every member key
replaced by its pseudonym. Only what the codebook lists leaves here: no key, no memo, no
proof, no free text a person wrote (reasons, references).

Events and spends go out month by month (the local month of the block time, as the caps
count); members and tasks are a snapshot as they stood at the end of the last closed
month. A month is closed once a block of a later month is seen: block times never go
back, so nothing more can fall in it. The open month is never written: the dataset is the
log up to the end of its last closed month.
"""
from __future__ import annotations

import hashlib
import hmac

from chaincode.periods import periods

KEY_BYTES = 32

# the event kinds the events table holds; governance and recoveries stay out (the staff's
# work, and keys moved between persons), members' arrivals and departures are in
EVENT_KINDS = ("member.registered", "member.updated", "member.revoked", "member.recovered",
               "task.posted", "task.claimed", "task.withdrawn", "task.submitted",
               "task.approved", "task.rejected", "task.cancelled", "coin.spent",
               "coin.refunded", "coin.redeemed", "payout.confirmed")


def pseudonym(key: bytes, member: bytes) -> str:
    """HMAC-SHA-256 of the member's 32-byte public key under the research key, as 64
    lowercase hex characters: what CBS computes from the municipality's key list too."""
    assert len(member) == 32
    return hmac.new(key, member, hashlib.sha256).hexdigest()


def key_fingerprint(key: bytes) -> str:
    """Tells two runs' keys apart without telling anything of the key."""
    return hmac.new(key, b"stadsmunt/research/fingerprint", hashlib.sha256).hexdigest()[:16]


class Fold:
    def __init__(self, key: bytes, skip_months: frozenset[str] = frozenset(),
                 policies: tuple[dict, ...] = (), genesis_roles: dict | None = None):
        """policies: genesis's cap policies (policy.set events add to them);
        genesis_roles: key -> role of the members genesis made (admins, stewards), who
        have no member.registered event."""
        assert len(key) >= KEY_BYTES
        self.key = key
        self.skip = skip_months           # months a dataset holds already
        self.time_ms = 0                  # the chain's clock (block time) so far
        self.position = 0
        self.month: str | None = None     # the month of the last block
        self.height = 0                   # the last block's height
        self.closed_through = 0           # the last block of the last closed month
        self.events: list[tuple] = []     # rows of self.month, when not skipped
        self.spends: list[tuple] = []
        self.members: dict[bytes, dict] = {}
        self.tasks: dict[str, dict] = {}
        self._names: dict[bytes, str] = {}
        self._genesis_roles = dict(genesis_roles or {})
        self.policies: dict[int, dict] = {p["year"]: dict(p) for p in policies}
        self._pending: tuple[list, list] = ([], [])
        # (members, tasks, policies) rows as they stood at the end of the last closed month
        self.snapshot: tuple[list[tuple], list[tuple], list[tuple]] = ([], [], [])

    def _p(self, member: bytes) -> str:
        found = self._names.get(member)
        if found is None:
            found = self._names[member] = pseudonym(self.key, member)
        return found

    # ---- blocks -----------------------------------------------------------------------

    def block(self, height: int, header_time_ms: int, results: list[dict]) -> str | None:
        """Folds one block; answers the month it closed, if it closed one (the caller
        takes that month's rows with `take` before the next block)."""
        self.time_ms = max(self.time_ms, header_time_ms)     # node/block.block_time
        if self.time_ms == 0 and not any(r["events"] for r in results):
            return None             # a null batch before any block time: no month of 1970
        month = periods(self.time_ms)[1]
        closed = self.month if self.month is not None and month != self.month else None
        if closed is not None:
            self.closed_through = self.height
            self._pending = (self.events, self.spends)
            self.events, self.spends = [], []
            self.snapshot = (self.member_rows(), self.task_rows(),
                             self.policy_rows(int(closed[:4])))
        self.month, self.height = month, height
        for result in results:
            for event in result["events"]:
                self.position += 1
                self._event(height, event)
        return closed

    def take(self) -> tuple[list[tuple], list[tuple]]:
        """The rows (events, spends) of the month `block` just closed."""
        rows, self._pending = self._pending, ([], [])
        return rows

    def buffered(self) -> int:
        """Rows of the month in progress held here (the larger table's)."""
        return max(len(self.events), len(self.spends))

    def flush(self) -> tuple[str | None, list[tuple], list[tuple]]:
        """(month, events, spends) held so far of the month in progress, given out once,
        so that the caller writes a long month in parts."""
        rows = (self.month, self.events, self.spends)
        self.events, self.spends = [], []
        return rows

    # ---- events -----------------------------------------------------------------------

    def _seen(self, member: bytes) -> dict:
        record = self.members.get(member)
        if record is None:
            record = self.members[member] = {
                "role": self._genesis_roles.get(member), "age_band": None, "area": None,
                "name": None, "active": True, "first": self.time_ms, "last": self.time_ms}
        record["last"] = self.time_ms
        return record

    def _row(self, height: int, kind: str, member: bytes | None = None,
             other: bytes | None = None, area=None, domain=None, task=None, cents=None,
             minutes=None) -> None:
        role = None
        if member is not None:
            record = self._seen(member)
            role = record["role"]
            area = area if area is not None else record["area"]
        if other is not None:
            self._seen(other)
        if self.month in self.skip:
            return
        self.events.append((self.time_ms, height, self.position, kind,
                            None if member is None else self._p(member),
                            None if other is None else self._p(other), role, area, domain,
                            task, cents, minutes))

    def _event(self, height: int, event: dict) -> None:
        kind = event["kind"]
        if kind == "policy.set":
            self.policies[event["year"]] = {k: v for k, v in event.items() if k != "kind"}
        if kind not in EVENT_KINDS:
            return
        if kind == "member.registered":
            record = self._seen(event["key"])
            record.update(role=event["role"], age_band=event.get("age_band"),
                          area=event.get("area"), name=event.get("name"), active=True)
            self._row(height, kind, event["key"])
        elif kind == "member.updated":
            record = self._seen(event["key"])
            for field in ("age_band", "area"):
                if field in event:
                    record[field] = event[field]
            self._row(height, kind, event["key"])
        elif kind == "member.revoked":
            self._seen(event["key"])["active"] = False
            self._row(height, kind, event["key"])
        elif kind == "member.recovered":
            old = self._seen(event["old"])
            new = self._seen(event["new"])
            new.update({k: old[k] for k in ("role", "age_band", "area", "name")}, active=True)
            old["active"] = False
            self._row(height, kind, event["new"], event["old"], cents=event["balance"])
        elif kind == "task.posted":
            self.tasks[event["task"]] = {
                "title": event["title"], "area": event["area"], "domain": event["domain"],
                "reward": event["reward"], "minutes": event["minutes"],
                "slots": event["slots"], "deadline_ms": event["deadline"],
                "posted_ms": self.time_ms, "cancelled": False}
            self._row(height, kind, area=event["area"], domain=event["domain"],
                      task=event["task"], cents=event["reward"], minutes=event["minutes"])
        elif kind in ("task.claimed", "task.withdrawn", "task.submitted", "task.approved",
                      "task.rejected"):
            task = self.tasks.get(event["task"], {})
            cents = {"task.claimed": event.get("reserved"),
                     "task.approved": event.get("minted")}.get(kind)
            self._row(height, kind, event["citizen"], area=task.get("area"),
                      domain=task.get("domain"), task=event["task"], cents=cents,
                      minutes=task.get("minutes") if kind == "task.approved" else None)
        elif kind == "task.cancelled":
            task = self.tasks.get(event["task"], {})
            if task:
                task["cancelled"] = True
            self._row(height, kind, area=task.get("area"), domain=task.get("domain"),
                      task=event["task"])
        elif kind == "coin.spent":
            self._spent(height, event)
        elif kind == "coin.refunded":
            self._row(height, kind, event["to"], event["from"], cents=event["amount"])
        elif kind == "coin.redeemed":
            self._row(height, kind, event["merchant"], cents=event["amount"])
        elif kind == "payout.confirmed":
            self._row(height, kind)

    def _spent(self, height: int, event: dict) -> None:
        payer, merchant = event["from"], event["to"]
        self._row(height, "coin.spent", payer, merchant, cents=event["amount"])
        if self.month in self.skip:
            return
        record, shop = self.members[payer], self.members[merchant]
        self.spends.append((self.time_ms, height, self.position, self._p(payer),
                            record["role"], record["area"], self._p(merchant), shop["name"],
                            event["amount"]))

    # ---- snapshots --------------------------------------------------------------------

    def member_rows(self) -> list[tuple]:
        return [(self._p(member), r["role"], r["age_band"], r["area"], r["name"],
                 r["active"], r["first"], r["last"])
                for member, r in sorted(self.members.items(), key=lambda i: self._p(i[0]))]

    def policy_rows(self, through_year: int) -> list[tuple]:
        """The cap policy in force in each year from the first policy's to
        `through_year`: a year without its own takes the latest earlier one, as the
        chaincode does (`set_for_year` false then)."""
        rows, current = [], None
        first = min(self.policies, default=through_year)
        for year in range(first, through_year + 1):
            own = self.policies.get(year)
            current = own or current
            if current is not None:
                rows.append((year, current["hourly_cap_21plus"], current["hourly_cap_under21"],
                             current["monthly_cap"], current["yearly_cap"], own is not None))
        return rows

    def task_rows(self) -> list[tuple]:
        return [(task, t["title"], t["area"], t["domain"], t["reward"], t["minutes"],
                 t["slots"], t["deadline_ms"], t["posted_ms"], t["cancelled"])
                for task, t in sorted(self.tasks.items())]
