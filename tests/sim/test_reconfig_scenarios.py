"""Validator set changes, scripted: the scenario cluster (tests/consensus/cluster.py) over
a pool of identities, with no loss and no faults, so that each step of a change can be
looked at. The harness checks every block and checkpoint against the set in force at its
height (tests/sim/harness.py); these tests check who runs what afterwards."""
from __future__ import annotations

from consensus.follower import Follower
from consensus.messages import Commit
from consensus.replica import Replica
from tests.consensus.cluster import Cluster


def run(c: Cluster, ticks: int, idle: int = 60) -> None:
    """Ticks, submitting a request at every replica each tick (backups forward it), then
    `idle` ticks without load, for those behind to catch up."""
    for _ in range(ticks):
        for node in c.nodes:
            if node.up and type(node.driver.replica) is Replica:
                node.driver.submit(c.requests(1))
        c.tick()
    c.tick(idle)


def replicas_of(c: Cluster, members: list[int]) -> None:
    keys = tuple(c.keys.public[i] for i in members)
    for i, node in enumerate(c.nodes):
        replica = node.driver.replica
        if i in members:
            assert type(replica) is Replica and replica.config.validators == keys, i
            assert replica.me == members.index(i)
        else:
            assert type(replica) is Follower, i


def test_a_joining_validator_catches_up_and_orders_with_the_new_set():
    c = Cluster(4, pool=6)
    c.drivers[0].submit([c.change_set([0, 1, 4, 2, 3])])
    run(c, 40)
    first = c.reference.sets[-1].first_height
    assert len(c.reference.sets) == 2 and min(c.heights()[:5]) > first + 4
    replicas_of(c, [0, 1, 4, 2, 3])
    assert c.heights()[5] == 0          # never a member: it hears nothing


def test_removing_the_primary_and_rotating_a_key_hands_over_to_the_new_numbering():
    c = Cluster(4, pool=6)
    c.drivers[0].submit([c.change_set([5, 1, 2, 3])])   # the primary's place, new key
    run(c, 40)
    first = c.reference.sets[-1].first_height
    assert min(c.heights()[i] for i in (1, 2, 3, 5)) > first + 4
    replicas_of(c, [5, 1, 2, 3])
    assert c.nodes[0].ledger.height >= first - 1    # it ran its set's last height


def test_a_set_shrinks_back_to_four_after_growing():
    c = Cluster(4, pool=7)
    c.drivers[0].submit([c.change_set([0, 1, 2, 3, 4, 5, 6])])
    run(c, 40)
    assert len(c.reference.sets) == 2
    replicas_of(c, [0, 1, 2, 3, 4, 5, 6])
    c.drivers[0].submit([c.change_set([6, 2, 4, 1])])
    run(c, 40)
    assert len(c.reference.sets) == 3
    first = c.reference.sets[-1].first_height
    assert min(c.heights()[i] for i in (6, 2, 4, 1)) > first + 4
    replicas_of(c, [6, 2, 4, 1])


def test_a_change_in_the_same_block_replaces_the_pending_one_from_the_same_height():
    """Two changes in one block: the later replaces the earlier (same first height)."""
    c = Cluster(4, pool=6)
    c.drivers[0].submit([c.change_set([0, 1, 2, 3, 4]), c.change_set([0, 1, 2, 3, 5])])
    run(c, 40)
    assert c.reference.replaced == 1 and len(c.reference.sets) == 2
    replicas_of(c, [0, 1, 2, 3, 5])


def test_a_later_change_replaces_a_pending_one_from_a_later_height():
    c = Cluster(4, pool=6, switch_margin=16)
    change = c.change_set([0, 1, 2, 3, 4])
    c.drivers[0].submit([change])
    while change.key not in c.reference_keys:
        run(c, 1, idle=0)
    run(c, 2, idle=0)         # the next checkpoint interval
    pending = c.reference.sets[-1]
    assert pending.first_height > max(c.heights())
    c.drivers[0].submit([c.change_set([0, 1, 2, 3, 5])])
    run(c, 40)
    assert c.reference.replaced == 1 and len(c.reference.sets) == 2
    assert c.reference.sets[-1].first_height > pending.first_height
    replicas_of(c, [0, 1, 2, 3, 5])


def test_a_change_in_a_later_block_of_the_same_interval_replaces_the_pending_one():
    """Two changes in two blocks of one checkpoint interval: both give the same first
    height, and the later replaces the earlier there (chaincode/validators.py keeps
    only sets whose first height is at or below the block). Each replica learns the
    pending set after the first block, then the other one, from the same height."""
    c = Cluster(4, pool=6, checkpoint_interval=8, window=16)
    first = c.change_set([0, 1, 2, 3, 4])
    c.drivers[0].submit([first])
    while first.key not in c.reference_keys:
        c.tick()
    enacted = c.reference_keys[first.key]
    assert enacted % 8, "the first change ran at a checkpoint height: nothing follows it"
    second = c.change_set([0, 1, 2, 3, 5])
    c.drivers[0].submit([second])
    c.tick()
    assert (c.reference_keys[second.key] - 1) // 8 == (enacted - 1) // 8
    run(c, 40)
    assert c.reference.replaced == 1 and len(c.reference.sets) == 2
    replicas_of(c, [0, 1, 2, 3, 5])


def test_a_validator_that_leaves_first_does_not_strand_the_rest_of_its_set():
    """Genesis [0, 1, 2, 3], 1 silent (cut off: a Byzantine member of both sets); the
    change makes [0, 1, 2, 5]. Validator 3's commit of its set's last height F - 1
    reaches nobody: 3 alone commits it, runs it, and leaves (a Follower). 0 and 2 hold
    two commits each, the silent 1 never gives the third, and 3 no longer resends its
    own: the rest of the old set, and the new set after it, must still get past F - 1
    (by fetching the block 3 holds, once they learn it exists)."""
    c = Cluster(4, pool=6)
    c.cut.add(1)
    change = c.change_set([0, 1, 2, 5])
    c.drivers[0].submit([change])
    c.tick()
    assert change.key in c.reference_keys
    last = c.reference.sets[-1].first_height - 1

    def lost(sender, to, message):
        return sender == 3 and type(message) is Commit and message.height == last

    for _ in range(40):
        c.drivers[0].submit(c.requests(1))
        c.tick(drop=lost)
    assert c.nodes[3].ledger.height == last and type(c.nodes[3].driver.replica) is Follower
    c.tick(200)
    assert min(c.nodes[i].ledger.height for i in (0, 2, 5)) > last, c.heights()


def submit_change(c: Cluster, members: list[int]):
    """Submits a change at a replica of the set in force; returns it."""
    change = c.change_set(members)
    node = next(n for n in c.nodes if n.up and type(n.driver.replica) is Replica)
    node.driver.submit([change])
    return change


def test_a_set_replaced_whole_takes_over():
    """Every validator of genesis's set leaves at once for four joiners. The joiners
    catch up while the change is pending (no load: the chain waits at the block that
    enacted it), then the load makes the old set run its last heights and leave."""
    c = Cluster(4, pool=8)
    submit_change(c, [4, 5, 6, 7])
    c.tick(300)
    run(c, 30)
    last = c.reference.sets[-1]
    assert min(c.nodes[i].ledger.height for i in (4, 5, 6, 7)) > last.first_height, \
        c.heights()
    replicas_of(c, [4, 5, 6, 7])


def test_a_validator_that_comes_up_sets_later_catches_up():
    """4 joins with [0, 1, 2, 4] while it is down; two later changes make [5, 6, 2, 4],
    then [5, 6, 7, 4]. When 4 comes up, its ledger is empty: it follows genesis's set,
    whose members have all left (they follow, and send nothing); the members of the set
    in force that call on it are not in the set it follows. It must still catch up and
    take its place."""
    c = Cluster(4, pool=8)
    c.crash(4)
    for count, members in enumerate(([0, 1, 2, 4], [5, 6, 2, 4], [5, 6, 7, 4]), 2):
        submit_change(c, members)
        c.tick(300)         # no load: the joiners catch up before the change takes over
        run(c, 30)
        assert len(c.reference.sets) == count
        first = c.reference.sets[-1].first_height
        assert min(c.nodes[i].ledger.height for i in members if i != 4) > first, c.heights()
    c.start(4)
    run(c, 10)
    assert c.nodes[4].ledger.height > c.reference.sets[-1].first_height, c.heights()
    replicas_of(c, [5, 6, 7, 4])
