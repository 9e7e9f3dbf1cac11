"""`stadsmunt research report` (research/report.py, research/indicators.py): the
indicators DuckDB computes from a dataset equal those computed here in plain Python from
the events the dataset was made of; what the report shows keeps the disclosure rules;
the HTML stands alone."""
from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from chaincode.periods import periods
from chaincode.policies import DEFAULT_POLICIES
from histories import KEY, STEPS, history
from ops import cli
from research import columns, report
from research.dataset import Writer
from research.disclosure import MIN_PEOPLE, publish
from research.indicators import INDICATORS
from research.rows import Fold, key_fingerprint


def write(blocks, folder: Path) -> dict[str, list[dict]]:
    """The dataset of `blocks` (closed months only), and the events it holds as dicts."""
    fold = Fold(KEY, policies=DEFAULT_POLICIES)
    writer, held = Writer(folder, "test", "00" * 32, key_fingerprint(KEY)), []
    for height, (time_ms, events) in enumerate(blocks, 1):
        month = fold.block(height, time_ms, [{"events": events}])
        if month is not None:
            rows, spends = fold.take()
            writer.rows("events", month, rows)
            writer.rows("spends", month, spends)
            writer.close_month(month)
            held += [dict(zip(columns.names("events"), r), month=month) for r in rows]
    writer.commit(fold.closed_through, *fold.snapshot)
    return held


def expected_money(events) -> list[dict]:
    months = defaultdict(lambda: dict(minted=0, spent=0, refunded=0, redeemed=0))
    who = defaultdict(lambda: defaultdict(set))
    for e in events:
        figure = {"task.approved": "minted", "coin.spent": "spent",
                  "coin.refunded": "refunded", "coin.redeemed": "redeemed"}.get(e["kind"])
        row = months[e["month"]]
        if figure:
            row[figure] += e["cents"]
            who[e["month"]][figure].add(e["member"])
    return [dict(month=m, minted=r["minted"], citizens_paid=len(who[m]["minted"]),
                 spent=r["spent"], payers=len(who[m]["spent"]), refunded=r["refunded"],
                 refunded_payers=len(who[m]["refunded"]), redeemed=r["redeemed"],
                 merchants_redeeming=len(who[m]["redeemed"]))
            for m, r in sorted(months.items())]


def expected_active(events) -> list[dict]:
    first = {}
    for e in sorted(events, key=lambda e: e["position"]):
        if e["kind"] == "task.approved":
            first.setdefault(e["member"], e["month"])
    cells = defaultdict(lambda: [set(), 0, 0, 0])
    for e in events:
        if e["kind"] == "task.approved":
            cell = cells[(e["month"], e["area"])]
            cell[0].add(e["member"])
            cell[1] += 1
            cell[2] += e["minutes"]
            cell[3] += e["cents"]
    return [dict(month=m, area=a, citizens=len(c),
                 new_citizens=sum(1 for x in c if first[x] == m),
                 returning_citizens=sum(1 for x in c if first[x] < m),
                 tasks_done=n, minutes=t, minted=cents)
            for (m, a), (c, n, t, cents) in sorted(cells.items())]


def expected_volunteering(events) -> list[dict]:
    cells = defaultdict(lambda: [0, 0, set()])
    for e in events:
        if e["kind"] == "task.approved":
            cell = cells[(e["month"], e["domain"])]
            cell[0] += 1
            cell[1] += e["minutes"]
            cell[2].add(e["member"])
    return [dict(month=m, domain=d, tasks_done=n, minutes=t, citizens=len(c))
            for (m, d), (n, t, c) in sorted(cells.items())]


def shown_active(folder: Path) -> list[dict]:
    return report.compute(folder)["active_citizens"]


def policy_of(year: int) -> dict:
    """The policy in force in `year`: its own, else the latest earlier one."""
    return max((p for p in DEFAULT_POLICIES if p["year"] <= year), key=lambda p: p["year"])


def expected_near_caps(events) -> list[dict]:
    earned = defaultdict(int)
    for e in events:
        if e["kind"] == "task.approved":
            earned[(e["month"], e["member"])] += e["cents"]
    rows = []
    for month in sorted({m for m, _ in earned}):
        year = int(month[:4])
        policy, near_month, near_year, count = policy_of(year), 0, 0, 0
        for (m, member), cents in earned.items():
            if m != month:
                continue
            count += 1
            to_date = sum(c for (m2, x), c in earned.items()
                          if x == member and m2[:4] == month[:4] and m2 <= month)
            near_month += cents * 10 >= policy["monthly_cap"] * 8
            near_year += to_date * 10 >= policy["yearly_cap"] * 8
        rows.append(dict(month=month, citizens_earning=count, near_monthly_cap=near_month,
                         near_yearly_cap=near_year))
    return rows


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STEPS)
def test_duckdb_computes_the_indicators_the_events_give(tmp_path_factory, steps):
    folder = tmp_path_factory.mktemp("dataset")
    events = write(history(steps), folder)
    found = report.compute(folder, suppress=False)
    assert found["money"] == [r for r in expected_money(events)]
    for row in found["local_spending"]:
        expected = row["spent_in_all"] / row["minted"] if row["minted"] else None
        assert row["local_multiplier"] == expected
    assert found["active_citizens"] == expected_active(events)
    assert found["volunteering"] == expected_volunteering(events)
    assert found["near_caps"] == expected_near_caps(events)
    stats = {(c["group"], c["label"]): c["suppressed"] for c in publish(
        {(r["month"], r["area"]): (r["citizens"], r["minted"])
         for r in found["active_citizens"]}, "9999-99")}
    assert {(r["month"], r["area"]): r["suppressed"] for r in shown_active(folder)} == stats
    shown = report.compute(folder)
    for indicator in INDICATORS:
        for row in shown[indicator.name]:
            if indicator.people is not None and not row["suppressed"]:
                assert row[indicator.people] >= MIN_PEOPLE
            for figure, count in indicator.figures:
                assert row[count] is None or row[count] == 0 or row[count] >= MIN_PEOPLE
                if not row.get("suppressed"):
                    assert (row[figure] is None) == (figure in row["withheld"])
            for ratio, inputs in indicator.derived:
                assert row[ratio] is None or not set(inputs) & set(row["withheld"])
            if row.get("suppressed"):
                assert all(row[c] is None for c in row if c not in indicator.keys
                           and c not in ("suppressed", "withheld"))


def test_the_report_is_one_self_contained_html_file(tmp_path):
    steps = [(1, "post", 0, 500)] + [(2, "approve", i, 500) for i in range(12)] + \
        [(1, "spend", i, 100) for i in range(12)] + [(24 * 40, "update", 0, 1)]
    folder = tmp_path / "dataset"
    write(history(steps), folder)
    out = tmp_path / "report.html"
    assert cli.main(["research", "report", str(folder), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for indicator in INDICATORS:
        assert html.escape(indicator.title) in text
    month = periods(history(steps)[1][0])[1]
    assert month in text


def test_a_folder_without_a_dataset_is_refused(tmp_path, capsys):
    assert cli.main(["research", "report", str(tmp_path)]) == 2
    assert "holds no dataset" in capsys.readouterr().err


@pytest.mark.parametrize("indicator", INDICATORS, ids=lambda i: i.name)
def test_every_indicator_runs_on_an_empty_dataset(tmp_path, indicator):
    folder = tmp_path / "dataset"
    write([(1_740_000_000_000, [])], folder)
    assert report.compute(folder)[indicator.name] == []


def test_a_citizen_near_the_monthly_cap_is_counted_and_a_count_under_ten_withheld(tmp_path):
    monthly = policy_of(2025)["monthly_cap"]
    reward = -(-monthly * 8 // 10 // 4)             # four of these reach 80% of the cap
    steps = [(1, "post", 0, reward)] + [(1, "approve", 0, reward)] * 4 + \
        [(1, "approve", i, 100) for i in range(1, 12)] + [(24 * 40, "update", 0, 1)]
    folder = tmp_path / "dataset"
    events = write(history(steps), folder)
    [row] = report.compute(folder, suppress=False)["near_caps"]
    assert row == expected_near_caps(events)[0]
    assert (row["citizens_earning"], row["near_monthly_cap"]) == (12, 1)
    [shown] = report.compute(folder)["near_caps"]
    assert (shown["citizens_earning"], shown["near_monthly_cap"]) == (12, None)
