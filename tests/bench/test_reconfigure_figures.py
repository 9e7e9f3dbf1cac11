"""The figures `stadsmunt bench --reconfigure` draws from its polls (bench/reconfigure.py),
on made-up polls: a steady 1,000 tx/s with a stall of two seconds at the switch."""
from __future__ import annotations

from bench.reconfigure import Reconfiguration, figures, text


def _reconfiguration() -> Reconfiguration:
    r = Reconfiguration.__new__(Reconfiguration)     # no network: only what figures reads
    r.new_set = [{"name": "b"}, {"name": "a"}]
    r.old_names = ["a", "b"]
    r.started_s, r.enacted_s, r.enacted_height, r.approvals = 10.0, 12.0, 50, 2
    r.from_height, r.before, r.after = 120, None, None
    return r


def _polls(stall_from: int | None, end: int = 40) -> list[tuple]:
    """(seconds, committed, height, set since) every 200 ms; the switch at 25 s."""
    polls, count = [], 0
    for tenth in range(0, end * 10 + 1, 2):
        polls.append((tenth / 10, count, count // 500, 120 if tenth >= 250 else 1))
        stalled = stall_from is not None and stall_from * 10 <= tenth < stall_from * 10 + 20
        count += 0 if stalled else 200
    return polls


def test_a_stall_at_the_switch_is_the_lowest_second_and_the_recovery_follows_it():
    f = figures(_reconfiguration(), _polls(stall_from=25), 40.0)
    assert f["switch_s"] == 25.0 and f["switch_height"] == 120
    assert f["median_tps_before"] == 1000
    assert f["blocks_per_s_before"] == 2.0 and f["txs_per_block_before"] == 500
    assert f["lowest_tps_after_enactment"] == 0 and f["lowest_after_enactment_at_s"] == 0
    assert f["lowest_tps_from_switch"] == 0
    assert f["recovered_at_s"] == 2 and f["seconds_below_90pct_after_enactment"] == 2
    assert [0, 0] in f["buckets"] and [2, 1000] in f["buckets"]
    lines = text(f)
    assert "median 1,000 tx/s before" in lines[2] and "2 s after the switch" in lines[4]
    # buckets stop at the last poll, whole seconds from the switch
    assert f["buckets"][-1][0] == 14 and f["buckets"][0][0] == -25


def test_no_dip_recovers_at_once_and_no_switch_gives_no_figures():
    f = figures(_reconfiguration(), _polls(stall_from=None), 40.0)
    assert f["lowest_tps_from_switch"] == 1000 and f["recovered_at_s"] == 0
    assert f["seconds_below_90pct_after_enactment"] == 0
    r = _reconfiguration()
    r.from_height = 500                      # never reached within the burst
    f = figures(r, _polls(stall_from=None), 40.0)
    assert f["switch_s"] is None and f["median_tps_before"] is None and f["buckets"] == []
    assert "ended before the new set took over" in text(f)[1]
