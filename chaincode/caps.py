"""Cap policies, reservations and the cap checks of claims and approvals.

A citizen's reservations live in one record, r/ + key: {"open": [[deadline, cents], ...],
"submitted": cents}. Open claims are summed per deadline because every open claim on a
task shares the task's deadline: an open claim expires exactly when the block time
reaches its deadline, so `reserved(t)` is the submitted sum plus the open sums whose
deadline is after t, and expired entries are dropped whenever the record is written.
Block times never decrease, so a dropped entry could never count again.
"""
from __future__ import annotations

from bisect import insort

from . import state as st
from .errors import Reject

CAP_ORDER = ("monthly", "yearly", "programme")


def policy_in_force(view, year: int) -> tuple[dict, bool] | None:
    """(policy, is_fallback) for a local year: its own, else the latest earlier one."""
    raw = view.get(st.POLICY_YEARS)
    if raw is None:
        return None
    best = None
    for y in st.unpack(raw):
        if y <= year:
            best = y
    if best is None:
        return None
    return st.unpack(view.get(st.policy_key(best))), best != year


def require_policy(view, year: int) -> dict:
    found = policy_in_force(view, year)
    if found is None:
        raise Reject("invalid_state")
    return found[0]


def yearly_limit(policy: dict) -> int:
    programme = policy.get("programme_yearly_cap")
    top = policy["yearly_cap"]
    return top if programme is None else min(top, programme)


def max_reward(policy: dict, band: str, minutes: int) -> int:
    return policy["hourly_cap_" + band] * minutes // 60


def check_hourly(policy: dict, band: str, reward: int, minutes: int) -> None:
    """reward * 60 <= hourly_cap[band] * minutes, in integers."""
    if reward * 60 > policy["hourly_cap_" + band] * minutes:
        raise Reject("hourly_rate_exceeded",
                     {"band": band, "max_reward": max_reward(policy, band, minutes)})


def check_caps(policy: dict, month: str, year: str, earned_month: int, earned_year: int,
               reserved: int, reward: int) -> None:
    """Refuse unless earnings + reserved + reward fit every cap; name the tightest.

    `allowed` is the room left (never below 0); among failing caps the least room wins,
    ties going monthly, yearly, programme (the order of CAP_ORDER).
    """
    rooms = [("monthly", month, policy["monthly_cap"] - earned_month - reserved),
             ("yearly", year, policy["yearly_cap"] - earned_year - reserved)]
    programme = policy.get("programme_yearly_cap")
    if programme is not None:
        rooms.append(("programme", year, programme - earned_year - reserved))
    worst = None
    for name, period, room in rooms:
        if room < reward:
            room = max(room, 0)
            if worst is None or room < worst[2]:
                worst = (name, period, room)
    if worst is not None:
        raise Reject("cap_exceeded", {"cap": worst[0], "period": worst[1],
                                      "allowed": worst[2]})


def earned(view, citizen: bytes, period: str) -> int:
    raw = view.get(st.earned_key(citizen, period))
    return 0 if raw is None else st.unpack(raw)


def add_earned(view, citizen: bytes, period: str, cents: int) -> None:
    key = st.earned_key(citizen, period)
    raw = view.get(key)
    view.put(key, st.pack((0 if raw is None else st.unpack(raw)) + cents))


def load_reservations(view, citizen: bytes) -> dict:
    raw = view.get(st.RESERVED + citizen)
    return {"open": [], "submitted": 0} if raw is None else st.unpack(raw)


def reserved_at(record: dict, time_ms: int) -> int:
    return record["submitted"] + sum(c for d, c in record["open"] if d > time_ms)


def store_reservations(view, citizen: bytes, record: dict, time_ms: int) -> None:
    """Write back, dropping expired and empty entries; delete the record when empty."""
    live = [[d, c] for d, c in record["open"] if d > time_ms and c > 0]
    assert record["submitted"] >= 0 and all(c >= 0 for _, c in record["open"])
    if not live and record["submitted"] == 0:
        view.put(st.RESERVED + citizen, None)
        return
    view.put(st.RESERVED + citizen, st.pack({"open": live, "submitted": record["submitted"]}))


def reserve_open(record: dict, deadline: int, cents: int) -> None:
    for entry in record["open"]:
        if entry[0] == deadline:
            entry[1] += cents
            return
    insort(record["open"], [deadline, cents])


def release_open(record: dict, deadline: int, cents: int, time_ms: int) -> None:
    """Release an open claim's reservation; an expired claim already reserves nothing."""
    if deadline <= time_ms:
        return
    for entry in record["open"]:
        if entry[0] == deadline:
            assert entry[1] >= cents, "released more than was reserved"
            entry[1] -= cents
            return
    raise AssertionError("open claim without a reservation")
