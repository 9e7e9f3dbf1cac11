"""A transaction's signature is checked once per process: the executor uses the door the
node gave it, even while that door is still empty (a Door has a length, so it is falsy
then), and executing a batch the door already opened checks no signature again."""
from __future__ import annotations

from ledger_kit import CHAIN, certified, story
from node.envelope import Door
from node.executor import open_ledger


def test_the_executor_keeps_the_empty_door_it_is_given(tmp_path, genesis):
    door = Door(CHAIN)
    assert len(door) == 0
    assert open_ledger(tmp_path, genesis, door).door is door


def test_executing_envelopes_the_door_opened_checks_no_signature_again(tmp_path, admin,
                                                                       genesis):
    door = Door(CHAIN)
    executor = open_ledger(tmp_path, genesis, door)

    def checks() -> int:        # over every door in play, however many there are
        return sum(d.signature_checks for d in {id(door): door,
                                                id(executor.door): executor.door}.values())

    for height, (time_ms, envelopes) in enumerate(story(admin), start=1):
        batch = certified(executor, height, time_ms, envelopes)
        before = checks()
        executor.execute(batch)
        assert checks() == before
