"""A replica's own checkpoint votes are resent until a checkpoint above them is stable,
and kept on disk until then (consensus/checkpoint.py, docs/consensus.md, "What a replica
keeps on disk"): votes lost on the wire, or a quorum of replicas that restarted after
voting, cannot leave a checkpoint short of a quorum and the watermark window closed for
good (the simulator found four correct replicas stalled so)."""
from __future__ import annotations

from consensus import durable
from consensus.messages import Checkpoint
from tests.consensus.cluster import Cluster


def fill(c: Cluster, blocks: int, drop=lambda s, t, m: False) -> None:
    for _ in range(blocks):
        c.drivers[0].submit(c.requests(1))
        c.tick(drop=drop)


def test_checkpoint_votes_lost_on_the_wire_are_sent_again():
    c = Cluster()
    first_sent: set[tuple[int, int, int]] = set()

    def lose_first(sender, to, message):
        if type(message) is not Checkpoint:
            return False
        key = (sender, to, message.height)
        if key in first_sent:
            return False
        first_sent.add(key)
        return True
    fill(c, 3, drop=lose_first)
    assert first_sent                                  # votes were sent, and lost once
    c.tick(2 * c.config.status_interval_ticks)
    assert all(c.replica(i).stable_height >= 2 for i in range(4))
    fill(c, 12)
    assert min(c.heights()) >= 15


def test_votes_survive_a_restart_and_are_counted_again():
    """All four vote for checkpoint 2 and every vote is lost; then three of them restart:
    their votes, read back from disk, are resent and make it stable."""
    c = Cluster()
    drop_votes = lambda s, t, m: type(m) is Checkpoint  # noqa: E731
    fill(c, 2, drop=drop_votes)
    assert all(c.replica(i).stable_height == 0 for i in range(4))
    for i in range(4):
        kept = [k for k, _ in c.storage[i].items() if k.startswith(durable.CHECKPOINT_PREFIX)]
        assert kept == [durable.checkpoint_key(2)]
    for i in (1, 2, 3):
        c.crash(i)
        c.start(i)
    c.tick(2 * c.config.status_interval_ticks)
    assert all(c.replica(i).stable_height >= 2 for i in range(4))
    # once stable, the votes at and below it leave the store
    fill(c, 1)
    for i in range(4):
        assert not [k for k, _ in c.storage[i].items()
                    if k == durable.checkpoint_key(2)]
