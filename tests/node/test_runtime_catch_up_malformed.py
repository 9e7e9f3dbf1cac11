"""A catch-up answer with a field of the wrong type or range is the peer's fault: a
warning naming the peer, nothing executed, and the node runs on. Before the checks moved
to consensus/fetched.py, a block record whose height was not an integer, whose view was
negative or whose certificate named a validator by anything but an integer raised out
of the frame handler, and the transport stopped the node for it."""
from __future__ import annotations

import dataclasses

import pytest

from node import evidence
from node.block import BlockRecord
from tests.node.test_runtime_catch_up import answered, blocks, net, node  # noqa: F401


@pytest.mark.parametrize("change", [
    dict(height=b"1"),
    dict(view=-1),
    dict(time_ms=-1),
    lambda record: dict(certificate=tuple((str(i).encode(), s)
                                          for i, s in record.certificate)),
    lambda record: dict(certificate=tuple((i, i) for i, _ in record.certificate)),
])
async def test_a_malformed_block_is_refused_and_the_node_runs_on(net, node, tmp_path,  # noqa: F811
                                                           change):
    good = blocks(net, tmp_path / "source")
    fields = change(good[0]) if callable(change) else change
    bad = dataclasses.replace(good[0], **fields)
    warnings = answered(node, [bad] + good[1:])
    assert [(w["peer"], w["reason"]) for w in warnings] == \
        [("brightlands", "not a well-formed block")]
    [kept] = evidence.read(node.config.data_dir)
    assert kept["kind"] == "bad_catch_up" and kept["validator"] == "brightlands"
    assert BlockRecord.decode(bytes.fromhex(kept["messages"][0])) == bad
    assert node.store.head()[0] == 0
    assert answered(node, good) == [] and node.store.head()[0] == 3
