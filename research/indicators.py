"""The participation indicators, as SQL that DuckDB and Spark SQL both run unchanged
(docs/research.md, "The indicators report"). Each query reads the dataset's tables as
views named `events`, `spends`, `members`, `tasks` and `policies`, with `month` as a column (the Hive partition),
and returns rows ordered by its first columns.

Queries use only what both engines share: GROUP BY, COUNT(DISTINCT), CASE, joins, window
aggregates with ROWS frames; no engine's own functions. This module, disclosure.py and
columns.py import nothing else, so a cluster needs only those (research/spark.py).

`people` names a query's column that counts persons; its cells go through
research/disclosure.py with `month` as the group and the other key columns as the label
(the amount columns of a withheld cell are withheld with it).
"""
from __future__ import annotations

from dataclasses import dataclass

from research import disclosure


@dataclass(frozen=True)
class Indicator:
    name: str
    title: str
    sql: str
    keys: tuple[str, ...]              # the columns that name a row, month first
    people: str | None = None          # the column counting the persons of a row's cell
    amount: str | None = None          # the cell's amount: secondary suppression's tie-break
    # (figure, the column counting the persons behind it): each withheld alone, with its
    # count, when fewer than 10 but not none
    figures: tuple[tuple[str, str], ...] = ()
    # (ratio, the figures it is made of): withheld when any of them is
    derived: tuple[tuple[str, tuple[str, ...]], ...] = ()


INDICATORS = (
    Indicator(
        "active_citizens", "Active citizens per area and month, new and returning, with "
                           "their tasks, minutes and coins",
        """
        WITH approvals AS (
            SELECT member, month, area, minutes, cents FROM events
            WHERE kind = 'task.approved'),
        firsts AS (
            SELECT member, MIN(month) AS first_month FROM approvals GROUP BY member)
        SELECT a.month, a.area,
               COUNT(DISTINCT a.member) AS citizens,
               COUNT(DISTINCT CASE WHEN f.first_month = a.month THEN a.member END)
                   AS new_citizens,
               COUNT(DISTINCT CASE WHEN f.first_month < a.month THEN a.member END)
                   AS returning_citizens,
               COUNT(*) AS tasks_done, SUM(a.minutes) AS minutes, SUM(a.cents) AS minted
        FROM approvals a JOIN firsts f ON a.member = f.member
        GROUP BY a.month, a.area
        ORDER BY a.month, a.area
        """, ("month", "area"), "citizens", "minted"),
    Indicator(
        "volunteering", "Tasks done and minutes volunteered per domain and month",
        """
        SELECT month, domain, COUNT(*) AS tasks_done,
               SUM(minutes) AS minutes, COUNT(DISTINCT member) AS citizens
        FROM events WHERE kind = 'task.approved'
        GROUP BY month, domain
        ORDER BY month, domain
        """, ("month", "domain"), "citizens", "minutes"),
    Indicator(
        "money", "Coins minted, spent, refunded and redeemed per month (cents)",
        """
        SELECT month,
               SUM(CASE WHEN kind = 'task.approved' THEN cents ELSE 0 END) AS minted,
               COUNT(DISTINCT CASE WHEN kind = 'task.approved' THEN member END)
                   AS citizens_paid,
               SUM(CASE WHEN kind = 'coin.spent' THEN cents ELSE 0 END) AS spent,
               COUNT(DISTINCT CASE WHEN kind = 'coin.spent' THEN member END) AS payers,
               SUM(CASE WHEN kind = 'coin.refunded' THEN cents ELSE 0 END) AS refunded,
               COUNT(DISTINCT CASE WHEN kind = 'coin.refunded' THEN member END)
                   AS refunded_payers,
               SUM(CASE WHEN kind = 'coin.redeemed' THEN cents ELSE 0 END) AS redeemed,
               COUNT(DISTINCT CASE WHEN kind = 'coin.redeemed' THEN member END)
                   AS merchants_redeeming
        FROM events
        GROUP BY month
        ORDER BY month
        """, ("month",), figures=(("minted", "citizens_paid"), ("spent", "payers"),
                                  ("refunded", "refunded_payers"),
                                  ("redeemed", "merchants_redeeming"))),
    Indicator(
        "local_spending", "Minted coins spent locally, merchants reached, local multiplier",
        """
        WITH minted AS (
            SELECT month, SUM(cents) AS minted, COUNT(DISTINCT member) AS citizens_paid
            FROM events WHERE kind = 'task.approved' GROUP BY month),
        spent AS (
            SELECT month,
                   SUM(CASE WHEN payer_role = 'citizen' THEN cents ELSE 0 END)
                       AS spent_by_citizens,
                   COUNT(DISTINCT CASE WHEN payer_role = 'citizen' THEN payer END)
                       AS citizen_payers,
                   SUM(cents) AS spent_in_all,
                   COUNT(DISTINCT payer) AS payers,
                   COUNT(DISTINCT merchant) AS merchants_reached
            FROM spends GROUP BY month),
        months AS (SELECT month FROM minted UNION SELECT month FROM spent)
        SELECT m.month, COALESCE(n.minted, 0) AS minted,
               COALESCE(n.citizens_paid, 0) AS citizens_paid,
               COALESCE(s.spent_by_citizens, 0) AS spent_by_citizens,
               COALESCE(s.citizen_payers, 0) AS citizen_payers,
               COALESCE(s.spent_in_all, 0) AS spent_in_all,
               COALESCE(s.payers, 0) AS payers,
               COALESCE(s.merchants_reached, 0) AS merchants_reached,
               CASE WHEN n.minted > 0
                    THEN CAST(COALESCE(s.spent_by_citizens, 0) AS DOUBLE) / n.minted
               END AS share_spent_locally,
               CASE WHEN n.minted > 0
                    THEN CAST(COALESCE(s.spent_in_all, 0) AS DOUBLE) / n.minted
               END AS local_multiplier
        FROM months m LEFT JOIN minted n ON m.month = n.month
                      LEFT JOIN spent s ON m.month = s.month
        ORDER BY m.month
        """, ("month",), figures=(("minted", "citizens_paid"),
                                  ("spent_by_citizens", "citizen_payers"),
                                  ("spent_in_all", "payers")),
        derived=(("share_spent_locally", ("minted", "spent_by_citizens")),
                 ("local_multiplier", ("minted", "spent_in_all")))),
    Indicator(
        "minting_to_spending", "Days from a citizen's latest minting to each spend",
        """
        WITH flows AS (
            SELECT month, position, member, kind, time_ms,
                   MAX(CASE WHEN kind = 'task.approved' THEN time_ms END) OVER (
                       PARTITION BY member ORDER BY position
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS minted_ms
            FROM events
            WHERE kind IN ('task.approved', 'coin.spent') AND role = 'citizen'),
        waits AS (
            SELECT month, member, (time_ms - minted_ms) / 86400000 AS days FROM flows
            WHERE kind = 'coin.spent' AND minted_ms IS NOT NULL)
        SELECT month, COUNT(DISTINCT member) AS citizens, COUNT(*) AS spends,
               SUM(CASE WHEN days < 7 THEN 1 ELSE 0 END) AS within_a_week,
               SUM(CASE WHEN days >= 7 AND days < 30 THEN 1 ELSE 0 END) AS within_a_month,
               SUM(CASE WHEN days >= 30 THEN 1 ELSE 0 END) AS later
        FROM waits
        GROUP BY month
        ORDER BY month
        """, ("month",), "citizens"),
    Indicator(
        "near_caps", "Citizens close to the tax-free caps (80% or more), per month",
        """
        WITH earned AS (
            SELECT month, member, SUM(cents) AS cents FROM events
            WHERE kind = 'task.approved' GROUP BY month, member),
        to_date AS (
            SELECT month, member, cents,
                   SUM(cents) OVER (PARTITION BY member, SUBSTR(month, 1, 4)
                                    ORDER BY month
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                       AS year_cents
            FROM earned)
        SELECT t.month, COUNT(*) AS citizens_earning,
               SUM(CASE WHEN t.cents * 10 >= p.monthly_cap * 8 THEN 1 ELSE 0 END)
                   AS near_monthly_cap,
               SUM(CASE WHEN t.year_cents * 10 >= p.yearly_cap * 8 THEN 1 ELSE 0 END)
                   AS near_yearly_cap
        FROM to_date t JOIN policies p ON CAST(SUBSTR(t.month, 1, 4) AS INT) = p.year
        GROUP BY t.month
        ORDER BY t.month
        """, ("month",), figures=(("citizens_earning", "citizens_earning"),
                                  ("near_monthly_cap", "near_monthly_cap"),
                                  ("near_yearly_cap", "near_yearly_cap"))),
    Indicator(
        "merchant_redemption", "Per merchant and month: coins received, refunded and "
                               "redeemed (cents)",
        """
        SELECT e.month, m.name AS merchant_name,
               COUNT(DISTINCT CASE WHEN e.kind = 'coin.spent' THEN e.member END)
                   AS customers,
               SUM(CASE WHEN e.kind = 'coin.spent' THEN e.cents ELSE 0 END) AS received,
               COUNT(DISTINCT CASE WHEN e.kind = 'coin.refunded' THEN e.member END)
                   AS refunded_customers,
               SUM(CASE WHEN e.kind = 'coin.refunded' THEN e.cents ELSE 0 END) AS refunded,
               SUM(CASE WHEN e.kind = 'coin.redeemed' THEN e.cents ELSE 0 END) AS redeemed,
               CASE WHEN SUM(CASE WHEN e.kind = 'coin.spent' THEN e.cents ELSE 0 END) > 0
                    THEN CAST(SUM(CASE WHEN e.kind = 'coin.redeemed' THEN e.cents
                                       ELSE 0 END) AS DOUBLE)
                         / SUM(CASE WHEN e.kind = 'coin.spent' THEN e.cents ELSE 0 END)
               END AS redemption_rate
        FROM members m JOIN events e
             ON (e.kind IN ('coin.spent', 'coin.refunded') AND e.other = m.member)
             OR (e.kind = 'coin.redeemed' AND e.member = m.member)
        WHERE m.role = 'merchant'
        GROUP BY e.month, m.name
        ORDER BY e.month, m.name
        """, ("month", "merchant_name"), "customers", "received",
        figures=(("refunded", "refunded_customers"),)),
)


def suppressed(indicator: Indicator, rows: list[dict]) -> list[dict]:
    """Rows as they may be shown: a table of people's withheld cells with their figures
    None and `suppressed` set (research/disclosure.py); a figure of fewer than 10 people
    (but some) None with its count and the ratios made of it, each named in the row's
    `withheld`."""
    if indicator.figures:
        rows = [dict(row) for row in rows]
        for row in rows:
            withheld = []
            for figure, count in indicator.figures:
                if row[count] is not None and 0 < row[count] < disclosure.MIN_PEOPLE:
                    row[figure] = row[count] = None
                    withheld += [figure, count] if figure != count else [figure]
            for ratio, inputs in indicator.derived:
                if any(name in withheld for name in inputs):
                    row[ratio] = None
                    withheld.append(ratio)
            row["withheld"] = withheld
    if indicator.people is None:
        return rows
    label_keys = indicator.keys[1:]
    by_month: dict[str, dict[str, tuple[int, int]]] = {}
    for row in rows:
        label = "\x1f".join(str(row[k]) for k in label_keys)
        amount = row[indicator.amount] if indicator.amount is not None else 0
        by_month.setdefault(row["month"], {})[label] = (row[indicator.people], amount or 0)
    hidden = {month: disclosure.withheld(cells) for month, cells in by_month.items()}
    shown = []
    for row in rows:
        label = "\x1f".join(str(row[k]) for k in label_keys)
        withheld = label in hidden[row["month"]]
        shown.append({k: (None if withheld and k not in indicator.keys + ("withheld",)
                          else v) for k, v in row.items()} | {"suppressed": withheld})
    return shown
