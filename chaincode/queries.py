"""The read model: pure read helpers over a StateReader, for the gateway, the auditor,
the node and the tests. Nothing outside the chaincode reads its state encoding
(chaincode/state.py): what they need of the state is here, and the paged reads (`*_page`)
take a PagedReader (chaincode/api.py), which the node's store implements over LMDB.

Everything here reads; nothing writes except InMemoryState.apply. Claims' and
proposals' states are shown as they stand at a given time: an open claim whose deadline
has passed is "expired", and so is an open proposal at or after its `expires` (the ledger
never rewrites either, see tasks.py and governance.py).
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort

from . import caps, governance, recoveries
from . import validators as validator_sets
from . import constitution as law_of
from . import state as st
from .periods import periods
from .policies import coming_year_unset as _coming_year_unset


class InMemoryState:
    """A StateReader over a dict, with sorted keys for scans: the test and replay store."""

    def __init__(self, data: dict[bytes, bytes] | None = None):
        self.data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        if data:
            self.apply(data)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: bytes):
        keys = self._keys
        i = bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            yield keys[i], self.data[keys[i]]
            i += 1

    def scan_after(self, prefix: bytes, after: bytes | None,
                   limit: int) -> list[tuple[bytes, bytes]]:
        """PagedReader.scan_after."""
        keys = self._keys
        i = bisect_left(keys, prefix)
        if after is not None:
            i = max(i, bisect_right(keys, after))
        out = []
        while i < len(keys) and len(out) < limit and keys[i].startswith(prefix):
            out.append((keys[i], self.data[keys[i]]))
            i += 1
        return out

    def apply(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is None:
                if self.data.pop(key, None) is not None:
                    del self._keys[bisect_left(self._keys, key)]
            else:
                if key not in self.data:
                    insort(self._keys, key)
                self.data[key] = value

    def items(self):
        return [(k, self.data[k]) for k in self._keys]


def member(state, key: bytes) -> dict | None:
    """{key, role, active, balance, attributes..., recovered_to?} or None."""
    record = st.get_member(state, key)
    return None if record is None else dict(record, key=key)


def members_page(state, after: bytes | None, limit: int) -> list[dict]:
    """Up to `limit` members in key order after the key `after` (from the first when
    None), each as `member` answers it. `state` is a PagedReader."""
    pairs = state.scan_after(st.MEMBER, None if after is None else st.member_key(after),
                             limit)
    return [dict(st.unpack(raw), key=key[len(st.MEMBER):]) for key, raw in pairs]


def admin_count(state) -> int:
    """Active admins (genesis's have no event to count)."""
    return st.get_int(state, st.ADMINS)


def totals(state) -> dict:
    minted = st.get_int(state, st.MINTED)
    redeemed = st.get_int(state, st.REDEEMED)
    return {"minted": minted, "redeemed": redeemed, "circulating": minted - redeemed}


def coming_year_unset(state, time_ms: int) -> int | None:
    """policies.coming_year_unset over the years that have a policy in this state."""
    raw = state.get(st.POLICY_YEARS)
    return _coming_year_unset([] if raw is None else st.unpack(raw), time_ms)


def policy_for_year(state, year: int) -> dict | None:
    """{"policy": ..., "fallback": bool, "from_year": int} for a local year, or None."""
    found = caps.policy_in_force(state, year)
    if found is None:
        return None
    policy, fallback = found
    return {"policy": policy, "fallback": fallback, "from_year": policy["year"]}


def policies(state) -> list[dict]:
    raw = state.get(st.POLICY_YEARS)
    years = [] if raw is None else st.unpack(raw)
    return [st.unpack(state.get(st.policy_key(y))) for y in years]


def earnings(state, key: bytes, time_ms: int) -> dict:
    """The citizen's current month and year: period, earned, reserved, cap, remaining.

    `cap` is None when no policy is in force; the year's cap is the lower of the yearly
    and programme caps.
    """
    year, month_period, year_period = periods(time_ms)
    found = caps.policy_in_force(state, year)
    reserved = caps.reserved_at(caps.load_reservations(state, key), time_ms)
    out = {}
    for name, period in (("month", month_period), ("year", year_period)):
        earned = caps.earned(state, key, period)
        cap = None
        if found is not None:
            cap = found[0]["monthly_cap"] if name == "month" else caps.yearly_limit(found[0])
        remaining = None if cap is None else max(0, cap - earned - reserved)
        out[name] = {"period": period, "earned": earned, "reserved": reserved,
                     "cap": cap, "remaining": remaining}
    return out


def earnings_entries(state) -> dict[tuple[bytes, str], int]:
    """Every earnings entry of the state: (citizen, period "YYYY-MM" or "YYYY") -> cents."""
    skip = len(st.EARNED)
    return {(key[skip:skip + 32], key[skip + 32:].decode("ascii")): st.unpack(raw)
            for key, raw in state.scan(st.EARNED)}


def statement(state, key: bytes, year: int) -> list[dict]:
    """What a citizen earned in each month of a local year, for the benefits office."""
    return [{"period": f"{year:04d}-{m:02d}",
             "earned": caps.earned(state, key, f"{year:04d}-{m:02d}")} for m in range(1, 13)]


def claim_status(raw_state: str, deadline: int, time_ms: int) -> str:
    if raw_state == "open" and deadline <= time_ms:
        return "expired"
    return raw_state


def task(state, task_id: str, time_ms: int, with_claims: bool = False) -> dict | None:
    """A task with its status at time_ms (open, closed, cancelled) and, on request, its
    claims [{citizen, state, proof?}] in key order. `taken` is the ledger's count, which
    still includes claims that expired (it only matters before the deadline)."""
    record = task_record(state, task_id)
    if record is None:
        return None
    status = ("cancelled" if record["cancelled"]
              else "open" if time_ms < record["deadline"] else "closed")
    out = dict(record, task=task_id, status=status)
    del out["cancelled"]
    if with_claims:
        out["claims"] = task_claims(state, task_id, record["deadline"], time_ms)
    return out


def task_record(state, task_id: str) -> dict | None:
    """A task as the ledger stores it: title, area, domain, reward, minutes, slots,
    deadline, taken, cancelled; None if there is none with this id."""
    raw = state.get(st.task_key(task_id))
    return None if raw is None else st.unpack(raw)


def task_claims(state, task_id: str, deadline: int, time_ms: int) -> list[dict]:
    prefix = st.CLAIM + st.task_part(task_id)
    claims = []
    for key, raw in state.scan(prefix):
        claim = st.unpack(raw)
        claim["state"] = claim_status(claim["state"], deadline, time_ms)
        claims.append(dict(claim, citizen=key[len(prefix):]))
    return claims


def natural(text: str) -> tuple:
    """A sort key for ids as people read them: numbers as numbers ("task-2" before
    "task-10"), letters regardless of case, and the id itself to break ties."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), text


def _task_id(key: bytes) -> str:
    return key[len(st.TASK) + 1:].decode("ascii")


def tasks(state, time_ms: int) -> list[dict]:
    """Every task in natural order of its id (see natural), without claimants."""
    ids = [_task_id(key) for key, _ in state.scan(st.TASK)]
    return [task(state, task_id, time_ms) for task_id in sorted(ids, key=natural)]


def task_ids_page(state, after: str | None, limit: int) -> list[str]:
    """Up to `limit` task ids in the ledger's key order (by length, then bytes) after the
    task `after` (from the first when None or empty). `state` is a PagedReader."""
    pairs = state.scan_after(st.TASK, st.task_key(after) if after else None, limit)
    return [_task_id(key) for key, _ in pairs]


def task_count(state) -> int:
    return sum(1 for _ in state.scan(st.TASK))


def payout(state, payout_id: bytes) -> dict | None:
    raw = state.get(st.PAYOUT + payout_id)
    return None if raw is None else dict(st.unpack(raw), payout=payout_id.hex())


def _payout_of(key: bytes, raw: bytes) -> dict:
    return dict(st.unpack(raw), payout=key[len(st.PAYOUT):].hex())


def payouts(state) -> list[dict]:
    return [_payout_of(key, raw) for key, raw in state.scan(st.PAYOUT)]


def payouts_page(state, after: bytes | None, limit: int) -> list[dict]:
    """Up to `limit` payouts (as `payout` answers them) in id order after the raw payout
    id `after` (from the first when None or empty). `state` is a PagedReader."""
    pairs = state.scan_after(st.PAYOUT, st.PAYOUT + after if after else None, limit)
    return [_payout_of(key, raw) for key, raw in pairs]


def pending_payouts_of(state, merchant: bytes) -> list[dict]:
    prefix = st.PAYOUT_INDEX + merchant
    return [payout(state, key[len(prefix):]) for key, _ in state.scan(prefix)]


def spend(state, tx_id: str) -> dict | None:
    """A spend by its transaction id: {from, to, amount, refunded}, or None."""
    raw = state.get(st.EXECUTED + bytes.fromhex(tx_id))
    if not raw:
        return None
    payer, payee, amount, refunded = st.unpack(raw)
    return {"from": payer, "to": payee, "amount": amount, "refunded": refunded}


def executed(state, tx_id: str) -> bool:
    return state.get(st.EXECUTED + bytes.fromhex(tx_id)) is not None


def members(state) -> list[dict]:
    return [dict(st.unpack(raw), key=key[len(st.MEMBER):])
            for key, raw in state.scan(st.MEMBER)]


def steward_count(state) -> int:
    """Active stewards of every organisation (genesis's have no event to count)."""
    return sum(1 for _ in state.scan(st.STEWARDS))


# ---- governance ----

def constitution(state, height: int = 0) -> dict:
    """{organisations: [{id, stewards: [active steward keys], validators: [names]}],
    thresholds, recovery_delay_ms}: `validators` the names of the organisation's
    validators in the set in force at `height` (the head's; 0: genesis's set)."""
    law = law_of.get(state)
    running = validator_sets.in_force(state, height, validator_sets.genesis_set(state))[1]
    return {"organisations": [
        {"id": org, "stewards": law_of.active_stewards(state, org),
         "validators": [name for name, _, owner in running if owner == org]}
        for org in law["organisations"]],
        "thresholds": dict(law["thresholds"]), "recovery_delay_ms": law["recovery_delay_ms"]}


def _proposal_out(state, proposal: bytes, record: dict, law: dict, time_ms: int,
                  detail: bool) -> dict:
    status = governance.status(record, time_ms)
    # an open proposal needs the threshold in force now; a closed one shows its last
    threshold = law["thresholds"][record["class"]] if status == "open" else record["threshold"]
    out = {"id": proposal.hex(), "status": status, "action": record["action"],
           "args": record["args"], "organisation": record["organisation"],
           "proposer": record["proposer"], "expires": record["expires"],
           "threshold": threshold, "height": record["height"],
           "approvals": len(governance.counting_organisations(state, record, law))}
    if "reason" in record:
        out["reason"] = record["reason"]
    if detail:
        out["approved_by"] = [
            {"organisation": org, "key": key, "height": height,
             "counts": governance.counts(state, key, org, law)}
            for org, key, height in record["approvals"]]
        out["closed_height"] = record.get("closed_height")
        if record["status"] == "failed":
            out["code"], out["info"] = record["code"], record["info"]
    return out


def proposal(state, proposal_id: bytes, time_ms: int) -> dict | None:
    """One proposal as it stands at time_ms, with every approval and whether it counts
    now; None if there is none with this id."""
    raw = state.get(st.PROPOSAL + proposal_id)
    if raw is None:
        return None
    return _proposal_out(state, proposal_id, st.unpack(raw), law_of.get(state), time_ms, True)


def proposals(state, time_ms: int, status: str | None = None,
              after: tuple[int, bytes] | None = None, limit: int = 100):
    """(items, next): proposals in (height, id) order after `after`, of `status` at
    time_ms when given; `next` is the (height, id) to pass as `after`, or None.
    `approvals` counts the distinct organisations whose approvals count now. Reads
    every proposal: governance makes few."""
    law = law_of.get(state)
    found = sorted((record["height"], key[len(st.PROPOSAL):], record)
                   for key, record in ((k, st.unpack(v)) for k, v in state.scan(st.PROPOSAL))
                   if after is None or (record["height"], key[len(st.PROPOSAL):]) > after)
    items, last = [], None
    for height, proposal_id, record in found:
        if status is not None and governance.status(record, time_ms) != status:
            continue
        if len(items) == limit:
            return items, last
        items.append(_proposal_out(state, proposal_id, record, law, time_ms, False))
        last = (height, proposal_id)
    return items, None


def recovery(state, key: bytes) -> dict | None:
    """The open recovery of `key` (the old key): {new, effective, by, height}, or None."""
    return recoveries.open_of(state, key)


def frozen(state, key: bytes) -> bool:
    record = st.get_member(state, key)
    return record is not None and bool(record.get("frozen"))


def named_in_governance(state, key: bytes, time_ms: int) -> bool:
    """Whether `key` is the old or new key of an open recovery, or a key in the args of
    a proposal open at time_ms: what a steward's read token may read."""
    if state.get(st.RECOVERY + key) is not None or state.get(st.RECOVERY_TO + key) is not None:
        return True
    for index_key, raw in state.scan(st.OPEN_PROPOSALS):
        if st.unpack(raw) <= time_ms:
            continue                    # expired; the index keeps it until the next one
        found = state.get(st.PROPOSAL + index_key[-32:])
        if found is None:
            continue
        record = st.unpack(found)
        if governance.status(record, time_ms) == "open" and key in record["args"].values():
            return True
    return False
