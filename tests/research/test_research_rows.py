"""The fold of events into the dataset's rows (research/rows.py), over random histories:
every event of a listed kind in a closed month lands in exactly one row, nothing of the
open month is ever given out, no raw key is in any row, and a run that skips the months a
dataset holds gives the other months' rows exactly as a full run does."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings, strategies as st

from chaincode.periods import periods
from research.rows import EVENT_KINDS, Fold, pseudonym

KEY = b"k" * 32
T0 = 1_740_000_000_000
DAY_MS = 86_400_000


def member(i: int) -> bytes:
    return hashlib.sha256(b"member/%d" % i).digest()


CITIZENS = [member(i) for i in range(4)]
MERCHANT = member(99)


def history(draw_steps):
    """Blocks of (time, events): registrations first, then the drawn steps."""
    registered = [{"kind": "member.registered", "key": c, "role": "citizen",
                   "age_band": "21plus", "area": f"area-{i % 2}"}
                  for i, c in enumerate(CITIZENS)]
    registered.append({"kind": "member.registered", "key": MERCHANT, "role": "merchant",
                       "name": "Bakkerij"})
    blocks = [(T0, registered)]
    time_ms, tasks = T0, 0
    for gap_hours, what, who, cents in draw_steps:
        time_ms += gap_hours * 3_600_000
        citizen = CITIZENS[who]
        if what == "post":
            tasks += 1
            events = [{"kind": "task.posted", "task": f"t{tasks}", "title": "Weed",
                       "area": "area-0", "domain": "nature", "reward": cents,
                       "minutes": 60, "slots": 3, "deadline": time_ms + DAY_MS}]
        elif what == "approve" and tasks:
            events = [{"kind": "task.approved", "task": f"t{tasks}", "citizen": citizen,
                       "minted": cents}]
        elif what == "spend":
            events = [{"kind": "coin.spent", "from": citizen, "to": MERCHANT,
                       "amount": cents, "memo": "secret memo"}]
        elif what == "vote":               # a kind the dataset leaves out
            events = [{"kind": "gov.approved", "proposal": "00" * 32,
                       "organisation": "city", "approvals": 1}]
        else:
            events = [{"kind": "member.updated", "key": citizen, "area": "area-9"}]
        blocks.append((time_ms, events))
    return blocks


def run(blocks, skip=frozenset()):
    """{month: (events, spends)} given out, and the fold."""
    fold, given_out = Fold(KEY, skip), {}
    for height, (time_ms, events) in enumerate(blocks, 1):
        closed = fold.block(height, time_ms, [{"events": events}])
        if closed is not None:
            events_rows, spend_rows = fold.take()
            assert closed not in given_out
            given_out[closed] = (events_rows, spend_rows)
    return given_out, fold


STEPS = st.lists(st.tuples(st.integers(0, 24 * 20), st.sampled_from(
    ["post", "approve", "spend", "vote", "update"]), st.integers(0, 3),
    st.integers(1, 5_000)), max_size=40)


@settings(max_examples=80, deadline=None)
@given(STEPS)
def test_each_closed_month_gives_each_listed_event_once_and_the_open_month_nothing(steps):
    blocks = history(steps)
    given_out, fold = run(blocks)
    open_month = periods(max(t for t, _ in blocks))[1]
    assert open_month not in given_out
    expected = {}
    for time_ms, events in blocks:
        month = periods(time_ms)[1]
        if month != open_month:
            expected.setdefault(month, []).extend(
                e["kind"] for e in events if e["kind"] in EVENT_KINDS)
    assert {m: [r[3] for r in rows[0]] for m, rows in given_out.items() if rows[0]} == \
        {m: kinds for m, kinds in expected.items() if kinds}
    for month, (events_rows, spend_rows) in given_out.items():
        assert len(spend_rows) == sum(1 for r in events_rows if r[3] == "coin.spent")
        for row in events_rows + spend_rows:
            assert not any(type(v) is bytes for v in row), row
            assert "secret memo" not in row
    pseudonyms = {pseudonym(KEY, c) for c in CITIZENS + [MERCHANT]}
    for month, (events_rows, _) in given_out.items():
        assert {r[4] for r in events_rows if r[4] is not None} <= pseudonyms


@settings(max_examples=40, deadline=None)
@given(STEPS, st.integers(0, 40))
def test_skipping_the_months_a_dataset_holds_gives_the_rest_unchanged(steps, cut):
    blocks = history(steps)
    full, _ = run(blocks)
    early, _ = run(blocks[:cut + 1])
    later, fold = run(blocks, frozenset(early))
    for month, rows in full.items():
        if month in early:
            assert later[month] == ([], [])
        else:
            assert later[month] == rows
