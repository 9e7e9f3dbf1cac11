"""Disclosure control of tables of people, as statistical offices do it (docs/research.md,
"Disclosure"; docs/api.md, GET /v1/stats).

A table here is cells keyed by (group, label): for /v1/stats the group is a local month
and the label a task area, each cell the number of distinct people in it and an amount.
Three rules:

1. Primary suppression: a cell of fewer than MIN_PEOPLE people is withheld (its count and
   its amount).
2. Secondary suppression, group by group: the group's total can be known (for /v1/stats,
   from the live money totals at the month's two ends), so a group never has exactly one
   withheld cell when it has more than one cell: the smallest shown cell (fewest people,
   then least amount, then label) is withheld too. A group of a single cell under the
   threshold cannot be protected by a second one; its amount is as derivable as the
   group's total, and only a group's total.
3. Only closed groups are published (for /v1/stats, months before the head block's): a
   closed group never changes, and its suppression is decided from its own cells alone,
   so two publications differ only by whole groups added, and a cell withheld once is
   withheld in every later publication.
"""
from __future__ import annotations

MIN_PEOPLE = 10


def withheld(cells: dict[str, tuple[int, int]], least: int = MIN_PEOPLE) -> set[str]:
    """The labels of one group's cells to withhold; cells: label -> (people, amount)."""
    primary = {label for label, (people, _) in cells.items() if people < least}
    if len(primary) == 1 and len(cells) > 1:
        shown = sorted((people, amount, label) for label, (people, amount) in cells.items()
                       if label not in primary)
        primary.add(shown[0][2])
    return primary


def publish(table: dict[tuple[str, str], tuple[int, int]], before: str,
            least: int = MIN_PEOPLE) -> list[dict]:
    """Every cell of the closed groups, those that sort before `before` (for months
    "YYYY-MM", the open month), in (group, label) order, as {"group", "label",
    "suppressed", "people", "amount"} with people and amount None when withheld."""
    groups: dict[str, dict[str, tuple[int, int]]] = {}
    for (group, label), cell in table.items():
        if group < before:
            groups.setdefault(group, {})[label] = cell
    published = []
    for group in sorted(groups):
        cells = groups[group]
        hidden = withheld(cells, least)
        for label in sorted(cells):
            people, amount = cells[label]
            shown = label not in hidden
            published.append({"group": group, "label": label, "suppressed": not shown,
                              "people": people if shown else None,
                              "amount": amount if shown else None})
    return published
