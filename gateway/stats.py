"""GET /v1/stats: aggregates for CBS and the public, with no personal data.

Totals are always shown: minted, redeemed, circulating, active members by role
(stewards among them), tasks by status. Cells are per task area and local month of
approval (Europe/Amsterdam, as the caps count): the number of distinct citizens paid and
the cents minted, for closed months only (before the head block's month), under the
disclosure rules of research/disclosure.py: a cell of fewer than `MIN_CELL` citizens is
suppressed (both figures withheld), and so is a second cell of its month when it would
be the month's only suppressed one.

The counts follow the log by position, incrementally: each request first folds in the
events written since the last one, in pages of one short read transaction each, so a
request costs what happened since the previous one, not the size of the log.
"""
from __future__ import annotations

import asyncio
from bisect import bisect_right, insort

from aiohttp import web

from chaincode import events, queries
from chaincode.periods import periods
from gateway.appkeys import AGGREGATES
from gateway.chainhead import head_time_ms
from gateway.params import query
from research import disclosure

MIN_CELL = disclosure.MIN_PEOPLE
PAGE = 1000
ROLES = events.ROLES      # the roles a member.registered names (chaincode/events.py)


class Aggregates:
    def __init__(self, store):
        self.store = store
        self.position = 0
        self.lock = asyncio.Lock()
        self.active = dict.fromkeys(ROLES, 0)
        self.deadlines: list[int] = []       # of tasks not cancelled, ascending
        self.cancelled = 0
        self.revoked: set[bytes] = set()     # keys revoked and not yet recovered
        self.cells: dict[tuple[str, str], list] = {}    # -> [citizens set, cents]
        self._time = (0, 0)                  # (height, the chain's clock there) last folded

    async def catch_up(self) -> None:
        async with self.lock:
            while True:
                found = self.store.events(self.position, PAGE)
                for logged in found:
                    self._fold(logged)
                    self.position = logged.position
                if len(found) < PAGE:
                    return
                await asyncio.sleep(0)       # a long catch-up lets others run

    def _role(self, key: bytes) -> str | None:
        member = queries.member(self.store, key)
        return None if member is None else member["role"]

    def _block_time(self, height: int) -> int:
        """The time block `height` ran at: the latest header time up to it (events come
        in log order), as the chaincode counts the caps' months (node/block.block_time)."""
        done, clock = self._time
        for later in range(done + 1, height + 1):   # blocks without events count too
            clock = max(clock, self.store.block(later).time_ms)
        self._time = (max(done, height), clock)
        return clock

    def _fold(self, logged) -> None:
        event = logged.event
        kind = event["kind"]
        if kind == "member.registered":
            self.active[event["role"]] = self.active.get(event["role"], 0) + 1
        elif kind == "member.revoked":
            role = self._role(event["key"])
            if role is not None:
                self.active[role] -= 1
                self.revoked.add(event["key"])
        elif kind == "member.recovered":
            # the new key is active; the old one counted already, unless it was revoked
            if event["old"] in self.revoked:
                self.revoked.discard(event["old"])
                role = self._role(event["new"])
                if role is not None:
                    self.active[role] += 1
        elif kind == "task.posted":
            insort(self.deadlines, event["deadline"])
        elif kind == "task.cancelled":
            record = queries.task_record(self.store, event["task"])
            if record is not None:
                deadline = record["deadline"]
                self.deadlines.pop(bisect_right(self.deadlines, deadline) - 1)
                self.cancelled += 1
        elif kind == "task.approved":
            record = queries.task_record(self.store, event["task"])
            area = record["area"] if record is not None else "unknown"
            month = periods(self._block_time(logged.height))[1]
            cell = self.cells.setdefault((area, month), [set(), 0])
            cell[0].add(event["citizen"])
            cell[1] += event["minted"]

    def json(self, time_ms: int) -> dict:
        totals = queries.totals(self.store)
        closed = bisect_right(self.deadlines, time_ms)
        open_month = periods(time_ms)[1]
        table = {(month, area): (len(citizens), cents)
                 for (area, month), (citizens, cents) in self.cells.items()}
        cells = [{"area": c["label"], "month": c["group"], "suppressed": c["suppressed"],
                  "citizens": c["people"], "minted": c["amount"]}
                 for c in disclosure.publish(table, open_month, MIN_CELL)]
        return {"minted": totals["minted"], "redeemed": totals["redeemed"],
                "circulating": totals["circulating"],
                # genesis admins and stewards have no event: the chaincode's own counts
                # are exact
                "members": dict(self.active, admin=queries.admin_count(self.store),
                                steward=queries.steward_count(self.store)),
                "tasks": {"open": len(self.deadlines) - closed, "closed": closed,
                          "cancelled": self.cancelled},
                "position": self.position, "min_cell": MIN_CELL,
                "open_month": open_month, "cells": cells}


async def get_stats(request: web.Request) -> web.Response:
    query(request)
    aggregates: Aggregates = request.app[AGGREGATES]
    # the clock first: every month before its month is folded in whole by the catch-up,
    # even when blocks arrive meanwhile (they can only add to the open month or later)
    clock = head_time_ms(aggregates.store)
    await aggregates.catch_up()
    return web.json_response(aggregates.json(clock))
