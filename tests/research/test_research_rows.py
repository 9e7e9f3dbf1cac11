"""The fold of events into the dataset's rows (research/rows.py), over random histories:
every event of a listed kind in a closed month lands in exactly one row, nothing of the
open month is ever given out, no raw key is in any row, and a run that skips the months a
dataset holds gives the other months' rows exactly as a full run does."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from chaincode.periods import periods
from histories import CITIZENS, DAY_MS, KEY, MERCHANT, STEPS, T0, history, member, run
from research.rows import Fold
from research.rows import EVENT_KINDS, pseudonym

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


def test_members_made_at_genesis_keep_their_role_in_the_rows():
    steward = member(500)
    fold = Fold(KEY, genesis_roles={steward: "steward"})
    fold.block(1, T0, [{"events": [{"kind": "member.revoked", "key": steward}]}])
    fold.block(2, T0 + 40 * DAY_MS, [{"events": []}])
    events, _ = fold.take()
    assert [(r[3], r[6]) for r in events] == [("member.revoked", "steward")]
    [row] = [r for r in fold.snapshot[0] if r[0] == pseudonym(KEY, steward)]
    assert (row[1], row[5]) == ("steward", False)
