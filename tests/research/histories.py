"""Random histories of events for the research tests: registrations of citizens and a
merchant, then drawn steps (tasks posted and approved, spends, updates, and a kind the
dataset leaves out), each a block of its own at a drawn time."""
from __future__ import annotations

import hashlib

from hypothesis import strategies as st

from research.rows import Fold

KEY = b"k" * 32
T0 = 1_740_000_000_000
DAY_MS = 86_400_000


def member(i: int) -> bytes:
    return hashlib.sha256(b"member/%d" % i).digest()


CITIZENS = [member(i) for i in range(14)]
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
    ["post", "approve", "approve", "spend", "vote", "update"]), st.integers(0, 13),
    st.integers(1, 5_000)), max_size=40)
