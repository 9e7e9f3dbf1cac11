"""A validator that cannot reach its peers says so (real processes): its status has no
quorum and names the three others, its log says why its dials fail, sampled and by the
peers' names, and a write through its gateway whose wait runs out says there is no
quorum and that it may still be decided. When the others start, the status shows a
quorum, the log says the links are back, and the same write is decided."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from netharness import Load
from node import genesis as genesis_file

LOG_INTERVAL_S = 10.0   # node/transport.py Limits.log_interval_s: one summary per peer


@pytest.mark.parametrize("index", [1, 0], ids=["a backup", "the primary"])
async def test_a_validator_alone_says_it_has_no_quorum_until_the_others_start(network, index):
    net = await network(4, start=False)
    # a validator dials those whose keys are higher than its own. The primary alone proposes the write at its own
    # clock's time, which the others refuse as too old when they come: they take its
    # requests into their pools, time them out, and the next primary orders the write.
    alone = net.names[index]
    others = [n for n in net.names if n != alone]
    keys = dict(zip(net.names, genesis_file.load(net.root / "genesis.json").validator_keys()))
    dialled = [n for n in net.names if keys[n] > keys[alone]]
    net.start(alone)
    started = time.monotonic()
    async def from_the_validator():
        # not the gateway's own answer while it cannot reach its validator yet (which
        # has no quorum to show): the validator's status, through its gateway
        found = await net.status(alone)
        return found if found and "quorum" in found else None
    status = await net.wait_for(f"{alone}'s gateway to answer", from_the_validator, 20)

    assert status["quorum"] == {"needed": 3, "linked": 1, "ok": False, "missing": others}
    assert (f"no quorum: this validator reaches 1 of the 3 validators needed "
            f"({', '.join(others)} not connected); writes cannot be decided"
            in status["warnings"]), status["warnings"]

    probe = Load(net, 0).envelope()
    answer = await net.post_tx(alone, probe, 2)
    assert answer["status"] == "pending", answer
    assert answer["quorum"]["ok"] is False and answer["quorum"]["missing"] == others
    assert answer["detail"].startswith(
        f"Not decided yet: this validator reaches 1 of the 3 validators a decision needs "
        f"({', '.join(others)} not connected)."), answer
    assert "may still be decided" in answer["detail"]

    # the dials failed hundreds of times; the log says so in a few lines per peer
    failed = net.log_events(alone, "dial_failed")
    elapsed = time.monotonic() - started
    by_peer = Counter(e["peer"] for e in failed)
    assert set(by_peer) == set(dialled), failed
    assert all(n <= 2 + elapsed / LOG_INTERVAL_S for n in by_peer.values()), (elapsed, by_peer)
    firsts = [e for e in failed if not e.get("summary")]
    assert sorted(e["peer"] for e in firsts) == sorted(dialled)
    assert all(e["reason"] == "connection refused" for e in firsts), firsts

    for name in others:
        net.start(name)
    answer = await net.post_tx(alone, probe, 20)
    assert answer["status"] == "committed", answer
    assert "quorum" not in answer

    async def quorate():
        found = await net.status(alone)
        return found if found and found["quorum"]["ok"] else None
    status = await net.wait_for(f"{alone}'s status to show a quorum", quorate, 10)
    assert status["quorum"]["needed"] == 3 and status["quorum"]["linked"] >= 3, status
    assert not any(w.startswith("no quorum") for w in status["warnings"])
    # every peer it dials and is linked with now was logged back
    back = net.log_events(alone, "dial_recovered")
    linked = {v["name"] for v in status["validators"] if v["connected"]}
    assert {e["peer"] for e in back} >= linked & set(dialled), back
    assert all(e["failed_dials"] >= 1 and e["last_reason"] == "connection refused"
               for e in back), back
