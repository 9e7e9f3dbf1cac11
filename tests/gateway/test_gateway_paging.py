"""Paging: walking the pages gives every matching item once, in order, whatever the page
size, filter or budget; and the state scan that pages start from skips nothing."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as s

from gateway import reads
from node.store import Store


def walk(ids: list[int], keep, limit: int, budget: int = reads.SCAN_BUDGET) -> list[int]:
    def fetch(after, count):
        start = 0 if after is None else ids.index(after) + 1
        return ids[start:start + count]
    out, cursor = [], None
    for _ in range(len(ids) + 2):
        items, cursor = reads.filtered_page(fetch, cursor, keep, limit, budget)
        assert len(items) <= limit
        out += items
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


@given(s.lists(s.integers(0, 10_000), unique=True, max_size=300).map(sorted),
       s.integers(1, 50), s.integers(1, 7))
@settings(max_examples=200, deadline=None)
def test_pages_of_a_filtered_walk_hold_every_match_once_in_order(ids, limit, modulus):
    def keep(i):
        return i if i % modulus == 0 else None
    assert walk(ids, keep, limit) == [i for i in ids if i % modulus == 0]


@given(s.lists(s.integers(0, 100), unique=True, max_size=60).map(sorted), s.integers(1, 5),
       s.integers(1, 4))
@settings(max_examples=100, deadline=None)
def test_a_page_that_runs_out_of_budget_still_moves_the_cursor_on(ids, limit, budget):
    assert walk(ids, lambda i: i if i % 10 == 0 else None, limit, budget) == \
        [i for i in ids if i % 10 == 0]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("scan")) as opened:
        yield opened


@given(s.sets(s.binary(min_size=0, max_size=4), max_size=40), s.binary(max_size=2),
       s.integers(1, 9))
@settings(max_examples=100, deadline=None)
def test_scan_after_walks_exactly_the_keys_under_a_prefix(store, suffixes, prefix, step):
    with store.env.begin(write=True, db=store.db["state"]) as txn:
        txn.drop(store.db["state"], delete=False)
        for suffix in suffixes:
            txn.put(b"z/" + prefix + suffix, b"v")
            txn.put(b"y/" + suffix + b"!", b"other")       # keys outside the prefix
    full = b"z/" + prefix
    seen, after = [], None
    while True:
        chunk = store.scan_after(full, after, step)
        if not chunk:
            break
        seen += [k for k, _ in chunk]
        after = chunk[-1][0]
    expected = sorted(b"z/" + prefix + x for x in suffixes)
    assert seen == expected
